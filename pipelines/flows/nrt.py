"""``carbonsink nrt``: the newest complete months mapped, and the budgets updated.

Meant to run on a schedule (a Kubernetes CronJob, daily). Each run:

1. reads how far the source's data reach (ARCO-ERA5's ``valid_time_stop_era5t``, or the time
   axis) and takes the newest complete month as the end of a 12-month window;
2. plans the work in that window: months never ingested, and months ingested from
   preliminary ERA5T data that the source now holds as final ERA5 (re-ingested), are
   ingested; those and any month not yet in the sink map are mapped through Serve;
3. rebuilds the budget (the annual one, and the trailing 12-month one whose newest row is
   the near-real-time budget of the current year) and the report.

With nothing to do (the source has not moved since the last run) it says so and publishes
nothing. It holds the lake's run lock, so it stops with a message while a backfill works on
the lake. Each step is its own transaction, so a run that dies leaves the lake as the last
finished step published it, and the next run picks up the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

import pandas as pd
from distributed import Client

from carbonsink.budget.trailing import LENGTH
from carbonsink.errors import ConfigError, LakeError, SourceError
from carbonsink.lake.features_store import era5t_months, ingested_months, open_published_features
from carbonsink.lake.lake import Lake
from carbonsink.lake.plan_store import RunLock
from carbonsink.lake.sinkmap import mapped_months, months_to_map
from carbonsink.sources import open_source
from carbonsink.sources.base import ValidRange
from carbonsink.sources.common import final_months, newest_complete_month
from carbonsink.timeutil import MonthWindow, parse_month
from pipelines.lake.transaction import new_run_id
from pipelines.options import (
    ConfigOpt,
    DaskAddressOpt,
    LakeOpt,
    NoaaMonthlyOpt,
    RayAddressOpt,
    SourceOpt,
    echo,
    outputs,
    setting,
    settings,
)
from pipelines.progress import console
from pipelines.settings import Settings
from pipelines.stages.infer import check_emulators, run_infer
from pipelines.stages.ingest import describe, run_ingest, stale_months
from pipelines.stages.report import budget_and_report


@dataclass(frozen=True)
class NrtPlan:
    """The months a near-real-time run works on.

    Attributes
    ----------
    window
        The 12 months ending with the newest complete month of the source.
    ingest
        Months to ingest: not in the lake, or ingested from ERA5T and now final.
    infer
        Months to map: those ingested now and any the sink map lacks.
    """

    window: MonthWindow
    ingest: list[pd.Period]
    infer: list[pd.Period]

    @property
    def idle(self) -> bool:
        """Whether there is nothing to do."""
        return not (self.ingest or self.infer)


def plan_nrt(
    newest: pd.Period,
    final: pd.Period | None,
    ingested: set[pd.Period],
    preliminary: set[pd.Period],
    mapped: set[pd.Period],
    length: int = LENGTH,
) -> NrtPlan:
    """The work for the window of ``length`` months ending at ``newest`` (deterministic).

    Parameters
    ----------
    newest
        The source's newest complete month (ERA5T included).
    final
        Its newest complete month of final ERA5 (None if none).
    ingested, preliminary, mapped
        Months the lake has ingested, ingested from ERA5T, and mapped.
    """
    window = MonthWindow(newest - (length - 1), newest)
    ingest = stale_months(window.months, ingested, preliminary, final)
    infer = months_to_map(window.months, mapped, ingest)
    return NrtPlan(window, ingest, infer)


@dataclass
class NrtReport:
    """What a near-real-time run did."""

    plan: NrtPlan
    seconds: float
    outputs: list[tuple[str, str]] = field(default_factory=list)


def _span(months: list[pd.Period]) -> MonthWindow:
    """The contiguous window covering ``months`` (months inside it are redone: idempotent)."""
    return MonthWindow(min(months), max(months))


def run_nrt(settings: Settings, client: Client) -> NrtReport:
    """Bring the lake's newest 12 months up to the source and rebuild the budgets.

    ``settings.end``, when given, stands in for the source's newest complete month (to redo
    a past run); it may not lie beyond it.

    Raises
    ------
    carbonsink.errors.CarbonsinkError
        Bad input or a failed step (one line); the steps before it stay published.
    """
    t0 = time.perf_counter()
    if not settings.source:
        raise ConfigError("nrt needs a source: pass --source URL (an ARCO-ERA5 store)")
    lake = Lake(settings.lake, settings.lake_storage)
    if lake.info() is None:
        raise LakeError(
            f"{lake.url} is not a carbonsink lake yet; make one with trained emulators first "
            "(carbonsink run, or backfill after ingest + labels + train)"
        )
    check_emulators(lake, settings.serve.variant)
    valid = open_source(settings.source, settings.source_storage).available()
    newest = newest_complete_month(valid)
    if newest is None:
        raise SourceError(
            f"source {settings.source} holds no complete month ({valid.describe()}); wait for "
            "a month's data or check the store"
        )
    if settings.end:
        asked = parse_month(settings.end)
        if asked > newest:
            raise ConfigError(
                f"--end {asked} is past the source's newest complete month {newest}; drop "
                "--end or choose a month up to it"
            )
        newest = asked
    with RunLock(lake, new_run_id(), "nrt"):
        return _update(settings, client, lake, valid, newest, t0)


def _update(
    settings: Settings, client: Client, lake: Lake, valid: ValidRange, newest: pd.Period, t0: float
) -> NrtReport:
    """Plan and do the work, holding the lake's run lock."""
    features, layout = open_published_features(lake)
    plan = plan_nrt(
        newest,
        final_months(valid),
        set(ingested_months(features.store, layout)),
        set(era5t_months(features.store, layout)),
        mapped_months(lake),
    )
    console.print(
        f"newest complete month of the source: {newest} (data {valid.describe()}); window "
        f"{plan.window}: ingest {len(plan.ingest)}, map {len(plan.infer)} month(s)"
    )
    budget_exists = lake.open_repo("budget") is not None
    if plan.idle and budget_exists:
        console.print(f"the lake is up to date with the source through {newest}; nothing to do")
        return NrtReport(plan, time.perf_counter() - t0)
    if plan.ingest:
        span = _span(plan.ingest)
        for line in describe(run_ingest(settings.with_window(span.start, span.end), client)):
            console.print(line)
    if plan.infer:
        span = _span(plan.infer)
        for line in run_infer(settings.with_window(span.start, span.end)).lines:
            console.print(line)
    outputs = budget_and_report(settings)
    return NrtReport(plan, time.perf_counter() - t0, outputs)


def command(
    source: SourceOpt = None,
    lake: LakeOpt = None,
    end: Annotated[
        str | None,
        setting(
            "--end",
            path="end",
            help="Newest month to treat as complete, YYYY-MM (default: the source's newest).",
        ),
    ] = None,
    noaa_monthly: NoaaMonthlyOpt = None,
    dask_address: DaskAddressOpt = None,
    ray_address: RayAddressOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Map the source's newest complete months and update this year's budget.

    The 12 months ending with the newest complete month of the source (from ARCO-ERA5's
    valid_time_stop_era5t) are brought into the lake: months not yet ingested, and ERA5T
    months the source now holds as final ERA5, are ingested and mapped; then the budget
    is rebuilt, whose 12-month table ends with the near-real-time budget. A run with nothing
    new does nothing, so it can run daily from a scheduler. Example:

    \b
        carbonsink nrt --source gs://bucket/era5.zarr --lake s3://bucket/carbonsink \\
            --noaa-monthly co2_mm_gl.csv
    """
    from cluster.dask import dask_client

    s = settings(
        config, source=source, lake=lake, end=end, budget={"noaa_monthly": noaa_monthly},
        dask={"address": dask_address}, ray={"address": ray_address},
    )  # fmt: skip
    with dask_client(s.dask) as client:
        report = run_nrt(s, client)
    p = report.plan
    echo(
        f"nrt {p.window}: ingested {len(p.ingest)}, mapped {len(p.infer)} month(s) in "
        f"{report.seconds:.0f} s"
    )
    outputs(report.outputs)
