"""``carbonsink backfill``: a long window as a recorded plan that survives being killed.

1. Plan: the window is cut into partitions of ``--partition-months`` (default: calendar
   years). Each gets an ``ingest`` unit (the Dask stage regrids whole fields), and all of
   them come first, so a cluster's Dask stage ends before its GPU stage begins. Then each
   partition gets a ``map`` unit per band of tile rows (``--tile-bands``) and a ``publish``
   unit. The plan's id hashes the arguments that shape the output, and the plan is recorded
   in the lake's ``plans`` store before any work (``carbonsink.lake.plan_store``).
2. Lock: the driver holds the lake's run lock (with a heartbeat) for the whole run; a second
   driver on the lake stops with a message naming the first. A lock whose holder died is
   taken over.
3. Work: each unit commits on its own and is marked done right after. An ingest unit is a
   transaction that publishes its months by compare-and-swap. A partition's map units
   commit their bands on a branch of the sink map named after the plan and the partition,
   which outlives the driver; its publish unit computes the ensemble median and spread,
   checks every member and moves ``main`` to the branch's tip. Readers never see a
   half-mapped month, since the median and a month's flags need every tile. Started again
   with the same arguments (after Ctrl-C, kill -9, a lost node), the driver skips the done
   units; the unit it was in when it died is redone, which rewrites identical bytes. A
   partition whose branch ``main`` has moved past (another run published to the sink map
   meanwhile) is mapped again from ``main``.
4. Budget and report, rebuilt from the whole sink map (always; they are cheap).

The emulators must exist (``carbonsink labels`` and ``carbonsink train``, or a first
``carbonsink run``): a backfill maps with them, it does not train them.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Annotated, Any

from distributed import Client

from carbonsink.emulator.tiles import band_tiles
from carbonsink.errors import ConfigError, LakeError
from carbonsink.lake.features_store import open_published_features, read_static, snapshot_metadata
from carbonsink.lake.flux_store import FluxLayout
from carbonsink.lake.lake import Lake
from carbonsink.lake.plan_store import (
    Plan,
    RunLock,
    Unit,
    make_plan,
    mark_done,
    mark_undone,
    record_plan,
)
from carbonsink.lake.sinkmap import (
    ensemble_and_check,
    prepare_store,
    sinkmap_groups,
    sinkmap_layout,
)
from carbonsink.timeutil import MonthWindow
from pipelines.lake.transaction import DurableBranch, StoreTransaction, new_run_id
from pipelines.options import (
    ConfigOpt,
    DaskAddressOpt,
    EndOpt,
    LakeOpt,
    RayAddressOpt,
    SourceOpt,
    StartOpt,
    echo,
    outputs,
    setting,
    settings,
)
from pipelines.progress import console, tracked
from pipelines.settings import Settings
from pipelines.stages.infer import MapService, check_emulators, serving
from pipelines.stages.ingest import describe, run_ingest
from pipelines.stages.report import budget_and_report


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
    """The window cut into runs of ``months`` months: calendar years when 12.

    The cuts fall where the count of months since January of year 0 is a multiple of
    ``months``, so they never depend on where a window starts: a window that starts later
    (a resumed, shortened or extended backfill) is cut at the same months.
    """
    if months < 1:
        raise ConfigError(f"partition length {months} must be at least 1 month")
    out = []
    start = window.start
    while start <= window.end:
        offset = (start.year * 12 + start.month - 1) % months  # months since the last cut
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
        "tile_bands": settings.tile_bands,
        "grid": settings.grid.model_dump(mode="json"),
        "ingest": settings.ingest.model_dump(mode="json"),
        "variant": settings.serve.variant,
    }


def backfill_plan(settings: Settings) -> Plan:
    """The deterministic plan of ``settings``'s window."""
    parts = partitions(settings.window(), settings.partition_months)
    return make_plan("backfill", plan_args(settings), parts, settings.tile_bands)


def partition_branch(lake: Lake, plan: Plan, unit: Unit) -> DurableBranch:
    """The sink-map branch that a partition's map units commit to."""
    return DurableBranch(lake, "sinkmap", f"{plan.id}-{unit.start}-{unit.end}")


def _partition_units(plan: Plan, unit: Unit) -> list[Unit]:
    """The map and publish units of ``unit``'s partition."""
    return [
        u for u in plan.units
        if u.stage in ("map", "publish") and (u.start, u.end) == (unit.start, unit.end)
    ]  # fmt: skip


def reconcile(lake: Lake, plan: Plan, done: dict[str, Any]) -> dict[str, Any]:
    """Bring the record in line with the sink map's branches; the done units after it.

    A partition with bands done but not published needs its branch, based on the current
    ``main``: a branch that is gone, or that ``main`` has moved past, means mapping the
    partition again. A partition whose publish happened but was not recorded (the driver
    died in between) is recorded now.
    """
    if lake.open_repo("sinkmap") is None:
        return done
    for unit in plan.units:
        if unit.stage != "publish" or unit.id in done:
            continue
        branch = partition_branch(lake, plan, unit)
        if branch.published():
            mark_done(lake, plan, unit, run="recovered")
            continue
        bands = [u for u in _partition_units(plan, unit) if u.id in done]
        exists = branch.exists()
        if (exists and branch.behind()) or (bands and not exists):
            console.print(
                f"{unit.start}..{unit.end}: its branch is gone or the sink map moved on since; "
                "mapping it again"
            )
            branch.drop()
            if bands:
                mark_undone(lake, plan, bands)
    return record_plan(lake, plan)


class _PartitionMapper:
    """The map and publish units of a backfill, over one deployment of the Serve app."""

    def __init__(self, settings: Settings, lake: Lake, plan: Plan, owner: str) -> None:
        self.settings, self.lake, self.plan, self.owner = settings, lake, plan, owner
        self.features, flayout = open_published_features(lake)
        self.layout: FluxLayout = sinkmap_layout(flayout)
        self.stack = ExitStack()
        self._service: MapService | None = None

    def service(self) -> MapService:
        """The Serve application, deployed on first use (after the ingest units)."""
        if self._service is None:
            self._service = self.stack.enter_context(serving(self.settings))
            if self.lake.open_repo("sinkmap") is None:  # an empty sink map to branch from
                with StoreTransaction(self.lake, "sinkmap", self.owner) as tx:
                    session = tx.session()
                    prepare_store(session, self.layout, {})
                    session.commit("sinkmap layout", metadata=snapshot_metadata(run=self.owner))
                    tx.publish()
        return self._service

    def map_band(self, unit: Unit) -> str:
        """Map one band of a partition's tiles and commit it on the partition's branch."""
        service = self.service()
        assert unit.band is not None
        tiles = band_tiles(
            self.layout.grid.shape,
            (self.layout.tiling.nlat, self.layout.tiling.nlon),
            unit.band,
            self.settings.tile_bands,
        )
        months = list(MonthWindow.parse(unit.start, unit.end).months)
        keys = service.keys(months, tiles)
        if not keys:
            return f"{unit.id}: no tile rows in this band"
        branch = partition_branch(self.lake, self.plan, unit)
        session = branch.session()
        groups = sinkmap_groups(service.members, self.settings.serve.variant, self.owner)
        prepare_store(session, self.layout, groups)
        if session.has_uncommitted_changes:  # a session with changes cannot be forked
            session.commit("sinkmap layout", metadata=snapshot_metadata(run=self.owner))
            session = branch.session()
        mapped = service.map_into(session, keys)
        session.commit(f"tiles {unit.id}", metadata=snapshot_metadata(run=self.owner))
        return (
            f"mapped {len(keys)} tiles ({unit.id}) in {mapped.stream_s:.1f} s; "
            f"{mapped.retried} retried"
        )

    def publish(self, unit: Unit) -> str:
        """The partition's ensemble and checks, then ``main`` moved to its branch's tip."""
        service = self.service()
        branch = partition_branch(self.lake, self.plan, unit)
        if not branch.exists():
            raise LakeError(
                f"the sink-map branch of {unit.start}..{unit.end} is gone; run the same "
                "command again to map the partition anew"
            )
        if not branch.published():
            months = list(MonthWindow.parse(unit.start, unit.end).months)
            session = branch.session()
            lf = read_static(self.features.store, "land_fraction")
            with tracked("ensemble and checks", len(months)) as progress:
                ensemble_and_check(session, self.layout, service.members, months, lf, progress)
            window = f"{unit.start}..{unit.end}"
            session.commit(
                f"sink map {window}",
                metadata=snapshot_metadata(run=self.owner, stage="backfill", window=window),
            )
            branch.publish(f"run-{branch.name}")
        return f"published the sink map of {unit.start}..{unit.end}"

    def drop_published(self) -> None:
        """Delete the branches of published partitions (their tags keep the snapshots)."""
        if self.lake.open_repo("sinkmap") is None:
            return
        done = record_plan(self.lake, self.plan)
        for unit in self.plan.units:
            if unit.stage == "publish" and unit.id in done:
                partition_branch(self.lake, self.plan, unit).drop()


def run_backfill(settings: Settings, client: Client) -> BackfillReport:
    """Work through the plan of ``settings.start``..``settings.end``, then the budget.

    Raises
    ------
    carbonsink.errors.CarbonsinkError
        Bad input, no emulators, a busy lake, or a failed unit (one line); the units before
        it stay committed and recorded, and the same command resumes after them.
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
        done = reconcile(lake, plan, record_plan(lake, plan))
        todo = [u for u in plan.units if u.id not in done]
        done_before = len(plan.units) - len(todo)
        console.print(
            f"plan {plan.id}: {len(plan.units)} units, {done_before} done before, {len(todo)} to do"
        )
        mapper = _PartitionMapper(settings, lake, plan, owner)
        with mapper.stack:
            for n, unit in enumerate(todo, start=1):
                console.print(f"unit {n}/{len(todo)}: {unit.id}")
                if unit.stage == "ingest":
                    sub = settings.with_window(unit.start, unit.end)
                    for line in describe(run_ingest(sub, client)):
                        console.print(line)
                elif unit.stage == "map":
                    console.print(mapper.map_band(unit))
                else:
                    console.print(mapper.publish(unit))
                mark_done(lake, plan, unit, run=owner)
        mapper.drop_published()
        outputs = budget_and_report(settings)
    parts = sorted({f"{u.start}..{u.end}" for u in plan.units})
    return BackfillReport(plan.id, parts, done_before, len(todo), time.perf_counter() - t0, outputs)


def command(
    source: SourceOpt = None,
    lake: LakeOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    partition_months: Annotated[
        int | None,
        setting(
            "--partition-months",
            path="partition_months",
            help="Months per unit of work (default 12: calendar years).",
        ),
    ] = None,
    tile_bands: Annotated[
        int | None,
        setting(
            "--tile-bands",
            path="tile_bands",
            help="Bands of tile rows a partition is mapped in, one unit each (default 3).",
        ),
    ] = None,
    dask_address: DaskAddressOpt = None,
    ray_address: RayAddressOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Ingest and map a long window with the lake's emulators, resumably; then the budget.

    The window is planned as units, recorded in the lake before any work: an ingest unit
    per partition of months, then per partition a map unit per band of tile rows and a
    publish unit. Each unit commits on its own and is marked done when it has; readers see
    a partition's months when its publish unit has run. Killed and started again with the
    same arguments, it resumes after the done units (carbonsink status shows the plan). One
    driver per lake at a time. The lake needs trained emulators (carbonsink labels + train,
    or a first carbonsink run). Example:

    \b
        carbonsink backfill --source era5.zarr --lake s3://bucket/carbonsink \\
            --start 2015-01 --end 2024-12
    """
    from cluster.dask import dask_client

    s = settings(
        config, source=source, lake=lake, start=start, end=end,
        partition_months=partition_months, tile_bands=tile_bands,
        dask={"address": dask_address}, ray={"address": ray_address},
    )  # fmt: skip
    with dask_client(s.dask) as client:
        report = run_backfill(s, client)
    echo(
        f"backfill plan {report.plan}: {len(report.partitions)} partition(s); "
        f"{report.done_before} unit(s) done before, {report.units_run} run now, in "
        f"{report.seconds:.0f} s"
    )
    outputs(report.outputs)
