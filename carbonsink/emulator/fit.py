"""Fit one member's emulator from cut tiles: normalisation, training set, training, metadata.

The training set of a member is its labelled tiles (supervised loss) and the tiles of the
months it has no label for (mean-teacher consistency loss), each with the member's
baseline climatology as extra channels: the network predicts a correction to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

from carbonsink._version import __version__
from carbonsink.emulator.base import EmulatorMetadata
from carbonsink.emulator.cnn import CnnEmulator, TileCNN
from carbonsink.emulator.inputs import Baseline, normalise
from carbonsink.emulator.sampling import MonthTiles, TrainingMonths, baseline_tiles, stack_rows
from carbonsink.emulator.train import TrainConfig, TrainingSet, TrainResult, train_tiles
from carbonsink.lake.flux_store import FLUXES

#: Training variants: name -> whether the mean-teacher consistency loss is on.
VARIANTS = {"mean-teacher": True, "supervised": False}


@dataclass(frozen=True)
class Recipe:
    """How an emulator is trained: the tiles' crop, the network's width, the training loop."""

    crop: int = 32
    hidden: int = 32
    train: TrainConfig = field(default_factory=TrainConfig)

    def config(self, semi: bool) -> TrainConfig:
        """The training loop's configuration; ``semi`` turns the consistency loss on.

        The baseline channels (the last ``len(FLUXES)``) are left unperturbed.
        """
        weight = self.train.consistency_weight if semi else 0.0
        return replace(self.train, consistency_weight=weight, clean_channels=len(FLUXES))


@dataclass
class MemberData:
    """A member's training set and what was needed to build it."""

    member: str
    data: TrainingSet
    scale: dict[str, float]
    normalisation: dict[str, tuple[float, float]]
    unlabelled: list[MonthTiles]


def member_data(
    member: str,
    tiles: list[MonthTiles],
    months: TrainingMonths,
    baseline: Baseline,
    stats: dict[str, tuple[float, float]],
    channels: list[str],
    crop: int,
    halo: int,
) -> MemberData:
    """The member's normalised training set from the tiles of every sampled month.

    Targets are scaled by their standard deviation per flux; the baseline channels are
    the climatology in those output units (the network adds to them).
    """
    lab = [t for t in tiles if member in t.y]
    unl = [t for t in tiles if t.month not in months.labelled[member]]
    y = np.concatenate([t.y[member] for t in lab])
    scale = {
        f: float(np.nanstd(y[:, k])) if np.isfinite(y[:, k]).any() else 1.0
        for k, f in enumerate(FLUXES)
    }
    scale = {f: (s if s > 0 else 1.0) for f, s in scale.items()}
    norm = {**stats, **{f"{f}_baseline": (0.0, scale[f]) for f in FLUXES}}

    def inputs(part: list[MonthTiles]) -> np.ndarray:
        x = stack_rows([t.x for t in part], tiles[0].x)
        b = baseline_tiles(baseline, part, crop, halo)
        return normalise(np.concatenate([x, b], axis=1), channels, norm)

    data = TrainingSet(
        x=inputs(lab),
        y=(y / np.array([scale[f] for f in FLUXES], np.float32)[None, :, None, None]),
        x_unlabelled=inputs(unl),
        mask_unlabelled=stack_rows([t.mask for t in unl], tiles[0].mask),
    )
    return MemberData(member, data, scale, norm, unl)


def fit_emulator(
    prepared: MemberData,
    variant: str,
    months: TrainingMonths,
    baseline: Baseline,
    channels: list[str],
    recipe: Recipe,
    device: torch.device,
    grid_resolution: float,
    holdout: str,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[CnnEmulator, TrainResult]:
    """Train one member's emulator of ``variant`` (a key of :data:`VARIANTS`).

    The network starts from ``recipe.train.seed``, so the same data give the same weights on a
    device. Returns the emulator on the CPU, with its metadata, and the training result.
    """
    semi = VARIANTS[variant]
    cfg = recipe.config(semi)
    torch.manual_seed(cfg.seed)
    arch: dict[str, Any] = {
        "in_channels": len(channels), "hidden": recipe.hidden, "out_channels": 2,
        "baseline": True,
    }  # fmt: skip
    result = train_tiles(TileCNN(**arch), prepared.data, cfg, device, progress)
    lab_months = months.training(prepared.member)
    unl = prepared.unlabelled
    meta = EmulatorMetadata(
        member=prepared.member,
        variant=variant,
        grid_resolution=grid_resolution,
        channels=channels,
        normalisation=prepared.normalisation,
        target_scale=prepared.scale,
        halo=TileCNN.halo,
        architecture=arch,
        training={
            "member_months": len(lab_months),
            "labelled_window": f"{lab_months[0]}..{lab_months[-1]}",
            "unmember_months": len(unl) if semi else 0,
            "unlabelled_window": f"{unl[0].month}..{unl[-1].month}" if unl and semi else "",
            "holdout": holdout,
            "tiles": len(prepared.data.x),
            "crop": recipe.crop,
            "config": asdict(cfg),
            "history": result.history,
            "seconds": round(result.seconds, 1),
            "cells_per_second": round(result.cells_per_second),
            "device": str(device),
            "torch": torch.__version__,
        },
        code_version=__version__,
    )
    assert isinstance(result.module, TileCNN)
    return CnnEmulator(result.module, meta, torch.device("cpu"), baseline), result
