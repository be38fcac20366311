"""The CronJob's command and the RayJob's entrypoint, run for real on this machine.

Each runs as the manifests say, with the environment the pod would get (the ConfigMap, the
container's env, the RayJob's runtime env), against a local Dask and Ray. What a cluster
would differ in is replaced, and only that: the lake and source (a copy of the tiny lake
instead of the buckets), the grid (the tiny lake's settings file), the window (half a year
instead of the decade), the GPU request (CPU replicas), and the clusters' addresses (this
session's local Dask and Ray). The
RayJob's run is the session fixture ``rayjob_backfill`` (tests/conftest.py), which the
backfill tests also compare against.
"""

import importlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
import zarr

from carbonsink.lake.features_store import era5t_months, open_published_features
from carbonsink.lake.lake import Lake
from carbonsink.lake.plan_store import read_plans
from carbonsink.lake.sinkmap import mapped_months
from carbonsink.lake.table_store import read_table
from carbonsink.reference.noaa import GTC_PER_PPM, annual_growth
from pipelines.flows.nrt import run_nrt
from tests.infra.manifests import pod_env, pod_specs, render, run_as_pod
from tests.tiny_lake import settings

pytestmark = pytest.mark.integration


def tiny_config(root: Path, path: Path, **kw) -> Path:
    s = settings(root, budget={"reference_start": 2016, "reference_end": 2016}, **kw)
    path.write_text(yaml.safe_dump(s.model_dump(mode="json", exclude_none=True)))
    return path


def test_rayjob_entrypoint_backfills_through_local_dask_and_ray(rayjob_backfill):
    root, env, out = rayjob_backfill
    # As the manifests give it: join the job's own Ray, the decade's window.
    assert env["CARBONSINK_RAY__ADDRESS"] == "auto"
    assert (env["CARBONSINK_START"], env["CARBONSINK_END"]) == ("2015-01", "2024-12")
    assert env["CARBONSINK_DASK__ADDRESS"] == "tcp://carbonsink-dask-scheduler:8786"
    assert "0 unit(s) done before, 5 run now" in out  # ingest, 3 bands, publish
    plans, lock = read_plans(Lake(str(root)))
    assert lock is None and plans[-1].complete and plans[-1].args["start"] == "2016-07"
    assert mapped_months(Lake(str(root))) >= set(pd.period_range("2016-07", "2016-12", freq="M"))


def test_cronjob_command_finalises_era5t_months_through_local_dask_and_ray(
    mapped_lake, monthly_store, dask_client, ray_cluster, tmp_path
):
    import ray

    root, source = tmp_path / "lake", tmp_path / "source.zarr"
    shutil.copytree(mapped_lake, root)
    shutil.copytree(monthly_store, source)
    # The source's two ERA5T months (2016-11, 2016-12) have become final ERA5.
    zarr.open_group(str(source), mode="r+").attrs["valid_time_stop"] = "2016-12-31"
    zarr.consolidate_metadata(str(source))
    docs = render("prod")
    (container,) = dict(pod_specs(next(d for d in docs if d["kind"] == "CronJob")))["jobTemplate"][
        "containers"
    ]
    env = pod_env(docs, "CronJob", "jobTemplate")
    assert env["CARBONSINK_DASK__ADDRESS"] == ""  # Dask and Ray inside the pod
    # The pod's own Dask and Ray stand in for by this session's local ones (the same kind:
    # a LocalCluster and a single-node Ray), which saves starting two more on 2 cores.
    env.update({
        "CARBONSINK_LAKE": str(root), "CARBONSINK_SOURCE": str(source),
        "CARBONSINK_DASK__ADDRESS": dask_client.scheduler.address,
        "CARBONSINK_RAY__ADDRESS": ray.get_runtime_context().gcs_address,
        "CARBONSINK_SERVE__HTTP_PORT": str(ray_cluster["http_port"]),
    })  # fmt: skip
    config = tiny_config(root, tmp_path / "settings.yaml", serve={"in_flight": 8})
    out = run_as_pod(container["command"], env, config, tmp_path / "nrt.log")
    assert "nrt 2016-01..2016-12: ingested 2, mapped 2 month(s)" in out
    lk = Lake(str(root))
    features, layout = open_published_features(lk)
    assert len(era5t_months(features.store, layout)) == 0
    assert mapped_months(lk) >= set(pd.period_range("2016-01", "2016-12", freq="M"))
    store = lk.open_repo("budget").readonly_session("main").store  # type: ignore[union-attr]
    trailing, attrs = read_table(store, "budget_12m")
    assert trailing.index.name == "window_end" and str(trailing.index[-1]) == "2016-12"
    last = trailing.iloc[-1]
    growth = annual_growth("gl").at[2016, "growth"]
    assert pytest.approx(growth * GTC_PER_PPM, abs=0.011 * GTC_PER_PPM) == last.GATM
    gap = last.EFOS + last.ELUC - (last.GATM + last.SOCEAN + last.SLAND + last.BIM)
    assert abs(gap) < 1e-9
    annual, _ = read_table(store, "budget")
    assert pytest.approx(annual.at[2016, "SLAND"]) == last.SLAND  # December window = the year
    assert "12-month" in attrs["gatm_12m"]
    # The next day's run finds nothing new and publishes nothing (in-process: quicker).
    tip = lk.open_repo("budget").lookup_branch("main")  # type: ignore[union-attr]
    s = settings(
        root, source=str(source), budget={"reference_start": 2016, "reference_end": 2016},
        serve={"http_port": ray_cluster["http_port"]},
    )  # fmt: skip
    again = run_nrt(s, dask_client)
    assert again.plan.idle and again.outputs == []
    assert lk.open_repo("budget").lookup_branch("main") == tip  # type: ignore[union-attr]


def test_rayservice_import_path_builds_the_serve_application(trained, lake):
    from ray.serve import Application

    service = next(d for d in render("prod") if d["kind"] == "RayService")
    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    module, name = app["import_path"].split(":")
    builder = getattr(importlib.import_module(module), name)
    built = builder({**app["args"], "lake": str(lake)})
    assert isinstance(built, Application)
