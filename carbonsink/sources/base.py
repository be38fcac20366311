"""What every reanalysis source provides to the ingest.

A source turns a URL into lazily loaded, validated ERA5 fields in one normal form, so the
rest of carbonsink never looks at file formats:

- variables under their ARCO-ERA5 names (``2m_temperature``), units as ARCO stores them;
- dimensions ``time``, ``latitude``, ``longitude`` (1-D, strictly monotonic, global or
  regional, either orientation: the regridder works from cell bounds);
- only complete months of the requested window, with every time step present once;
- each variable's ``time`` stamps interpreted by :class:`TimeSemantics`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

from carbonsink.timeutil import MonthWindow


@dataclass(frozen=True)
class ValidRange:
    """Time range holding real data (ARCO's ``valid_time_*`` attributes), end exclusive.

    Attributes
    ----------
    start
        First valid instant.
    stop
        End (exclusive) of final ERA5 data.
    stop_era5t
        End (exclusive) of preliminary ERA5T data; equal to ``stop`` without ERA5T.
    """

    start: pd.Timestamp
    stop: pd.Timestamp
    stop_era5t: pd.Timestamp

    def describe(self) -> str:
        """Human-readable range with inclusive last day."""
        last = (self.stop_era5t - pd.Timedelta(days=1)).date()
        return f"{self.start.date()} .. {last}"


TimeKind = Literal["instant", "accumulated", "period_mean", "hour_of_day_mean"]


@dataclass(frozen=True)
class TimeSemantics:
    """How to read the time stamps of one variable, and what its accumulations sum over.

    Attributes
    ----------
    kind
        ``instant``: the value at the stamp. ``accumulated``: an accumulation over the
        ``step`` *ending* at the stamp (ERA5's hourly ``tp``, ``ssrd``). ``period_mean``:
        a mean over the ``step`` *starting* at the stamp (daily or monthly means).
        ``hour_of_day_mean``: a mean over the month of the stamp's hour of day (ERA5's
        monthly means by hour of day: 24 stamps on the 1st, 00:00..23:00, ``step`` apart).
    step
        The time step of the store (of the hours of day, for ``hour_of_day_mean``).
    accumulation
        For an accumulated quantity (ERA5's ``tp``, ``ssrd``, whatever the product), the
        period each value sums over: one hour in hourly data, one day in ERA5's monthly
        means (mean daily sums). ``None`` for a quantity that is not accumulated.
    """

    kind: TimeKind
    step: pd.Timedelta | pd.offsets.BaseOffset
    accumulation: pd.Timedelta | None = None

    def interval_midpoints(self, stamps: np.ndarray) -> pd.DatetimeIndex:
        """Middle of the interval each stamp stands for; it decides the month it belongs to."""
        t = pd.DatetimeIndex(stamps)
        if self.kind == "instant":
            return t
        if self.kind == "period_mean":
            return t + ((t + self.step) - t) / 2
        if self.kind == "hour_of_day_mean":
            start = t.to_period("M").to_timestamp(how="start")
            return start + ((start + pd.offsets.MonthBegin()) - start) / 2
        return t - (t - (t - self.step)) / 2

    @property
    def per_second(self) -> float:
        """Factor from a value to a rate per second (1 for what is not accumulated)."""
        return 1.0 if self.accumulation is None else 1.0 / self.accumulation.total_seconds()


@dataclass
class SourceSelection:
    """The part of a source an ingest reads.

    Attributes
    ----------
    variables
        Lazy DataArrays (no data read yet), each restricted to the stamps whose
        interval falls in ``window``.
    semantics
        Time semantics per variable.
    window
        The months requested; all of them are complete in the source.
    era5t_months
        Months that contain preliminary ERA5T data (after ``valid_time_stop``).
    land_sea_mask
        ERA5's land-sea mask on the source grid (2-D), if the source has one.
    attrs
        Provenance: URL, valid range, the ERA5 product, store attributes; ``source_synthetic``
        is ``"true"`` for carbonsink's generated sample data.
    """

    variables: dict[str, xr.DataArray]
    semantics: dict[str, TimeSemantics]
    window: MonthWindow
    era5t_months: list[pd.Period] = field(default_factory=list)
    land_sea_mask: xr.DataArray | None = None
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def per_second(self) -> dict[str, float]:
        """Per variable, the factor from a value to a rate per second (1 if not accumulated)."""
        return {name: sem.per_second for name, sem in self.semantics.items()}

    @property
    def latitude(self) -> np.ndarray:
        """Latitude of the source grid (points), as stored."""
        return np.asarray(next(iter(self.variables.values()))["latitude"].values)

    @property
    def longitude(self) -> np.ndarray:
        """Longitude of the source grid (points), as stored."""
        return np.asarray(next(iter(self.variables.values()))["longitude"].values)


@runtime_checkable
class Source(Protocol):
    """A reanalysis source (ARCO-ERA5 Zarr, CDS GRIB/NetCDF files)."""

    url: str

    def available(self) -> ValidRange:
        """The range of real data: ARCO's ``valid_time_*`` attributes, else the time axis.

        Raises
        ------
        carbonsink.errors.SourceError
            A source without time steps, or with unreadable attributes.
        """
        ...

    def select(self, variables: list[str], window: MonthWindow) -> SourceSelection:
        """Validate and lazily select ``variables`` for the complete months of ``window``.

        Raises
        ------
        carbonsink.errors.SourceError
            Missing variables, unexpected units, bad coordinates, gaps or duplicates in
            time, or a window outside the valid time range.
        """
        ...
