"""``carbonsink train``: one CNN emulator per member, semi-supervised, into ``models``.

1. Sample tiles: one Dask task per month reads the month's input channels (features store)
   and, where the month is labelled, every member's fluxes (labels store), and cuts
   ``crops_per_month`` tiles with halos at positions fixed by the seed and the month.
   One Dask task per member averages its labelled training months by calendar month: the
   baseline climatology the emulator corrects (cropped at the same positions).
2. Per member: normalisation from the labelled tiles, then training on the labelled months
   outside the held-out window plus a mean-teacher consistency loss on the months that
   have drivers but no labels; optionally the same run with no consistency loss (the
   supervised-only baseline the skill report compares against).
3. Checkpoints (weights as Zarr arrays, metadata as JSON) go to a run branch of the
   ``models`` store, published by compare-and-swap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from distributed import Client

from carbonsink.emulator.checkpoint import save_checkpoint
from carbonsink.emulator.cnn import CnnEmulator, TileCNN, pick_device
from carbonsink.emulator.fit import VARIANTS, Recipe, fit_emulator, member_data
from carbonsink.emulator.inputs import (
    Baseline,
    StaticFields,
    channel_stats,
    feature_channels,
    input_channels,
)
from carbonsink.emulator.sampling import MonthTiles, cut_tiles, member_baseline, training_months
from carbonsink.emulator.train import TrainConfig
from carbonsink.errors import LakeError
from carbonsink.lake.features_store import open_published_features, snapshot_metadata
from carbonsink.lake.flux_store import open_labels
from carbonsink.lake.lake import Lake
from pipelines.lake.transaction import StoreTransaction, new_run_id
from pipelines.options import (
    ConfigOpt,
    DaskAddressOpt,
    HoldoutEndOpt,
    HoldoutStartOpt,
    LakeOpt,
    echo,
    setting,
    settings,
    split,
)
from pipelines.progress import tracked, wait_with_progress
from pipelines.settings import EmulatorSettings, Settings


@dataclass
class TrainReport:
    """What a training run published."""

    store: str
    checkpoints: list[str]
    seconds: float
    lines: list[str] = field(default_factory=list)


def recipe(em: EmulatorSettings) -> Recipe:
    """The library's training recipe from the ``emulator`` settings."""
    train = TrainConfig(
        epochs=em.epochs, batch_size=em.batch_size, learning_rate=em.learning_rate,
        consistency_weight=em.consistency_weight, ema_decay=em.ema_decay,
        input_noise=em.input_noise, seed=em.seed,
    )  # fmt: skip
    return Recipe(crop=em.crop, hidden=em.hidden, train=train)


def run_train(settings: Settings, client: Client) -> TrainReport:
    """Train emulators for the lake's labelled members.

    Raises
    ------
    carbonsink.errors.CarbonsinkError
        Bad input, with a one-line message; the lake is then unchanged.
    """
    t0 = time.perf_counter()
    em = settings.emulator
    lake = Lake(settings.lake, settings.lake_storage)
    features, layout = open_published_features(lake)
    labels, flayout = open_labels(lake)
    if flayout.grid != layout.grid:
        raise LakeError("the labels store is on another grid than the features store")
    months = training_months(features.store, layout, labels.store, flayout, em.members, em.holdout)
    chosen = months.members
    channels = input_channels(layout.drivers)
    halo = TileCNN.halo
    statics = StaticFields.from_store(
        features.store, layout.grid, [c[:-5] for c in channels if c.endswith("_anom")]
    )
    statics_f = client.scatter(statics, broadcast=True)
    futures = [
        client.submit(
            cut_tiles, features, labels, channels, statics_f, layout.month_index(m), str(m),
            months.labelled_for(m), em.crop, halo, em.crops_per_month, em.seed, pure=False,
        )
        for m in months.sample
    ]  # fmt: skip
    base_futures = [
        client.submit(member_baseline, labels, flayout, mem,
                      [str(m) for m in months.training(mem)], pure=False)
        for mem in chosen
    ]  # fmt: skip
    done = wait_with_progress(client, futures + base_futures, "training tiles and baselines")
    tiles: list[MonthTiles] = done[: len(futures)]
    baselines: dict[str, Baseline] = dict(zip(chosen, done[len(futures) :], strict=True))
    labelled_x = np.concatenate([t.x for t in tiles if t.y])
    stats = channel_stats(labelled_x[:, :, halo:-halo, halo:-halo], feature_channels(channels))
    del labelled_x
    device = pick_device(em.device)
    how = recipe(em)
    lines: list[str] = []
    emulators: list[CnnEmulator] = []
    for member in chosen:
        prepared = member_data(
            member, tiles, months, baselines[member], stats, channels, em.crop, halo
        )
        variants = list(VARIANTS) if em.compare_supervised else ["mean-teacher"]
        for variant in variants:
            with tracked(f"train {member} ({variant})", 1) as progress:
                emulator, result = fit_emulator(
                    prepared, variant, months, baselines[member], channels, how, device,
                    layout.grid.resolution, str(em.holdout),
                    lambda step, total, _loss: progress(step, total),
                )  # fmt: skip
            emulators.append(emulator)
            data = prepared.data
            last = result.history[-1]
            lines.append(
                f"trained {member} ({variant}) on {len(data.x)} labelled + "
                f"{len(data.x_unlabelled) if VARIANTS[variant] else 0} unlabelled tiles in "
                f"{result.seconds:.0f} s ({result.cells_per_second:,.0f} cells/s on {device}); "
                f"final supervised loss {last['supervised_loss']:.4f}"
            )
    run_id = new_run_id()
    with StoreTransaction(lake, "models", run_id) as tx:
        session = tx.session()
        paths = [save_checkpoint(session.store, e) for e in emulators]
        session.commit(
            f"emulators {', '.join(chosen)}",
            metadata=snapshot_metadata(run=run_id, stage="train", checkpoints=paths),
        )
        tx.publish()
    return TrainReport(
        store=lake.store_location("models").url,
        checkpoints=paths,
        seconds=time.perf_counter() - t0,
        lines=lines,
    )


def command(
    lake: LakeOpt = None,
    members: Annotated[
        str | None,
        setting(
            "--members",
            path="emulator.members",
            help="Comma-separated members to train (default: all).",
        ),
    ] = None,
    holdout_start: HoldoutStartOpt = None,
    holdout_end: HoldoutEndOpt = None,
    epochs: Annotated[
        int | None, setting("--epochs", path="emulator.epochs", help="Training epochs.")
    ] = None,
    crops_per_month: Annotated[
        int | None,
        setting(
            "--crops-per-month", path="emulator.crops_per_month", help="Tiles sampled per month."
        ),
    ] = None,
    seed: Annotated[
        int | None, setting("--seed", path="emulator.seed", help="Random seed.")
    ] = None,
    device: Annotated[
        str | None, setting("--device", path="emulator.device", help="auto, cpu or cuda[:N].")
    ] = None,
    compare_supervised: Annotated[
        bool | None,
        setting(
            "--compare-supervised/--no-compare-supervised",
            path="emulator.compare_supervised",
            help="Also train supervised-only baselines for the skill report.",
        ),
    ] = None,
    dask_address: DaskAddressOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Train one CNN emulator per member (semi-supervised) into the lake's `models` store.

    Tiles of the labelled months outside the held-out window are the supervised data; the
    months with drivers but no labels feed a mean-teacher consistency loss. Runs on the GPU
    when there is one. Run `carbonsink labels` first.
    """
    from cluster.dask import dask_client

    s = settings(
        config,
        lake=lake,
        emulator={
            "members": split(members), "holdout_start": holdout_start,
            "holdout_end": holdout_end, "epochs": epochs, "crops_per_month": crops_per_month,
            "seed": seed, "device": device, "compare_supervised": compare_supervised,
        },
        dask={"address": dask_address},
    )  # fmt: skip
    with dask_client(s.dask) as client:
        report = run_train(s, client)
    for line in report.lines:
        echo(line)
    echo(f"trained {len(report.checkpoints)} emulator(s) in {report.seconds:.0f} s")
    echo(f"models: {report.store}")
