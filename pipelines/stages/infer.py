"""``carbonsink infer``: map a window of months through the emulator's Ray Serve application.

1. Plan: every tile key (member, month, tile) of the window; the ``sinkmap`` store (one
   group per member plus the ensemble median and spread, one tile per chunk so that no two
   tiles share a chunk) is created or extended on the run's branch.
2. Stream: each key goes to the Serve application with a fork of the run's session; at most
   ``serve.in_flight`` requests are outstanding; a failed key (a replica that died, a
   timeout) is sent again up to ``serve.retries`` times. The replicas write the tiles into
   their forks; the forks come back and are merged into the run's session.
3. Ensemble: per month, the median and the spread (sample standard deviation) of the
   members, and checks (no NaN over a flux's domain, plausible magnitudes). Then commit and
   publish by compare-and-swap: a reader sees the whole window or none of it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import icechunk
import pandas as pd

from carbonsink.emulator.mapper import load_emulators
from carbonsink.emulator.tiles import TileKey, tile_keys
from carbonsink.errors import ConfigError, LakeError
from carbonsink.lake.features_store import (
    ingested_months,
    open_published_features,
    read_static,
    snapshot_metadata,
)
from carbonsink.lake.lake import Lake
from carbonsink.lake.sinkmap import (
    ensemble_and_check,
    prepare_store,
    sinkmap_groups,
    sinkmap_layout,
)
from carbonsink.timeutil import MonthWindow
from pipelines.lake.transaction import StoreTransaction, new_run_id
from pipelines.options import (
    ConfigOpt,
    EndOpt,
    LakeOpt,
    RayAddressOpt,
    StartOpt,
    VariantOpt,
    WithReferenceOpt,
    echo,
    settings,
)
from pipelines.progress import console, progress_bar, tracked
from pipelines.settings import ServeSettings, Settings


@dataclass
class InferReport:
    """What an inference run published."""

    store: str
    months: list[str]
    keys: int
    retried: int
    seconds: float
    batch_sizes: dict[int, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


async def _answer(response: Any, timeout_s: float) -> Any:
    """A Serve response, or ``TimeoutError`` (and the request cancelled) after ``timeout_s``.

    A request held by a replica that died can hang rather than fail (measured: 90 s in
    the killed-replica test), so every request gets a deadline and is sent again after it.
    """

    async def wait() -> Any:
        return await response

    try:
        return await asyncio.wait_for(wait(), timeout_s)
    except TimeoutError:
        response.cancel()
        raise


async def _stream(
    routes: Any,
    keys: list[TileKey],
    fork: icechunk.ForkSession,
    in_flight: int,
    retries: int,
    timeout_s: float,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[icechunk.ForkSession], int, Counter[int]]:
    from cluster.serve_app import TileRequest

    sem = asyncio.Semaphore(in_flight)
    retried = 0
    sizes: Counter[int] = Counter()
    forks: list[icechunk.ForkSession] = []
    with progress_bar() as bar:
        task = bar.add_task("tiles through Serve", total=len(keys))

        async def one(key: TileKey) -> None:
            nonlocal retried
            async with sem:
                for attempt in range(retries + 1):
                    try:
                        handle = routes.handle(key.member)
                        response = handle.map_tile.remote(TileRequest(key, fork))
                        result = await _answer(response, timeout_s)
                    except Exception as exc:  # a replica died, a timeout: send the key again
                        first = (str(exc).splitlines() or [""])[0][:160]
                        error = f"{type(exc).__name__}: {first}"
                    else:
                        if result.status == "ok":
                            forks.append(result.fork)
                            sizes[result.batch_size] += 1
                            bar.advance(task)
                            if progress is not None:
                                progress(len(forks), len(keys))
                            return
                        error = result.status
                    if attempt < retries:
                        retried += 1
                        await asyncio.sleep(min(2.0**attempt, 10.0))
                raise LakeError(
                    f"tile {key} failed {retries + 1} times ({error}); nothing was published, "
                    "fix the cause and run carbonsink infer again"
                )

        await asyncio.gather(*(one(k) for k in keys))
    return forks, retried, sizes


def check_emulators(lake: Lake, variant: str) -> list[str]:
    """The members whose ``variant`` emulator fits the lake's features, checked up front.

    Raises
    ------
    carbonsink.errors.CarbonsinkError
        No features or models, or a checkpoint for another grid or driver set.
    """
    _, layout = open_published_features(lake)
    return sorted(load_emulators(lake, variant, layout))


@dataclass
class Mapped:
    """What streaming a set of tile keys through Serve did."""

    retried: int
    batch_sizes: Counter[int]
    stream_s: float
    merge_s: float


@dataclass
class MapService:
    """The emulator's Serve application, deployed for the duration of a command."""

    routes: Any
    members: list[str]
    tiles_per_month: int
    settings: ServeSettings

    def keys(
        self, months: Sequence[pd.Period], tiles: Sequence[int] | None = None
    ) -> list[TileKey]:
        """Tile keys of ``months`` for every member (``tiles``: all of a month's by default)."""
        every = range(self.tiles_per_month)
        return tile_keys(months, self.members, every if tiles is None else tiles)

    def map_into(
        self,
        session: icechunk.Session,
        keys: list[TileKey],
        progress: Callable[[int, int], None] | None = None,
    ) -> Mapped:
        """Stream ``keys`` through the replicas into forks of ``session``; merge them back.

        Nothing is committed: the caller commits ``session`` when it holds what it needs.
        """
        s = self.settings
        t0 = time.perf_counter()
        forks, retried, sizes = asyncio.run(
            _stream(self.routes, keys, session.fork(), s.in_flight, s.retries,
                    s.request_timeout_s, progress)
        )  # fmt: skip
        t1 = time.perf_counter()
        session.merge(*forks)
        return Mapped(retried, sizes, t1 - t0, time.perf_counter() - t1)


@contextmanager
def serving(settings: Settings) -> Iterator[MapService]:
    """Ray connected and the Serve application deployed, for ``settings``'s lake."""
    from cluster.ray import ray_session
    from cluster.serve_app import deploy

    lake = Lake(settings.lake, settings.lake_storage)
    with ray_session(settings.ray):
        routes, info = deploy(lake.url, settings.lake_storage.model_dump(), settings.serve)
        yield MapService(routes, info["members"], info["tiles_per_month"], settings.serve)


def run_infer(
    settings: Settings, progress: Callable[[int, int], None] | None = None
) -> InferReport:
    """Map ``settings.start``..``settings.end`` through the Serve application.

    ``progress(done, total)`` is called as tiles complete (besides the progress bar).

    Raises
    ------
    carbonsink.errors.CarbonsinkError
        Bad input or a failed run, with a one-line message; nothing is then published.
    """
    t0 = time.perf_counter()
    if not (settings.start and settings.end):
        raise ConfigError("infer needs a window: pass --start YYYY-MM and --end YYYY-MM")
    window = MonthWindow.parse(settings.start, settings.end)
    lake = Lake(settings.lake, settings.lake_storage)
    features, flayout = open_published_features(lake)
    have = set(ingested_months(features.store, flayout))
    missing = [m for m in window.months if m not in have]
    if missing:
        raise ConfigError(
            f"the lake's features lack {len(missing)} month(s) of {window} (first {missing[0]}); "
            "ingest them first or choose a window inside the ingested months"
        )
    check_emulators(lake, settings.serve.variant)  # here, not in every replica
    layout = sinkmap_layout(flayout)
    months = list(window.months)
    with serving(settings) as service:
        names = service.members
        keys = service.keys(months)
        console.print(
            f"mapping {len(months)} month(s) x {len(names)} member(s) x "
            f"{service.tiles_per_month} tiles through Serve ({settings.serve.variant}, "
            f"{len(service.routes.handles)} emulator deployment(s))"
        )
        run_id = new_run_id()
        with StoreTransaction(lake, "sinkmap", run_id) as tx:
            session = tx.session()
            prepare_store(session, layout, sinkmap_groups(names, settings.serve.variant, run_id))
            if session.has_uncommitted_changes:
                session.commit("sinkmap layout", metadata=snapshot_metadata(run=run_id))
            session = tx.session()
            mapped = service.map_into(session, keys, progress)
            session.commit(f"tiles {window}", metadata=snapshot_metadata(run=run_id))
            t_ensemble = time.perf_counter()
            session = tx.session()
            lf = read_static(features.store, "land_fraction")
            with tracked("ensemble and checks", len(months)) as progress:
                ensemble_and_check(session, layout, names, months, lf, progress)
            session.commit(
                f"sink map {window}",
                metadata=snapshot_metadata(run=run_id, stage="infer", window=str(window)),
            )
            tx.publish()
    seconds = time.perf_counter() - t0
    sizes = mapped.batch_sizes
    lines = [
        f"mapped {len(keys)} tiles ({len(months)} months, members {', '.join(names)}) in "
        f"{seconds:.0f} s: streaming {mapped.stream_s:.1f} s, merging {mapped.merge_s:.1f} s, "
        f"ensemble and checks {time.perf_counter() - t_ensemble:.1f} s; {mapped.retried} "
        f"retried; requests by batch size {dict(sorted(sizes.items()))}"
    ]
    return InferReport(
        store=lake.store_location("sinkmap").url,
        months=[str(m) for m in months],
        keys=len(keys),
        retried=mapped.retried,
        seconds=seconds,
        batch_sizes=dict(sizes),
        lines=lines,
    )


def command(
    lake: LakeOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    ray_address: RayAddressOpt = None,
    variant: VariantOpt = None,
    with_reference: WithReferenceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Map a window of months at the model grid through the emulator's Ray Serve app.

    Every tile of every member and month is streamed through the application (batched on
    the GPU when replicas have one), written to the lake's sinkmap store with the
    ensemble median and spread, checked, and published in one transaction. Example:

    \b
        carbonsink infer --lake output/lake --start 2024-01 --end 2024-12
    """
    s = settings(
        config, lake=lake, start=start, end=end, ray={"address": ray_address},
        serve={"variant": variant, "with_reference": with_reference},
    )  # fmt: skip
    report = run_infer(s)
    for line in report.lines:
        echo(line)
    echo(f"sink map: {report.store}")
