"""carbonsink nrt: the plan, and its refusals.

The run itself (ERA5T months that became final re-ingested and mapped, the 12-month budget,
an idle second run) is tested through the CronJob's command in tests/infra/test_jobs.py.
"""

import shutil

import pandas as pd
import pytest

from carbonsink.errors import ConfigError, LakeError
from carbonsink.lake.lake import Lake
from carbonsink.lake.plan_store import RunLock
from pipelines.flows.nrt import plan_nrt, run_nrt
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
