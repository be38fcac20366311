"""``carbonsink backfill``: a long window, partitioned by calendar year.

Each partition (the months of one calendar year inside the window) is ingested and then
mapped through the Serve application, each step its own transaction; the budget and its
report are rebuilt once at the end. A partition that fails leaves the partitions before it
published; running the same command again redoes the work from the start (re-ingesting a
month rewrites identical bytes). Resuming from a recorded plan is issue 6's work.

The emulators must exist (``carbonsink labels`` and ``carbonsink train``, or a first
``carbonsink run``): a backfill maps with them, it does not train them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from distributed import Client

from carbonsink.config import Settings
from carbonsink.emulator.mapper import published_members
from carbonsink.errors import LakeError
from carbonsink.lake.lake import Lake
from carbonsink.timeutil import MonthWindow
from pipelines.infer import run_infer
from pipelines.ingest import describe, run_ingest
from pipelines.progress import console
from pipelines.report import budget_and_report


@dataclass
class BackfillReport:
    """What a backfill published."""

    partitions: list[str]
    seconds: float
    outputs: list[tuple[str, str]] = field(default_factory=list)


def partitions(window: MonthWindow) -> list[MonthWindow]:
    """The window cut at calendar years, in order (deterministic)."""
    out = []
    start = window.start
    while start <= window.end:
        end = min(window.end, start.asfreq("Y").asfreq("M", how="end"))
        out.append(MonthWindow(start, end))
        start = end + 1
    return out


def run_backfill(settings: Settings, client: Client) -> BackfillReport:
    """Ingest and map ``settings.start``..``settings.end`` year by year, then the budget.

    Raises
    ------
    carbonsink.errors.CarbonsinkError
        Bad input, no emulators, or a failed partition (one line); the partitions before it
        stay published.
    """
    t0 = time.perf_counter()
    window = settings.window()
    lake = Lake(settings.lake, settings.lake_storage)
    # Refuse before any work when nothing could map the months.
    if lake.info() is None:
        raise LakeError(
            f"{lake.url} is not a carbonsink lake yet; make one with trained emulators first "
            "(carbonsink run, or ingest + labels + train)"
        )
    published_members(lake, settings.serve.variant)
    parts = partitions(window)
    for n, part in enumerate(parts, start=1):
        console.print(f"partition {n}/{len(parts)}: {part}")
        sub = settings.model_copy(update={"start": str(part.start), "end": str(part.end)})
        for line in describe(run_ingest(sub, client)):
            console.print(line)
        for line in run_infer(sub).lines:
            console.print(line)
    outputs = budget_and_report(settings)
    return BackfillReport([str(p) for p in parts], time.perf_counter() - t0, outputs)
