"""Skill of an emulator against its target model on held-out months.

Two figures of merit, as the emulator literature reports them: the relative error of the
global annual land and ocean totals (PgC/yr), and the per-cell coefficient of
determination R^2 of the monthly series (how much of each cell's month-to-month variance,
seasonal cycle included, the emulator reproduces).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400.0


def month_total_pgc(flux: np.ndarray, cell_area: np.ndarray, month: pd.Period) -> float:
    """Global amount of one month, PgC (flux in kg C m-2 s-1 per m2 of cell)."""
    seconds = month.days_in_month * SECONDS_PER_DAY
    return float(np.nansum(flux.astype(np.float64) * cell_area) * seconds / 1e12)


@dataclass
class SkillAccumulator:
    """Streams months of (target, emulated) maps of one flux into skill figures."""

    cell_area: np.ndarray
    totals: dict[int, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0.0]))
    n: np.ndarray | None = None
    sy: np.ndarray | None = None
    syy: np.ndarray | None = None
    sse: np.ndarray | None = None

    def add(self, month: pd.Period, target: np.ndarray, emulated: np.ndarray) -> None:
        """Add one month; cells where the target is NaN are left out of both sides."""
        t = target.astype(np.float64)
        valid = np.isfinite(t) & np.isfinite(emulated)
        e = np.where(valid, emulated, np.nan).astype(np.float64)
        t = np.where(valid, t, np.nan)
        tot = self.totals[month.year]
        tot[0] += month_total_pgc(t, self.cell_area, month)
        tot[1] += month_total_pgc(e, self.cell_area, month)
        if self.n is None:
            shape = t.shape
            self.n, self.sy, self.syy, self.sse = (np.zeros(shape) for _ in range(4))
        assert self.sy is not None and self.syy is not None and self.sse is not None
        self.n += valid
        self.sy += np.where(valid, t, 0.0)
        self.syy += np.where(valid, t * t, 0.0)
        self.sse += np.where(valid, (t - e) ** 2, 0.0)

    def r2_map(self) -> np.ndarray:
        """Per-cell R^2; NaN where a cell has under 3 months or no variance."""
        assert self.n is not None and self.sy is not None and self.syy is not None
        assert self.sse is not None
        with np.errstate(invalid="ignore", divide="ignore"):
            sst = self.syy - self.sy**2 / self.n
            r2 = 1.0 - self.sse / sst
        scale = np.nanmax(np.abs(sst)) if np.isfinite(sst).any() else 0.0
        return np.where((self.n >= 3) & (sst > 1e-12 * scale), r2, np.nan)

    def summary(self) -> dict[str, object]:
        """Annual totals, their relative errors, and the per-cell R^2 distribution."""
        years = sorted(self.totals)
        target = [self.totals[y][0] for y in years]
        emulated = [self.totals[y][1] for y in years]
        rel = [
            abs(e - t) / abs(t) if t else float("nan")
            for t, e in zip(target, emulated, strict=True)
        ]
        r2 = self.r2_map()
        finite = np.isfinite(r2)
        w = self.cell_area[finite]
        vals = r2[finite]
        return {
            "years": years,
            "target_pgc_per_year": target,
            "emulated_pgc_per_year": emulated,
            "relative_error": rel,
            "mean_relative_error": float(np.mean(rel)) if rel else float("nan"),
            "total_relative_error": (
                abs(sum(emulated) - sum(target)) / abs(sum(target)) if sum(target) else None
            ),
            "r2_median": float(np.median(vals)) if vals.size else float("nan"),
            "r2_area_weighted_mean": float(np.sum(vals * w) / np.sum(w)) if vals.size else 0.0,
            "r2_fraction_above_0_9": float(np.sum(w * (vals > 0.9)) / np.sum(w))
            if vals.size
            else 0.0,
            "cells": int(vals.size),
        }
