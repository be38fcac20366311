"""carbonsink nrt: the newest months from the source, with real Dask, Ray and Serve."""

import shutil

import pandas as pd
import pytest
import zarr

from carbonsink.errors import ConfigError, LakeError
from carbonsink.lake.features_store import era5t_months, open_published_features
from carbonsink.lake.lake import Lake
from carbonsink.lake.plan_store import RunLock
from carbonsink.lake.table_store import read_table
from carbonsink.reference.noaa import GTC_PER_PPM, annual_growth
from pipelines.infer import mapped_months
from pipelines.nrt import plan_nrt, run_nrt
from tests.tiny_lake import settings

P = pd.Period


def months(first: str, last: str) -> set[pd.Period]:
    return set(pd.period_range(first, last, freq="M"))


def test_plan_ingests_new_and_finalised_months_and_maps_what_is_missing():
    plan = plan_nrt(
        P("2026-10", "M"),
        final=P("2026-08", "M"),
        ingested=months("2025-01", "2026-09"),
        preliminary=months("2026-07", "2026-09"),
        mapped=months("2025-01", "2026-06") - {P("2026-01", "M")},
    )
    assert str(plan.window) == "2025-11..2026-10"
    # 2026-07/08 are final now (re-ingested); 2026-09 is still ERA5T; 2026-10 is new.
    assert [str(m) for m in plan.ingest] == ["2026-07", "2026-08", "2026-10"]
    assert [str(m) for m in plan.infer] == ["2026-01", "2026-07", "2026-08", "2026-09", "2026-10"]


def test_plan_is_idle_when_the_lake_has_caught_up():
    plan = plan_nrt(
        P("2026-10", "M"), P("2026-08", "M"), months("2025-01", "2026-10"),
        months("2026-09", "2026-10"), months("2025-01", "2026-10"),
    )  # fmt: skip
    assert plan.idle and len(list(plan.window.months)) == 12


@pytest.mark.integration
def test_nrt_finalises_era5t_months_and_builds_the_12_month_budget(
    mapped_lake, monthly_store, dask_client, ray_cluster, tmp_path
):
    root, source = tmp_path / "lake", tmp_path / "source.zarr"
    shutil.copytree(mapped_lake, root)
    shutil.copytree(monthly_store, source)
    # The source's two ERA5T months (2016-11, 2016-12) have become final ERA5.
    zarr.open_group(str(source), mode="r+").attrs["valid_time_stop"] = "2016-12-31"
    zarr.consolidate_metadata(str(source))
    s = settings(
        root, source=str(source),
        budget={"reference_start": 2016, "reference_end": 2016},
        serve={"http_port": ray_cluster["http_port"], "in_flight": 8},
    )  # fmt: skip
    lk = Lake(str(root))
    features, layout = open_published_features(lk)
    assert {str(m) for m in era5t_months(features.store, layout)} == {"2016-11", "2016-12"}

    report = run_nrt(s, dask_client)
    assert str(report.plan.window) == "2016-01..2016-12"
    assert [str(m) for m in report.plan.ingest] == ["2016-11", "2016-12"]
    assert report.plan.infer == report.plan.ingest  # the rest of 2016 was mapped already
    features, layout = open_published_features(lk)
    assert len(era5t_months(features.store, layout)) == 0
    assert mapped_months(lk) >= months("2016-01", "2016-12")
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
    assert dict(report.outputs)["report"].endswith("report.html")

    tip = lk.open_repo("budget").lookup_branch("main")  # type: ignore[union-attr]
    again = run_nrt(s, dask_client)
    assert again.plan.idle and again.outputs == []
    assert lk.open_repo("budget").lookup_branch("main") == tip  # type: ignore[union-attr]


def test_nrt_refuses_an_end_past_the_source(trained, lake, monthly_store, dask_client, tmp_path):
    root = tmp_path / "lake"
    shutil.copytree(lake, root)
    tip = Lake(str(root)).open_repo("features").lookup_branch("main")  # type: ignore[union-attr]
    s = settings(root, source=monthly_store, end="2017-03")
    with pytest.raises(ConfigError, match="past the source's newest complete month 2016-12"):
        run_nrt(s, dask_client)
    with pytest.raises(ConfigError, match="nrt needs a source"):
        run_nrt(settings(root), dask_client)
    # A scheduled run while a backfill works on the lake stops with a message.
    with (
        RunLock(Lake(str(root)), "backfill-run", "backfill"),
        pytest.raises(LakeError, match="is busy: backfill run backfill-run"),
    ):
        run_nrt(settings(root, source=monthly_store), dask_client)
    assert Lake(str(root)).open_repo("features").lookup_branch("main") == tip  # type: ignore[union-attr]
