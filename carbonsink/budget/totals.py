"""Global (and masked) totals of a flux map: kg C m-2 s-1 per cell -> GtC per month / year."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from carbonsink.budget.regions import RegionIndex

KG_PER_GT = 1e12

#: Sink names of the budget by the sink map's flux names.
SINKS = {"land_flux": "SLAND", "ocean_flux": "SOCEAN"}


def seconds_in(month: pd.Period) -> float:
    """Seconds in a calendar month."""
    return float(month.days_in_month * 86400)


def month_total(flux: np.ndarray, area: np.ndarray, month: pd.Period) -> float:
    """GtC taken up in ``month`` by a flux field (NaN cells count as 0)."""
    return float(np.nansum(flux.astype(np.float64) * area)) * seconds_in(month) / KG_PER_GT


def monthly_totals(
    read: Callable[[pd.Period, str], np.ndarray],
    months: Iterable[pd.Period],
    area: np.ndarray,
    regions: RegionIndex | None = None,
) -> pd.DataFrame:
    """Monthly totals (GtC per month) of SLAND and SOCEAN, globally or per region.

    Parameters
    ----------
    read
        ``read(month, flux_name)`` returns the month's field of that flux.
    regions
        Regions to sum over; columns become ``(region, sink)`` for every region and sink.
        Without them the columns are the global ``SLAND`` and ``SOCEAN``.
    """
    rows = []
    index = []
    for month in months:
        row: dict[object, float] = {}
        for flux, sink in SINKS.items():
            field = read(month, flux)
            if regions is None:
                row[sink] = month_total(field, area, month)
            else:
                scale = seconds_in(month) / KG_PER_GT
                for name, total in regions.sums(field * area).items():
                    row[(name, sink)] = total * scale
        rows.append(row)
        index.append(month)
    frame = pd.DataFrame(rows, index=pd.PeriodIndex(index, freq="M", name="month"))
    if regions is not None:
        pairs: list[tuple[str, str]] = [tuple(c) for c in frame.columns]  # type: ignore[misc]
        frame.columns = pd.MultiIndex.from_tuples(pairs, names=["region", "sink"])
    return frame


def annual_totals(monthly: pd.DataFrame) -> pd.DataFrame:
    """GtC/yr of the complete years of a monthly table (years missing a month are dropped)."""
    index = monthly.index
    assert isinstance(index, pd.PeriodIndex)
    years = index.year
    counts = pd.Series(1, index=index).groupby(years).sum()
    full = counts[counts == 12].index
    out = monthly.groupby(years).sum().loc[list(full)]
    out.index.name = "year"
    return out
