"""Hypothesis strategies the property tests share: grids, month windows, NaN masks, tilings.

The invariants of carbonsink hold for any regular global grid, any window of months and any
pattern of missing data; these strategies draw them small enough for a unit test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from carbonsink.timeutil import MonthWindow

#: Resolutions of regular global grids between 0.1 and 5 degrees that divide 180.
RESOLUTIONS = (
    0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0, 1.2, 1.5, 1.8, 2.0, 2.5, 3.0, 4.0,
    4.5, 5.0,
)  # fmt: skip


def seeds() -> st.SearchStrategy[int]:
    """Seeds of numpy's random generator (the arrays are drawn from them, not by shrinking)."""
    return st.integers(0, 2**31 - 1)


def resolutions() -> st.SearchStrategy[float]:
    """Cell sizes (degrees) of regular global grids."""
    return st.sampled_from(RESOLUTIONS)


@st.composite
def grid_pairs(draw: st.DrawFn) -> tuple[float, float]:
    """A source and a destination resolution (either may be the finer)."""
    return draw(resolutions()), draw(resolutions())


@st.composite
def month_windows(
    draw: st.DrawFn, first: str = "1940-01", last: str = "2050-12", max_months: int = 120
) -> MonthWindow:
    """A window of 1..``max_months`` months inside ``first``..``last``."""
    lo, hi = pd.Period(first, freq="M"), pd.Period(last, freq="M")
    start = lo + draw(st.integers(0, (hi - lo).n))
    months = draw(st.integers(1, min(max_months, (hi - start).n + 1)))
    return MonthWindow(start, start + (months - 1))


@st.composite
def nan_masks(draw: st.DrawFn, shape: tuple[int, ...], max_share: float = 0.9) -> np.ndarray:
    """A boolean mask of ``shape`` (True: missing) covering up to ``max_share`` of it."""
    share = draw(st.floats(0.0, max_share))
    return np.random.default_rng(draw(seeds())).random(shape) < share


@st.composite
def tilings(
    draw: st.DrawFn, max_tiles: int = 4, max_tile: int = 5, max_halo: int = 2
) -> tuple[tuple[int, int], tuple[int, int], int]:
    """(tiles along lat and lon, tile shape, halo) of a small global grid."""
    tiles = (draw(st.integers(1, max_tiles)), draw(st.integers(1, max_tiles)))
    tile = (draw(st.integers(2, max_tile)), draw(st.integers(2, max_tile)))
    return tiles, tile, draw(st.integers(1, max_halo))
