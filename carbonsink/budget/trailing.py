"""Trailing 12-month budgets: the near-real-time form of the annual budget.

The annual budget needs a complete calendar year and NOAA's annual growth, so the current
year's is months away. The trailing budget is the same identity over the 12 months that end
with the newest mapped month (for example August to July), one row per end month:

- SOCEAN, SLAND: the 12 monthly sums of each member plus that member's annual bias offset
  (the offset is a constant GtC/yr shift, so it applies to any 12-month sum unchanged);
  the spread of the adjusted members enters the 1-sigma as in the annual budget.
- GATM: NOAA's 12-month growth over the same months
  (:func:`carbonsink.reference.noaa.window_gatm`).
- EFOS, ELUC: the calendar years' values weighted by the months each year contributes;
  their 1-sigma likewise (errors of neighbouring years taken as fully correlated).
- BIM: the residual, so the identity holds in every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from carbonsink.budget.core import Emissions

#: Months of a trailing window.
LENGTH = 12


def trailing_ends(months: Iterable[pd.Period], length: int = LENGTH) -> list[pd.Period]:
    """End months ``e`` whose window ``e - length + 1 .. e`` lies wholly in ``months``."""
    have = set(months)
    return sorted(e for e in have if all(e - k in have for k in range(length)))


def trailing_sums(
    monthly: pd.DataFrame, ends: list[pd.Period], length: int = LENGTH
) -> pd.DataFrame:
    """Sums of ``monthly`` (one row per month) over each window, indexed by its end month.

    Raises
    ------
    KeyError
        A window month missing from ``monthly`` (use :func:`trailing_ends`).
    """
    rows = [monthly.loc[[e - k for k in range(length)]].sum() for e in ends]
    out = pd.DataFrame(rows, index=pd.PeriodIndex(ends, freq="M"), columns=monthly.columns)
    out.index.name = "window_end"
    return out


def year_weights(end: pd.Period, length: int = LENGTH) -> dict[int, float]:
    """The share of the window ending at ``end`` that falls in each calendar year."""
    weights: dict[int, float] = {}
    for k in range(length):
        year = (end - k).year
        weights[year] = weights.get(year, 0.0) + 1.0 / length
    return weights


def window_emissions(annual: Emissions, ends: list[pd.Period], length: int = LENGTH) -> Emissions:
    """EFOS and ELUC of each window: the years' values weighted by their months.

    ``annual`` must hold every year a window touches (``emissions`` of those years).
    """
    t = annual.table
    value = {c: t[c].astype(float).to_dict() for c in ("EFOS", "ELUC", "EFOS_sigma", "ELUC_sigma")}
    source = {c: t[f"{c}_source"].astype(str).to_dict() for c in ("EFOS", "ELUC")}
    rows = []
    for end in ends:
        w = year_weights(end, length)
        row: dict[str, float | str] = {}
        for comp in ("EFOS", "ELUC"):
            for col in (comp, f"{comp}_sigma"):
                row[col] = sum(value[col][y] * share for y, share in w.items())
            row[f"{comp}_source"] = "; ".join(f"{y}: {source[comp][y]}" for y in sorted(w))
        rows.append(row)
    return Emissions(pd.DataFrame(rows, index=pd.PeriodIndex(ends, freq="M")))


def member_spread(sums: Mapping[str, pd.DataFrame], sinks: list[str]) -> pd.DataFrame:
    """The sample standard deviation across members of each sink (0 with one member)."""
    names = list(sums)
    index = next(iter(sums.values())).index
    if len(names) < 2:
        return pd.DataFrame(0.0, index=index, columns=sinks)
    stack = np.stack([sums[n][sinks].to_numpy(float) for n in names])
    return pd.DataFrame(stack.std(axis=0, ddof=1), index=index, columns=sinks)
