"""Training samples: which months to learn from, tiles cut from them, member baselines.

Tiles are cut at positions fixed by the seed and the month, so a rerun (or a retried task
on another worker) cuts the same tiles. :func:`cut_tiles` and :func:`member_baseline` read
one month or one member each and run as engine tasks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import icechunk
import numpy as np
import pandas as pd

from carbonsink.emulator.inputs import Baseline, StaticFields, feature_channels, month_channels
from carbonsink.emulator.tiles import pad_global
from carbonsink.errors import ConfigError
from carbonsink.lake.features_store import FeaturesLayout, ingested_months
from carbonsink.lake.flux_store import (
    FLUXES,
    FluxLayout,
    ensemble,
    imported_members,
    member_months,
    members,
    read_flux,
)
from carbonsink.timeutil import MonthWindow


@dataclass
class MonthTiles:
    """Tiles cut from one month.

    ``x`` holds the input channels with halos ``[N, C, crop + 2h, crop + 2h]``, ``mask``
    where each flux is defined ``[N, 2, crop, crop]``, ``y`` each labelled member's fluxes
    ``[N, 2, crop, crop]`` and ``origins`` the tiles' south-west cells ``[N, 2]``.
    """

    month: pd.Period
    x: np.ndarray
    mask: np.ndarray
    y: dict[str, np.ndarray]
    origins: np.ndarray


@dataclass
class TrainingMonths:
    """The members to train, each member's labelled months, and every month to sample."""

    members: list[str]
    labelled: dict[str, set[pd.Period]]
    sample: list[pd.Period]
    holdout: set[pd.Period]

    def labelled_for(self, month: pd.Period) -> list[str]:
        """The chosen members labelled in ``month``."""
        return [m for m in self.members if month in self.labelled[m]]

    def training(self, member: str) -> list[pd.Period]:
        """A member's labelled months outside the held-out window, in order."""
        return sorted(self.labelled[member] - self.holdout)


def training_months(
    features: icechunk.IcechunkStore,
    layout: FeaturesLayout,
    labels: icechunk.IcechunkStore,
    flayout: FluxLayout,
    chosen: Iterable[str] | None,
    holdout: MonthWindow,
) -> TrainingMonths:
    """Members to train, each member's labelled months, and every month to sample.

    ``chosen`` defaults to the ensemble: the imported TRENDY/GOBM members if the labels
    hold any (the reference members join only when named), else the reference members.
    Every ingested month outside ``holdout`` is sampled: labelled months for the supervised
    loss, the rest for the mean-teacher loss.

    Raises
    ------
    ConfigError
        A chosen member without labels, or one labelled only inside the held-out window.
    """
    have = members(labels)
    names = list(chosen or ensemble(have, imported_members(labels), with_reference=False))
    unknown = [m for m in names if m not in have]
    if unknown:
        raise ConfigError(
            f"no labels for member(s) {', '.join(unknown)} (the labels store has "
            f"{', '.join(have) or 'none'}); run carbonsink labels or pick --members from those"
        )
    held = set(holdout.months)
    ingested = set(ingested_months(features, layout))
    labelled = {m: set(member_months(labels, flayout, m)) & ingested for m in names}
    for m, months in labelled.items():
        if not months - held:
            raise ConfigError(
                f"member {m} has no labelled month outside the held-out window {holdout}; "
                "move --holdout-start/--holdout-end or label more months"
            )
    return TrainingMonths(names, labelled, sorted(ingested - held), held)


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


def stack_rows(parts: list[np.ndarray], like: np.ndarray) -> np.ndarray:
    """Concatenate along the first axis; an empty list gives 0 rows shaped like ``like``."""
    if parts:
        return np.concatenate(parts)
    return np.empty((0, *like.shape[1:]), like.dtype)
