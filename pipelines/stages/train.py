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
from typing import Any

import icechunk
import numpy as np
import pandas as pd
import torch
from distributed import Client

from carbonsink import __version__
from carbonsink.config import Settings
from carbonsink.emulator.base import EmulatorMetadata
from carbonsink.emulator.checkpoint import save_checkpoint
from carbonsink.emulator.cnn import CnnEmulator, TileCNN, pick_device
from carbonsink.emulator.inputs import (
    Baseline,
    StaticFields,
    channel_stats,
    feature_channels,
    input_channels,
    month_channels,
)
from carbonsink.emulator.inputs import normalise as normalise_inputs
from carbonsink.emulator.tiles import pad_global
from carbonsink.emulator.train import TrainConfig, TrainingSet, train_tiles
from carbonsink.errors import ConfigError, LakeError
from carbonsink.lake.features_store import (
    FeaturesLayout,
    ingested_months,
    open_published_features,
    read_attrs,
    snapshot_metadata,
)
from carbonsink.lake.flux_store import (
    FLUXES,
    FluxLayout,
    ensemble,
    imported_members,
    member_months,
    members,
    read_flux,
)
from carbonsink.lake.lake import Lake
from pipelines.lake.transaction import StoreTransaction, new_run_id
from pipelines.progress import progress_bar, wait_with_progress

VARIANTS = {"mean-teacher": True, "supervised": False}


@dataclass
class TrainReport:
    """What a training run published."""

    store: str
    checkpoints: list[str]
    seconds: float
    lines: list[str] = field(default_factory=list)


@dataclass
class MonthTiles:
    """Tiles cut from one month."""

    month: pd.Period
    x: np.ndarray
    mask: np.ndarray
    y: dict[str, np.ndarray]
    origins: np.ndarray


def cut_tiles(
    features: icechunk.Session,
    labels: icechunk.Session,
    channels: list[str],
    statics: StaticFields,
    index: int,
    month: str,
    labelled_for: list[str],
    crop: int,
    halo: int,
    count: int,
    seed: int,
) -> MonthTiles:
    """Cut ``count`` tiles (with halos) from one month; runs on a worker.

    Positions depend only on ``seed`` and the month, so a rerun cuts the same tiles.
    """
    m = pd.Period(month, freq="M")
    raw = month_channels(features.store, feature_channels(channels), index, m, statics)
    ny, nx = raw.shape[-2:]
    padded = pad_global(raw, halo)
    rng = np.random.default_rng([seed, index])
    rows = rng.integers(0, ny - crop + 1, count)
    cols = rng.integers(0, nx - crop + 1, count)
    side = crop + 2 * halo
    x = np.stack([padded[:, i : i + side, j : j + side] for i, j in zip(rows, cols, strict=True)])
    lf = statics.fields["land_fraction"]
    mask = np.stack(
        [np.stack([lf[i : i + crop, j : j + crop] > 0, lf[i : i + crop, j : j + crop] < 1])
         for i, j in zip(rows, cols, strict=True)]
    )  # fmt: skip
    y: dict[str, np.ndarray] = {}
    for member in labelled_for:
        fields = [read_flux(labels.store, member, f, index) for f in FLUXES]
        y[member] = np.stack(
            [np.stack([f[i : i + crop, j : j + crop] for f in fields])
             for i, j in zip(rows, cols, strict=True)]
        ).astype(np.float32)  # fmt: skip
    return MonthTiles(m, x.astype(np.float32), mask, y, np.stack([rows, cols], axis=1))


def member_baseline(
    labels: icechunk.Session, layout: FluxLayout, member: str, months: list[str]
) -> Baseline:
    """A member's label climatology over ``months``; runs on a worker."""
    periods = [pd.Period(m, freq="M") for m in months]
    return Baseline.from_months(
        (m, np.stack([read_flux(labels.store, member, f, layout.month_index(m)) for f in FLUXES]))
        for m in periods
    )


def baseline_tiles(baseline: Baseline, tiles: list[MonthTiles], crop: int, halo: int) -> np.ndarray:
    """The baseline cropped like each month's tiles, ``[N, K, crop + 2h, crop + 2h]``."""
    side = crop + 2 * halo
    padded = {m: pad_global(baseline.month(m), halo) for m in {t.month.month for t in tiles}}
    out = [
        padded[t.month.month][:, i : i + side, j : j + side] for t in tiles for i, j in t.origins
    ]
    return np.stack(out) if out else np.empty((0, len(FLUXES), side, side), np.float32)


def open_labels(lake: Lake) -> tuple[icechunk.Session, FluxLayout]:
    """The published ``labels`` store, read-only, and its layout.

    Raises
    ------
    LakeError
        If the lake has no labels store.
    """
    repo = lake.open_repo("labels")
    if repo is None:
        raise LakeError(
            f"the lake {lake.url} has no labels store; run carbonsink labels first (or import "
            "TRENDY/GOBM files with carbonsink labels --nbp/--fgco2)"
        )
    session = repo.readonly_session("main")
    return session, FluxLayout.from_attrs(read_attrs(session.store))


def plan_months(
    settings: Settings,
    features: icechunk.Session,
    layout: FeaturesLayout,
    labels: icechunk.Session,
    flayout: FluxLayout,
) -> tuple[list[str], dict[str, set[pd.Period]], list[pd.Period]]:
    """Members to train, each member's labelled months, and every month to sample."""
    em = settings.emulator
    have = members(labels.store)
    # Imported TRENDY/GOBM members are the ensemble; the references join only when named.
    chosen = em.members or ensemble(have, imported_members(labels.store), with_reference=False)
    unknown = [m for m in chosen if m not in have]
    if unknown:
        raise ConfigError(
            f"no labels for member(s) {', '.join(unknown)} (the labels store has "
            f"{', '.join(have) or 'none'}); run carbonsink labels or pick --members from those"
        )
    holdout = set(em.holdout.months)
    ingested = set(ingested_months(features.store, layout))
    labelled = {m: set(member_months(labels.store, flayout, m)) & ingested for m in chosen}
    for m, months in labelled.items():
        if not months - holdout:
            raise ConfigError(
                f"member {m} has no labelled month outside the held-out window {em.holdout}; "
                "move --holdout-start/--holdout-end or label more months"
            )
    sample = sorted(ingested - holdout)
    return chosen, labelled, sample


def _stack(parts: list[np.ndarray], like: np.ndarray) -> np.ndarray:
    """Concatenate along the first axis; an empty list gives 0 rows shaped like ``like``."""
    if parts:
        return np.concatenate(parts)
    return np.empty((0, *like.shape[1:]), like.dtype)


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
    chosen, labelled, sample = plan_months(settings, features, layout, labels, flayout)
    channels = input_channels(layout.drivers)
    halo = TileCNN.halo
    statics = StaticFields.from_store(
        features.store, layout.grid, [c[:-5] for c in channels if c.endswith("_anom")]
    )
    statics_f = client.scatter(statics, broadcast=True)
    futures = [
        client.submit(
            cut_tiles, features, labels, channels, statics_f, layout.month_index(m), str(m),
            [mem for mem in chosen if m in labelled[mem]], em.crop, halo, em.crops_per_month,
            em.seed, pure=False,
        )
        for m in sample
    ]  # fmt: skip
    holdout = set(em.holdout.months)
    base_futures = [
        client.submit(member_baseline, labels, flayout, mem,
                      [str(m) for m in sorted(labelled[mem] - holdout)], pure=False)
        for mem in chosen
    ]  # fmt: skip
    done = wait_with_progress(client, futures + base_futures, "training tiles and baselines")
    tiles: list[MonthTiles] = done[: len(futures)]
    baselines: dict[str, Baseline] = dict(zip(chosen, done[len(futures) :], strict=True))
    features_only = feature_channels(channels)
    labelled_x = np.concatenate([t.x for t in tiles if t.y])
    stats = channel_stats(labelled_x[:, :, halo:-halo, halo:-halo], features_only)
    del labelled_x
    device = pick_device(em.device)
    lines: list[str] = []
    emulators: list[CnnEmulator] = []
    for member in chosen:
        lab = [t for t in tiles if member in t.y]
        unl = [t for t in tiles if t.month not in labelled[member]]
        y = np.concatenate([t.y[member] for t in lab])
        scale = {
            f: float(np.nanstd(y[:, k])) if np.isfinite(y[:, k]).any() else 1.0
            for k, f in enumerate(FLUXES)
        }
        scale = {f: (s if s > 0 else 1.0) for f, s in scale.items()}
        # Baseline channels are the climatology in output units: the network adds to them.
        norm = {**stats, **{f"{f}_baseline": (0.0, scale[f]) for f in FLUXES}}

        def inputs(part: list[MonthTiles], _m: str = member, _n: dict = norm) -> np.ndarray:
            x = _stack([t.x for t in part], tiles[0].x)
            b = baseline_tiles(baselines[_m], part, em.crop, halo)
            return normalise_inputs(np.concatenate([x, b], axis=1), channels, _n)

        data = TrainingSet(
            x=inputs(lab),
            y=(y / np.array([scale[f] for f in FLUXES], np.float32)[None, :, None, None]),
            x_unlabelled=inputs(unl),
            mask_unlabelled=_stack([t.mask for t in unl], tiles[0].mask),
        )
        variants = VARIANTS if em.compare_supervised else {"mean-teacher": True}
        for variant, semi in variants.items():
            cfg = TrainConfig(
                epochs=em.epochs,
                batch_size=em.batch_size,
                learning_rate=em.learning_rate,
                consistency_weight=em.consistency_weight if semi else 0.0,
                ema_decay=em.ema_decay,
                input_noise=em.input_noise,
                seed=em.seed,
                clean_channels=len(FLUXES),
            )
            torch.manual_seed(em.seed)
            arch: dict[str, Any] = {
                "in_channels": len(channels), "hidden": em.hidden, "out_channels": 2,
                "baseline": True,
            }  # fmt: skip
            module = TileCNN(**arch)
            with progress_bar() as bar:
                task = bar.add_task(f"train {member} ({variant})", total=1)

                def report(step: int, total: int, loss: float, _t: object = task) -> None:
                    bar.update(_t, completed=step, total=total)  # type: ignore[arg-type]

                result = train_tiles(module, data, cfg, device, report)
            lab_months = sorted(labelled[member] - set(em.holdout.months))
            meta = EmulatorMetadata(
                member=member,
                variant=variant,
                grid_resolution=layout.grid.resolution,
                channels=channels,
                normalisation=norm,
                target_scale=scale,
                halo=halo,
                architecture=arch,
                training={
                    "member_months": len(lab_months),
                    "labelled_window": f"{lab_months[0]}..{lab_months[-1]}",
                    "unmember_months": len(unl) if semi else 0,
                    "unlabelled_window": f"{unl[0].month}..{unl[-1].month}" if unl and semi else "",
                    "holdout": str(em.holdout),
                    "tiles": len(data.x),
                    "crop": em.crop,
                    "config": cfg.__dict__,
                    "history": result.history,
                    "seconds": round(result.seconds, 1),
                    "cells_per_second": round(result.cells_per_second),
                    "device": str(device),
                    "torch": torch.__version__,
                },
                code_version=__version__,
            )
            assert isinstance(result.module, TileCNN)
            emulators.append(
                CnnEmulator(result.module, meta, torch.device("cpu"), baselines[member])
            )
            last = result.history[-1]
            lines.append(
                f"trained {member} ({variant}) on {len(data.x)} labelled + "
                f"{len(data.x_unlabelled) if semi else 0} unlabelled tiles in "
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
