"""``carbonsink status``: the lake's recorded plans, their progress, and the run lock."""

from __future__ import annotations

import pandas as pd

from carbonsink.errors import LakeError
from carbonsink.lake.lake import Lake
from carbonsink.lake.plan_store import describe_lock, read_plans
from pipelines.options import (
    ConfigOpt,
    LakeOpt,
    echo,
    settings,
)
from pipelines.settings import Settings


def status_lines(settings: Settings) -> list[str]:
    """Lines describing the lake's plans (oldest first) and who holds the lake.

    Raises
    ------
    LakeError
        If the URL is not a carbonsink lake.
    """
    lake = Lake(settings.lake, settings.lake_storage)
    if lake.info() is None:
        raise LakeError(f"{lake.url} is not a carbonsink lake; check --lake")
    plans, lock = read_plans(lake)
    lines = [f"lake {lake.url}: " + (f"busy, {describe_lock(lock)}" if lock else "idle")]
    if not plans:
        lines.append("no recorded plans (carbonsink backfill records one)")
    for p in plans:
        done = [u for u in p.units if u.id in p.done]
        created = pd.Timestamp(p.created, unit="s", tz="UTC")
        lines.append(
            f"{p.id}: {p.command} {p.args.get('start')}..{p.args.get('end')} from "
            f"{p.args.get('source')}, created {created:%Y-%m-%d %H:%M} UTC: "
            f"{len(done)}/{len(p.units)} units done"
            + ("" if p.complete else f", next {next(u.id for u in p.units if u.id not in p.done)}")
        )
    return lines


def command(lake: LakeOpt = None, config: ConfigOpt = None) -> None:
    """Show the lake's recorded plans (backfills), their progress, and who holds the lake.

    Example:

    \b
        carbonsink status --lake s3://bucket/carbonsink
    """
    for line in status_lines(settings(config, lake=lake)):
        echo(line)
