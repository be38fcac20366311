"""carbonsink backfill: year partitions ingested and mapped with real Dask, Ray and Serve."""

import shutil

import pandas as pd
import pytest

from carbonsink.errors import LakeError
from carbonsink.lake.features_store import read_attrs
from carbonsink.lake.flux_store import ENSEMBLE_MEDIAN, FluxLayout, labelled_months
from carbonsink.lake.lake import Lake
from carbonsink.timeutil import MonthWindow
from pipelines.backfill import partitions, run_backfill
from tests.tiny_lake import settings


def test_partitions_are_calendar_years():
    parts = partitions(MonthWindow.parse("2015-03", "2017-02"))
    assert [str(p) for p in parts] == ["2015-03..2015-12", "2016-01..2016-12", "2017-01..2017-02"]
    assert [str(p) for p in partitions(MonthWindow.parse("2016-05", "2016-05"))] == [
        "2016-05..2016-05"
    ]


@pytest.mark.integration
def test_backfill_maps_each_year_and_rebuilds_the_budget(
    trained, lake, monthly_store, dask_client, ray_cluster, tmp_path
):
    root = tmp_path / "lake"
    shutil.copytree(lake, root)
    s = settings(
        root, source=monthly_store, start="2015-10", end="2016-12",
        budget={"reference_start": 2016, "reference_end": 2016},
        serve={"http_port": ray_cluster["http_port"], "in_flight": 8},
    )  # fmt: skip
    report = run_backfill(s, dask_client)
    assert report.partitions == ["2015-10..2015-12", "2016-01..2016-12"]
    store = Lake(str(root)).open_repo("sinkmap").readonly_session("main").store
    mapped = labelled_months(store, FluxLayout.from_attrs(read_attrs(store)), ENSEMBLE_MEDIAN)
    assert [str(m) for m in mapped] == [
        str(m) for m in pd.period_range("2015-10", "2016-12", freq="M")
    ]
    outputs = dict(report.outputs)
    budget = pd.read_csv(outputs["budget"].removeprefix("file://"))
    assert list(budget["year"]) == [2016]
    assert outputs["report"].endswith("report.html")


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
