"""carbonsink backfill: a recorded plan, resumed after kill -9, with real Dask, Ray and Serve."""

import os
import shutil
import signal
import subprocess
import sys
import time

import hypothesis
import pandas as pd
import pytest
import yaml
import zarr
from hypothesis import given
from hypothesis import strategies as st

from carbonsink.errors import LakeError
from carbonsink.lake.features_store import read_attrs
from carbonsink.lake.flux_store import ENSEMBLE_MEDIAN, FluxLayout, member_months
from carbonsink.lake.lake import Lake
from carbonsink.lake.plan_store import RunLock, mark_done, read_plans, record_plan
from carbonsink.timeutil import MonthWindow
from pipelines.flows.backfill import (
    backfill_plan,
    partition_branch,
    partitions,
    reconcile,
    run_backfill,
)
from pipelines.lake.status import status_lines
from tests.helpers import chunk_hashes
from tests.strategies import month_windows
from tests.tiny_lake import settings


def test_partitions_are_calendar_years_or_aligned_runs():
    parts = partitions(MonthWindow.parse("2015-03", "2017-02"))
    assert [str(p) for p in parts] == ["2015-03..2015-12", "2016-01..2016-12", "2017-01..2017-02"]
    assert [str(p) for p in partitions(MonthWindow.parse("2016-05", "2016-05"))] == [
        "2016-05..2016-05"
    ]
    # Six-month units cut at January and July whatever the window's start.
    six = partitions(MonthWindow.parse("2016-02", "2017-01"), 6)
    assert [str(p) for p in six] == ["2016-02..2016-06", "2016-07..2016-12", "2017-01..2017-01"]


@hypothesis.settings(max_examples=60, deadline=None)
@given(window=month_windows(), months=st.integers(1, 24), later=st.integers(0, 119))
def test_partitions_cover_any_window_once_with_cuts_that_do_not_depend_on_its_start(
    window, months, later
):
    parts = partitions(window, months)
    assert [m for p in parts for m in p.months] == list(window.months)  # each month once
    assert all(len(p) <= months for p in parts)
    # A window that starts later is cut at the same months (a resumed or extended backfill
    # finds the same units).
    start = window.start + min(later, len(window) - 1)
    ends = [p.end for p in partitions(MonthWindow(start, window.end), months)]
    assert ends == [p.end for p in parts if p.end >= start]


def backfill_settings(root, source, ray_cluster):
    """The second half of 2016 as one partition, over a lake with 2016 mapped.

    Five units: ingest, three bands of tile rows (one each of the tiny grid's 3), publish.
    """
    return settings(
        root, source=source, start="2016-07", end="2016-12", partition_months=6,
        budget={"reference_start": 2016, "reference_end": 2016},
        serve={"http_port": ray_cluster["http_port"], "in_flight": 8},
    )  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(rayjob_backfill):
    """The mapped tiny lake backfilled 2016-07..2016-12 in one go: by the RayJob's entrypoint
    (tests/conftest.py), with the same output-shaping settings as ``backfill_settings``."""
    root, _, out = rayjob_backfill
    return root, out


def printed(out: str, label: str) -> str:
    """The path the backfill command printed for ``label``."""
    return next(line.split(None, 1)[1] for line in out.splitlines() if line.startswith(label))


@pytest.mark.integration
def test_backfill_maps_each_unit_and_rebuilds_the_budget(uninterrupted, mapped_lake):
    root, out = uninterrupted
    assert "1 partition(s); 0 unit(s) done before, 5 run now" in out
    store = Lake(str(root)).open_repo("sinkmap").readonly_session("main").store
    mapped = member_months(store, FluxLayout.from_attrs(read_attrs(store)), ENSEMBLE_MEDIAN)
    assert [str(m) for m in mapped] == [
        str(m) for m in pd.period_range("2016-01", "2016-12", freq="M")
    ]
    # One publish (a tag) per partition on the sink map; its branch is gone once published.
    repo = Lake(str(root)).open_repo("sinkmap")
    assert len(repo.list_tags()) - len(Lake(str(mapped_lake)).open_repo("sinkmap").list_tags()) == 1
    assert repo.list_branches() == {"main"}
    budget = pd.read_csv(printed(out, "budget:").removeprefix("file://"))
    assert list(budget["year"]) == [2016]
    assert printed(out, "report:").endswith("report.html")
    plans, lock = read_plans(Lake(str(root)))
    assert lock is None and len(plans) == 1 and plans[0].complete


@pytest.mark.integration
def test_backfill_killed_with_sigkill_resumes_to_identical_bytes(
    uninterrupted, mapped_lake, monthly_store, dask_client, ray_cluster, tmp_path
):
    import ray

    root = tmp_path / "lake"
    shutil.copytree(mapped_lake, root)
    s = backfill_settings(root, monthly_store, ray_cluster)
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump(s.model_dump(mode="json", exclude_none=True)))
    # The driver joins the session's Dask and Ray, as a RayJob's entrypoint joins its
    # cluster's: with its own (a Ray, a Serve application, a LocalCluster) this test took
    # 124 s, against 87-92 s now (2026-12-08).
    env = {
        **os.environ, "CARBONSINK_PROGRESS": "0",
        "CARBONSINK_DASK__ADDRESS": dask_client.scheduler.address,
        "CARBONSINK_RAY__ADDRESS": ray.get_runtime_context().gcs_address,
    }  # fmt: skip
    with open(tmp_path / "driver.log", "w") as log:
        driver = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "backfill", "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    plan = backfill_plan(s)
    published = Lake(str(root)).open_repo("sinkmap").lookup_branch("main")
    deadline = time.monotonic() + 240
    try:
        # Killed between two bands: the ingest and the first band are done.
        while time.monotonic() < deadline and driver.poll() is None:
            plans, _ = read_plans(Lake(str(root)))
            if plans and len(plans[0].done) >= 2:
                break
            time.sleep(0.1)
    finally:
        # kill -9 of the driver and everything it started, as when its pod is lost; the
        # clusters it used live on, and the requests it left in flight write only to forks
        # that nobody merges
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    plans, lock = read_plans(Lake(str(root)))
    assert plans and len(plans[0].done) == 2, (tmp_path / "driver.log").read_text()[-2000:]
    assert lock is not None and lock["pid"] == driver.pid  # the dead driver still "holds" it
    shown = "\n".join(status_lines(s))
    assert plan.id in shown and "2/5 units done" in shown
    # The band sits on the partition's branch; readers of the sink map saw nothing of it.
    assert partition_branch(Lake(str(root)), plan, plan.units[-1]).exists()
    assert Lake(str(root)).open_repo("sinkmap").lookup_branch("main") == published

    report = run_backfill(s, dask_client)  # the same arguments: resume
    assert report.plan == plan.id and (report.done_before, report.units_run) == (2, 3)
    reference, _ = uninterrupted
    for store in ("features", "sinkmap"):
        want, got = chunk_hashes(reference, store), chunk_hashes(root, store)
        assert got == want, store
        assert len(got) > 100


def test_a_second_driver_on_a_busy_lake_stops(trained, lake, monthly_store, dask_client, tmp_path):
    root = tmp_path / "lake"
    shutil.copytree(lake, root)
    s = settings(root, source=monthly_store, start="2015-01", end="2015-12")
    tip = Lake(str(root)).open_repo("features").lookup_branch("main")
    with RunLock(Lake(str(root)), "other-run", "backfill"):
        with pytest.raises(LakeError, match="is busy: backfill run other-run"):
            run_backfill(s, dask_client)
        assert "busy, backfill run other-run" in status_lines(s)[0]
    assert Lake(str(root)).open_repo("features").lookup_branch("main") == tip


def test_backfill_refuses_a_lake_without_emulators(monthly_store, dask_client, tmp_path):
    s = settings(tmp_path / "new-lake", source=monthly_store, start="2015-01", end="2015-12")
    with pytest.raises(LakeError, match="not a carbonsink lake yet"):
        run_backfill(s, dask_client)
    assert not (tmp_path / "new-lake").exists()  # nothing ingested


def test_backfill_refuses_a_lake_without_models(lake, monthly_store, dask_client, tmp_path):
    root = tmp_path / "lake"
    shutil.copytree(lake, root)
    shutil.rmtree(root / "models", ignore_errors=True)
    tip = Lake(str(root)).open_repo("features").lookup_branch("main")
    s = settings(root, source=monthly_store, start="2015-01", end="2015-12")
    with pytest.raises(LakeError, match="no models store; run carbonsink train"):
        run_backfill(s, dask_client)
    assert Lake(str(root)).open_repo("features").lookup_branch("main") == tip


def test_reconcile_redoes_bands_that_main_moved_past_and_records_a_lost_publish(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    lake.create()
    lake.create_repo("sinkmap")
    s = settings(tmp_path / "lake", start="2016-01", end="2016-12", tile_bands=2)
    plan = backfill_plan(s)
    ingest, band1, band2, publish = plan.units
    assert [u.stage for u in plan.units] == ["ingest", "map", "map", "publish"]
    done = record_plan(lake, plan)
    for unit in (ingest, band1):
        mark_done(lake, plan, unit)
    branch = partition_branch(lake, plan, publish)
    session = branch.session()
    zarr.open_group(session.store, mode="a").attrs["band"] = 1
    session.commit("band 1")
    done = reconcile(lake, plan, record_plan(lake, plan))
    assert sorted(done) == sorted([ingest.id, band1.id])  # the branch is good: keep going
    # Another run publishes to the sink map: the band must be mapped again from main.
    main = lake.open_repo("sinkmap").writable_session("main")
    zarr.open_group(main.store, mode="a").attrs["other"] = True
    main.commit("another run")
    done = reconcile(lake, plan, record_plan(lake, plan))
    assert list(done) == [ingest.id] and not branch.exists()
    # A publish that moved main but died before it was recorded is recorded, not redone.
    session = branch.session()
    zarr.open_group(session.store, mode="a").attrs["band"] = 2
    session.commit("bands")
    for unit in (band1, band2):
        mark_done(lake, plan, unit)
    branch.publish(f"run-{branch.name}")
    done = reconcile(lake, plan, record_plan(lake, plan))
    assert publish.id in done and len(done) == 4
