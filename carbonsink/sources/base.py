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
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import xarray as xr

from carbonsink.timeutil import MonthWindow

if TYPE_CHECKING:
    from carbonsink.sources.common import ValidRange

TimeKind = Literal["instant", "accumulated", "period_mean"]


@dataclass(frozen=True)
class TimeSemantics:
    """How to read the time stamps of one variable.

    Attributes
    ----------
    kind
        ``instant``: the value at the stamp. ``accumulated``: an accumulation over the
        ``step`` *ending* at the stamp (ERA5's hourly ``tp``, ``ssrd``). ``period_mean``:
        a mean over the ``step`` *starting* at the stamp (daily or monthly means).
    step
        The time step of the store.
    """

    kind: TimeKind
    step: pd.Timedelta | pd.offsets.BaseOffset

    def interval_midpoints(self, stamps: np.ndarray) -> pd.DatetimeIndex:
        """Middle of the interval each stamp stands for; it decides the month it belongs to."""
        t = pd.DatetimeIndex(stamps)
        if self.kind == "instant":
            return t
        if self.kind == "period_mean":
            return t + ((t + self.step) - t) / 2
        return t - (t - (t - self.step)) / 2


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
        Provenance: URL, valid range, store attributes.
    """

    variables: dict[str, xr.DataArray]
    semantics: dict[str, TimeSemantics]
    window: MonthWindow
    era5t_months: list[pd.Period] = field(default_factory=list)
    land_sea_mask: xr.DataArray | None = None
    attrs: dict[str, str] = field(default_factory=dict)

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
