"""``carbonsink backfill``: a long window as a recorded plan that survives being killed.

1. Plan: the window is cut into partitions of ``--partition-months`` (default: calendar
   years) and each gets an ``ingest`` and a ``map`` unit; all ingest units come first, so a
   cluster's Dask stage ends before its GPU stage begins. The plan's id hashes the arguments
   that shape the output, and the plan is recorded in the lake's ``plans`` store before any
   work (``carbonsink.lake.plan_store``).
2. Lock: the driver holds the lake's run lock (with a heartbeat) for the whole run; a second
   driver on the lake stops with a message naming the first. A lock whose holder died is
   taken over.
3. Work: each unit is its own transaction (publish by compare-and-swap) and is marked done
   right after it publishes. Started again with the same arguments (after Ctrl-C, kill -9,
   a lost node), the driver skips the done units; the unit it was in when it died is redone,
   which rewrites identical bytes.
4. Budget and report, rebuilt from the whole sink map (always; they are cheap).

The emulators must exist (``carbonsink labels`` and ``carbonsink train``, or a first
``carbonsink run``): a backfill maps with them, it does not train them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from distributed import Client

from carbonsink.config import Settings
from carbonsink.errors import ConfigError, LakeError
from carbonsink.lake.lake import Lake
from carbonsink.lake.plan_store import Plan, RunLock, make_plan, mark_done, record_plan
from carbonsink.timeutil import MonthWindow
from pipelines.infer import check_emulators, run_infer
from pipelines.ingest import describe, run_ingest
from pipelines.progress import console
from pipelines.report import budget_and_report
from pipelines.transaction import new_run_id


@dataclass
class BackfillReport:
    """What a backfill did."""

    plan: str
    partitions: list[str]
    done_before: int
    units_run: int
    seconds: float
    outputs: list[tuple[str, str]] = field(default_factory=list)


def partitions(window: MonthWindow, months: int = 12) -> list[MonthWindow]:
    """The window cut into runs of ``months`` months, aligned to calendar years when 12.

    Other lengths are aligned to the start of the window's first year, so the cuts never
    depend on where a window happens to start within them (deterministic).
    """
    if months < 1:
        raise ConfigError(f"partition length {months} must be at least 1 month")
    out = []
    start = window.start
    while start <= window.end:
        offset = (start.month - 1) % months  # months since the cut before ``start``
        end = min(window.end, start + (months - offset - 1))
        out.append(MonthWindow(start, end))
        start = end + 1
    return out


def plan_args(settings: Settings) -> dict[str, Any]:
    """The arguments that shape a backfill's output (they name its plan)."""
    return {
        "source": settings.source,
        "start": settings.start,
        "end": settings.end,
        "partition_months": settings.partition_months,
        "grid": settings.grid.model_dump(mode="json"),
        "ingest": settings.ingest.model_dump(mode="json"),
        "variant": settings.serve.variant,
    }


def backfill_plan(settings: Settings) -> Plan:
    """The deterministic plan of ``settings``'s window."""
    return make_plan(
        "backfill", plan_args(settings), partitions(settings.window(), settings.partition_months)
    )


def run_backfill(settings: Settings, client: Client) -> BackfillReport:
    """Work through the plan of ``settings.start``..``settings.end``, then the budget.

    Raises
    ------
    carbonsink.errors.CarbonsinkError
        Bad input, no emulators, a busy lake, or a failed unit (one line); the units before
        it stay published and recorded, and the same command resumes after them.
    """
    t0 = time.perf_counter()
    lake = Lake(settings.lake, settings.lake_storage)
    plan = backfill_plan(settings)
    # Refuse before any work when nothing could map the months.
    if lake.info() is None:
        raise LakeError(
            f"{lake.url} is not a carbonsink lake yet; make one with trained emulators first "
            "(carbonsink run, or ingest + labels + train)"
        )
    check_emulators(lake, settings.serve.variant)
    owner = new_run_id()
    with RunLock(lake, owner, "backfill"):
        done = record_plan(lake, plan)
        todo = [u for u in plan.units if u.id not in done]
        console.print(
            f"plan {plan.id}: {len(plan.units)} units, {len(plan.units) - len(todo)} done "
            f"before, {len(todo)} to do"
        )
        for n, unit in enumerate(todo, start=1):
            console.print(f"unit {n}/{len(todo)}: {unit.stage} {unit.start}..{unit.end}")
            sub = settings.model_copy(update={"start": unit.start, "end": unit.end})
            if unit.stage == "ingest":
                for line in describe(run_ingest(sub, client)):
                    console.print(line)
            else:
                for line in run_infer(sub).lines:
                    console.print(line)
            mark_done(lake, plan, unit, run=owner)
        outputs = budget_and_report(settings)
    parts = sorted({f"{u.start}..{u.end}" for u in plan.units})
    return BackfillReport(
        plan.id,
        parts,
        len(plan.units) - len(todo),
        len(todo),
        time.perf_counter() - t0,
        outputs,
    )
