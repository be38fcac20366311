"""Production training targets: TRENDY DGVM ``nbp`` and GOBM / data-product ``fgco2`` files.

Conventions (``docs/emulator.md``; GCB and TRENDY protocols): TRENDY ``<MODEL>_S2_nbp.nc``
in kg m-2 s-1 of carbon per m2 of land, positive into the land, often on a ``365_day``
calendar, 0.5 deg or 1 deg, sometimes north to south; ocean ``fgco2`` in mol m-2 s-1
(GCB submissions and fCO2-products) or kg m-2 s-1 (CMIP6/OMIP), per m2 of ocean, positive
into the ocean, longitudes often 0..360. A file is read lazily, checked, and its months are
regridded conservatively one at a time to the model grid, where the flux is scaled by the
cell's land (ocean) fraction to be per m2 of grid cell as in the rest of the lake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from carbonsink.errors import SourceError, brief
from carbonsink.grid import ModelGrid, point_grid_bounds
from carbonsink.process.base import KG_C_PER_MOL
from carbonsink.regrid import ConservativeRegridder
from carbonsink.sources.common import normalise_horizontal

Kind = Literal["nbp", "fgco2"]
#: Any |flux| above this (kg C m-2 s-1, ~30 kg C m-2 yr-1) is a fill value or wrong units.
PLAUSIBLE_FLUX = 1e-6
_KG_UNITS = {"kg m-2 s-1", "kg c m-2 s-1", "kgc m-2 s-1", "kg m**-2 s**-1", "kg/m2/s"}
_MOL_UNITS = {"mol m-2 s-1", "mol c m-2 s-1", "molc m-2 s-1", "mol m**-2 s**-1", "mol/m2/s"}


@dataclass(frozen=True)
class TargetFile:
    """A checked target file.

    Attributes
    ----------
    path
        The file.
    kind
        ``nbp`` (land) or ``fgco2`` (ocean).
    variable
        Name of the data variable in the file.
    months
        Month of each time step.
    factor
        Multiplier to kg C m-2 s-1.
    sign
        +1, or -1 when the file says ``positive: up``.
    latitude, longitude
        Cell centres as stored (longitude ascending after normalisation).
    calendar
        The file's calendar.
    """

    path: str
    kind: Kind
    variable: str
    months: pd.PeriodIndex
    factor: float
    sign: float
    latitude: np.ndarray
    longitude: np.ndarray
    calendar: str

    @property
    def flux_name(self) -> str:
        """The lake variable this target fills."""
        return "land_flux" if self.kind == "nbp" else "ocean_flux"

    def regridder(self, grid: ModelGrid, min_valid_fraction: float) -> ConservativeRegridder:
        """Conservative regridder from the file's cells to ``grid``."""
        return ConservativeRegridder(
            point_grid_bounds(self.latitude, clip=(-90.0, 90.0)),
            point_grid_bounds(self.longitude),
            grid.lat_bounds,
            grid.lon_bounds,
            min_valid_fraction=min_valid_fraction,
        )


def _open(path: str) -> xr.Dataset:
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    try:
        ds = xr.open_dataset(path, decode_times=coder, chunks={})
    except FileNotFoundError as exc:
        raise SourceError(f"target file {path} does not exist; check the path") from exc
    except Exception as exc:
        raise SourceError(
            f"cannot read target file {path} ({brief(exc)}); pass a NetCDF file"
        ) from exc
    renames = {k: v for k, v in (("lat", "latitude"), ("lon", "longitude")) if k in ds.dims}
    return ds.rename(renames)


def _units_factor(units: str, kind: Kind, path: str) -> float:
    u = " ".join(units.strip().lower().split())
    if u in _KG_UNITS:
        return 1.0
    if u in _MOL_UNITS:
        return KG_C_PER_MOL
    want = "kg m-2 s-1" if kind == "nbp" else "mol m-2 s-1 or kg m-2 s-1"
    raise SourceError(
        f"{kind} in {path} has units {units!r}; carbonsink reads {want} (of carbon): convert "
        "the file or fix its units attribute"
    )


def open_target(path: str, kind: Kind) -> TargetFile:
    """Open and check a TRENDY ``nbp`` or GOBM ``fgco2`` file (lazily).

    Raises
    ------
    SourceError
        Missing variable, unknown units, a time axis that is not monthly, bad coordinates.
    """
    ds = _open(path)
    name = kind if kind in ds.data_vars else None
    if name is None:
        raise SourceError(
            f"{path} has no variable {kind!r} (it has {', '.join(map(str, ds.data_vars))}); "
            f"pass a {'TRENDY <MODEL>_S2_nbp.nc' if kind == 'nbp' else 'fgco2'} file"
        )
    da = ds[name]
    for dim in ("time", "latitude", "longitude"):
        if dim not in da.dims:
            raise SourceError(
                f"{kind} in {path} has dimensions {da.dims}; it needs time, lat and lon"
            )
    extra = [d for d in da.dims if d not in ("time", "latitude", "longitude")]
    if extra:
        raise SourceError(
            f"{kind} in {path} has extra dimension(s) {extra}; select one (e.g. per-PFT "
            "files: use the grid-cell total)"
        )
    factor = _units_factor(str(da.attrs.get("units", "")), kind, path)
    sign = -1.0 if str(da.attrs.get("positive", "")).strip().lower() == "up" else 1.0
    ds = normalise_horizontal(ds, url=path)
    times = ds["time"].values
    try:
        months = pd.PeriodIndex([pd.Period(year=t.year, month=t.month, freq="M") for t in times])
    except AttributeError as exc:
        raise SourceError(
            f"time of {path} could not be decoded to dates; give it CF units such as "
            "'days since 1700-01-01' and a calendar"
        ) from exc
    if months.has_duplicates or not months.is_monotonic_increasing:
        raise SourceError(
            f"time of {path} is not one step per month (repeated or unordered months); "
            "pass monthly output"
        )
    calendar = str(ds["time"].encoding.get("calendar", getattr(times[0], "calendar", "standard")))
    return TargetFile(
        path,
        kind,
        name,
        months,
        factor,
        sign,
        np.asarray(ds["latitude"].values, dtype=np.float64),
        np.asarray(ds["longitude"].values, dtype=np.float64),
        calendar,
    )


def read_target_month(target: TargetFile, month: pd.Period) -> np.ndarray:
    """One month of a target on its own grid, kg C m-2 s-1 per m2 of land (ocean).

    Raises
    ------
    SourceError
        If the values are beyond any plausible flux (an undeclared fill value or wrong
        units).
    """
    ds = normalise_horizontal(_open(target.path), url=target.path)
    i = list(target.months).index(month)
    values = np.asarray(ds[target.variable].isel(time=i).values, dtype=np.float64)
    values = values * target.factor * target.sign
    big = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 0.0
    if big > PLAUSIBLE_FLUX:
        raise SourceError(
            f"{target.kind} in {target.path} reaches {big:.3g} kg C m-2 s-1 in {month}, beyond "
            "any real flux; declare the fill value (_FillValue/missing_value) or fix the units"
        )
    return values.astype(np.float32)


def target_on_grid(
    target: TargetFile,
    month: pd.Period,
    regridder: ConservativeRegridder,
    land_fraction: np.ndarray,
) -> np.ndarray:
    """One month regridded to the model grid, per m2 of grid cell (kg C m-2 s-1).

    The regridded value is a mean over the valid (land, or ocean) part of each model cell;
    times the model's land (ocean) fraction it becomes a flux per m2 of cell. Cells with no
    land (ocean) are NaN.
    """
    field = regridder.apply(read_target_month(target, month)).astype(np.float64)
    frac = land_fraction if target.kind == "nbp" else 1.0 - land_fraction
    return np.where(frac > 0, field * frac, np.nan).astype(np.float32)
