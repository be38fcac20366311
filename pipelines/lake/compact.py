"""``carbonsink compact``: drop the lake's history older than a retention window.

Every run adds snapshots to the lake's Icechunk stores: a re-ingest of the ERA5T months,
a daily budget, the run lock's heartbeats. Old snapshots keep their chunks alive, so a lake
written daily only grows. For each store this command

1. expires the snapshots older than ``keep_days`` (and deletes the tags that pointed at
   them: the ``run-*`` tags of publishes), keeping every branch's tip, so ``main`` and
   the branch of an unfinished backfill are never touched;
2. deletes what only those snapshots used (chunks, manifests, snapshot and transaction
   files), but never an object younger than ``grace``: a command that writes without the
   lake's lock (ingest, infer, budget) may have it in flight.

It holds the lake's run lock, so it does not run beside a backfill or an nrt run. Before
that, it removes the ``run-*`` branches of runs that were killed outright (SIGKILL, a lost
node) and so could not remove their own (:func:`pipelines.lake.transaction.abandoned_branches`),
so their chunks are collected too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from carbonsink.errors import ConfigError, LakeError
from carbonsink.lake.lake import STORES, Lake
from carbonsink.lake.plan_store import RunLock
from pipelines.lake.transaction import abandoned_branches, new_run_id, remove_abandoned
from pipelines.options import (
    ConfigOpt,
    LakeOpt,
    echo,
    setting,
    settings,
)
from pipelines.progress import console

#: Objects younger than this are kept whatever refers to them.
GRACE = dt.timedelta(hours=1)
#: A century: more would reach before the first snapshot of any lake.
MAX_KEEP_DAYS = 36_500


@dataclass(frozen=True)
class Compacted:
    """What compacting one store removed."""

    store: str
    snapshots: int
    tags: int
    chunks: int
    bytes: int
    branches: int = 0

    def describe(self) -> str:
        """One line for the terminal."""
        return (
            f"{self.store}: {self.branches} abandoned run branch(es) removed, "
            f"{self.snapshots} snapshot(s) and {self.tags} tag(s) expired, "
            f"{self.chunks} chunk(s) deleted, {self.bytes / 1e9:.3f} GB freed"
        )


def run_compact(lake: Lake, keep_days: float, grace: dt.timedelta = GRACE) -> list[Compacted]:
    """Expire history older than ``keep_days`` in every store of ``lake`` and free its objects.

    Parameters
    ----------
    lake
        The lake.
    keep_days
        History newer than this many days is kept (0: only the refs' tips).
    grace
        Objects younger than this are never deleted.

    Raises
    ------
    ConfigError
        ``keep_days`` negative, not a number, or over ``MAX_KEEP_DAYS``.
    LakeError
        Not a lake, or a lake another run holds.
    """
    if not 0 <= keep_days <= MAX_KEEP_DAYS:
        raise ConfigError(
            f"--keep-days must be 0 to {MAX_KEEP_DAYS} (got {keep_days}); 30 keeps a month"
        )
    if lake.info() is None:
        raise LakeError(f"{lake.url} is not a carbonsink lake; check --lake")
    now = dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=keep_days)
    out: list[Compacted] = []
    with RunLock(lake, new_run_id(), "compact"):
        for name in STORES:
            repo = lake.open_repo(name)
            if repo is None:
                continue
            dead = abandoned_branches(lake, name, dt.timedelta(days=keep_days))
            for branch in dead:
                remove_abandoned(lake, name, branch)
            tags = set(repo.list_tags())
            expired = repo.expire_snapshots(cutoff, delete_expired_tags=True)
            summary = repo.garbage_collect(min(cutoff, now - grace))
            done = Compacted(
                name,
                len(expired),
                len(tags - set(repo.list_tags())),
                summary.chunks_deleted,
                summary.bytes_deleted,
                len(dead),
            )
            console.print(done.describe())
            out.append(done)
    return out


def command(
    lake: LakeOpt = None,
    keep_days: Annotated[
        float | None,
        setting(
            "--keep-days",
            path="compact.keep_days",
            help="History newer than this many days is kept (default 30).",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Drop the lake's history older than --keep-days and delete what only it used.

    Snapshots and run tags older than that go; every branch's tip (main, an unfinished
    backfill's) stays, and so do objects younger than an hour. Holds the lake's run lock.

    Example:

    \b
        carbonsink compact --lake s3://bucket/carbonsink --keep-days 30
    """
    s = settings(config, lake=lake, compact={"keep_days": keep_days})
    done = run_compact(Lake(s.lake, s.lake_storage), s.compact.keep_days)
    total = sum(c.bytes for c in done)
    echo(f"compacted {len(done)} store(s) of {s.lake}: {total / 1e9:.3f} GB freed")
