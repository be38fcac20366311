"""From selected ERA5 fields to monthly drivers on the model grid (lazy, pure xarray).

Order matters for cost and correctness (``docs/design.md``):

1. time aggregation on the native grid first: a month of hourly fields shrinks 744-fold
   before the (linear) regridding, which is then applied once per month;
2. derived drivers that are non-linear (VPD, wind speed) are computed from the hourly
   fields before the mean, not from monthly means;
3. conservative, NaN-aware regridding to the model grid;
4. a climatology over a baseline window and anomalies against it.

The unit of work is a month: a few tasks aggregate parts of its time steps, one adds them
up. :func:`monthly_means` wraps that as a lazy xarray Dataset; the ingest pipeline uses the
same pieces (:func:`plan_months`, :func:`accumulate_part`, :func:`finalize_month`) and
regrids and writes each month in the task that finishes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from carbonsink.aggregate import MonthAccumulator, accumulate
from carbonsink.drivers import LAND_THRESHOLD, Driver
from carbonsink.errors import SourceError, SourceUnreachableError, brief
from carbonsink.regrid import ConservativeRegridder
from carbonsink.sources.base import SourceSelection
from carbonsink.timeutil import month_starts

#: Raw input bytes one task aggregates: a month of hourly 0.25 degree drivers (~40 GB)
#: splits into ~10 parallel parts; a monthly-step month is one part.
PART_BYTES = 4 * 2**30


class SourceReader:
    """Reads index ranges of the selected source variables (picklable, for workers).

    ``per_second`` holds, for accumulated variables, the factor from a value to a rate per
    second (the selection's time semantics), which the aggregation applies.
    """

    def __init__(
        self,
        variables: dict[str, xr.DataArray],
        url: str = "the source",
        per_second: dict[str, float] | None = None,
    ) -> None:
        self.variables = variables
        self.url = url
        self.per_second = dict(per_second or {})

    @classmethod
    def of(cls, selection: SourceSelection) -> SourceReader:
        """The reader of a selection's variables."""
        return cls(
            dict(selection.variables),
            selection.attrs.get("source_url", "the source"),
            selection.per_second,
        )

    def __call__(self, name: str, start: int, stop: int) -> tuple[np.ndarray, str | None]:
        """Steps ``start``..``stop`` of variable ``name`` and its units attribute.

        Raises
        ------
        SourceUnreachableError
            The storage failed (network, permissions): running again may succeed.
        SourceError
            The bytes do not decode: a damaged chunk.
        """
        var = self.variables[name]
        try:
            values = np.asarray(var.isel(time=slice(start, stop)).values)
        except (OSError, TimeoutError) as exc:  # storage and network errors
            raise SourceUnreachableError(
                f"lost {self.url} while reading {name}: {brief(exc)}; check the connection "
                "and run again (published work is kept)"
            ) from exc
        except Exception as exc:  # codecs: the stored bytes are not what they claim
            raise SourceError(
                f"{name} of {self.url} does not decode ({brief(exc)}): a chunk is damaged; "
                "repair or re-download the store"
            ) from exc
        return values, var.attrs.get("units")


def accumulate_part(
    reader: SourceReader,
    ranges: dict[str, tuple[int, int]],
    drivers: list[Driver],
    shape: tuple[int, int],
) -> MonthAccumulator:
    """Aggregate one part of a month (a task of its own)."""
    return accumulate(reader, ranges, drivers, shape, per_second=reader.per_second)


def finalize_month(
    parts: Sequence[MonthAccumulator], land: np.ndarray | xr.DataArray | None
) -> np.ndarray:
    """Add a month's parts up and divide: ``(n_drivers, ny, nx)`` float32 on the source grid.

    ``land`` is the source's land-sea mask; land-domain drivers keep land points only.
    """
    total = parts[0]
    for p in parts[1:]:
        total.merge(p)
    mask = None if land is None else np.asarray(land) >= LAND_THRESHOLD
    return total.means(mask)


@dataclass(frozen=True)
class MonthPlan:
    """The parts of one month: per part, the index range of each source variable."""

    month: pd.Period
    parts: list[dict[str, tuple[int, int]]]


def plan_months(
    selection: SourceSelection, drivers: Sequence[Driver], *, part_bytes: int = PART_BYTES
) -> list[MonthPlan]:
    """Deterministic split of every month of the selection into aggregation parts.

    A part covers about ``part_bytes`` of raw input, so an hourly 0.25 degree month
    (~40 GB of drivers) becomes ~10 parallel tasks and a monthly-step month one.

    Raises
    ------
    SourceError
        If drivers combine inputs with different time stamps, or a month is empty.
    """
    for d in drivers:
        sems = {selection.semantics[v] for v in d.inputs}
        if len(sems) != 1:
            raise SourceError(
                f"driver {d.name} combines inputs with different time stamps "
                f"({', '.join(d.inputs)}); they must share one time axis"
            )
    step_bytes = selection.latitude.size * selection.longitude.size * 4
    ranges = month_ranges(selection)
    plans = []
    for m in selection.window.months:
        r = ranges[m]
        if len(r) != len(selection.variables):
            missing = sorted(set(selection.variables) - set(r))
            raise SourceError(f"month {m} has no time steps of {', '.join(missing)} in the source")
        n_bytes = sum(hi - lo for lo, hi in r.values()) * step_bytes
        k = max(1, min(int(np.ceil(n_bytes / part_bytes)), min(hi - lo for lo, hi in r.values())))
        splits = {v: _split(rr, k) for v, rr in r.items()}
        plans.append(MonthPlan(m, [{v: splits[v][i] for v in r} for i in range(k)]))
    return plans


def land_mask_for(
    selection: SourceSelection,
    drivers: Sequence[Driver],
    land_sea_mask: xr.DataArray | np.ndarray | None,
) -> xr.DataArray | np.ndarray | None:
    """The land-sea mask land-domain drivers need (the source's own by default).

    Raises
    ------
    SourceError
        If land-domain drivers are requested and no mask is available.
    """
    lsm = land_sea_mask if land_sea_mask is not None else selection.land_sea_mask
    if any(d.domain == "land" for d in drivers) and lsm is None:
        names = ", ".join(d.name for d in drivers if d.domain == "land")
        raise SourceError(
            f"drivers {names} are averaged over land points, but the source has no "
            "land_sea_mask; add that variable to the source or drop those drivers"
        )
    return lsm


def month_ranges(selection: SourceSelection) -> dict[pd.Period, dict[str, tuple[int, int]]]:
    """Per month, the index range of each selected variable whose stamps belong to it."""
    out: dict[pd.Period, dict[str, tuple[int, int]]] = {m: {} for m in selection.window.months}
    for name, var in selection.variables.items():
        labels = selection.semantics[name].interval_midpoints(var["time"].values).to_period("M")
        codes = np.asarray(labels.asi8)
        for m in out:
            idx = np.flatnonzero(codes == m.ordinal)
            if idx.size:
                out[m][name] = (int(idx[0]), int(idx[-1]) + 1)
    return out


def _split(r: tuple[int, int], k: int) -> list[tuple[int, int]]:
    edges = np.linspace(r[0], r[1], k + 1).round().astype(int)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(k)]


def monthly_means(
    selection: SourceSelection,
    drivers: Sequence[Driver],
    *,
    land_sea_mask: xr.DataArray | np.ndarray | None = None,
    part_bytes: int = PART_BYTES,
) -> xr.Dataset:
    """Monthly means of the drivers on the source grid (lazy, dask-backed).

    Each month is aggregated by a few parallel tasks (parts of its time steps) that read
    every needed variable once and fold all drivers in (:mod:`carbonsink.aggregate`),
    and one task that adds the parts up and divides.

    Parameters
    ----------
    selection
        Validated source fields of a window (:meth:`Source.select`).
    drivers
        Drivers to compute; derived ones combine their inputs step by step.
    land_sea_mask
        Source-grid land-sea mask for land-only drivers; defaults to the source's own
        ``land_sea_mask``. Points with a value >= 0.5 are land (ECMWF's convention).
    part_bytes
        Raw input bytes per aggregation task.

    Returns
    -------
    xarray.Dataset
        Dimensions ``time`` (month starts), ``latitude``, ``longitude``; float32.
    """
    drivers = list(drivers)
    lsm = land_mask_for(selection, drivers, land_sea_mask)
    lat = selection.latitude
    lon = selection.longitude
    shape = (lat.size, lon.size)
    reader = dask.delayed(SourceReader.of(selection), pure=True)
    land = dask.delayed(lsm, pure=True) if lsm is not None else None
    months = selection.window.months
    blocks = []
    for plan in plan_months(selection, drivers, part_bytes=part_bytes):
        parts = [
            dask.delayed(accumulate_part, pure=True)(reader, ranges, drivers, shape)
            for ranges in plan.parts
        ]
        month = dask.delayed(finalize_month, pure=True)(parts, land)
        blocks.append(da.from_delayed(month, shape=(len(drivers), *shape), dtype=np.float32))
    stacked = da.stack(blocks)
    coords = {
        "time": ("time", month_starts(months)),
        "latitude": ("latitude", lat),
        "longitude": ("longitude", lon),
    }
    ds = xr.Dataset(
        {
            d.name: (("time", "latitude", "longitude"), stacked[:, i], d.attrs())
            for i, d in enumerate(drivers)
        },
        coords=coords,
    )
    return ds


def regrid_to_model(monthly: xr.Dataset, regridder: ConservativeRegridder) -> xr.Dataset:
    """Conservatively regrid monthly source-grid fields to the model grid (lazy)."""
    out = regridder.regrid(monthly, lat_dim="latitude", lon_dim="longitude")
    assert isinstance(out, xr.Dataset)
    for name, var in monthly.data_vars.items():
        out[name].attrs = dict(var.attrs)
    return out


def climatology_of(stack: np.ndarray, *, nan_allowed: bool) -> np.ndarray:
    """Mean over years of one calendar month: ``(years, ny, nx)`` -> ``(ny, nx)`` float32.

    Cells that are NaN in every year (outside a driver's domain) stay NaN; for drivers
    defined everywhere a NaN in any year propagates (it cannot happen for checked data).
    """
    x = np.asarray(stack, dtype=np.float64)
    if nan_allowed:
        valid = np.isfinite(x)
        n = valid.sum(axis=0)
        total = np.where(valid, x, 0.0).sum(axis=0)
        return np.where(n > 0, total / np.maximum(n, 1), np.nan).astype(np.float32)
    return x.mean(axis=0).astype(np.float32)


def anomaly_of(field: np.ndarray, clim: np.ndarray) -> np.ndarray:
    """A month's field minus its calendar month's climatology (float32)."""
    return (np.asarray(field, np.float64) - np.asarray(clim, np.float64)).astype(np.float32)


def check_driver_field(driver: Driver, month: str, values: np.ndarray) -> None:
    """Refuse a monthly field that cannot be right, before it is written.

    NaN where the driver is defined everywhere means missing or corrupt source data
    (or padding read as data); a mean outside the plausible range means wrong units.

    Raises
    ------
    SourceError
        With the driver, the month and the likely fix.
    """
    v = np.asarray(values)
    finite = np.isfinite(v)
    if not driver.nan_allowed and not finite.all():
        share = 1.0 - float(finite.mean())
        raise SourceError(
            f"{driver.name} for {month} has missing values over {share:.1%} of the grid; the "
            f"source ({', '.join(driver.inputs)}) has gaps or corrupt chunks there: repair it or "
            "leave the month out"
        )
    if not finite.any():
        raise SourceError(
            f"{driver.name} for {month} is empty (all NaN); check the source's "
            f"{', '.join(driver.inputs)} for that month"
        )
    lo, hi = driver.plausible
    vmin, vmax = float(np.nanmin(v)), float(np.nanmax(v))
    if vmin < lo or vmax > hi:
        raise SourceError(
            f"{driver.name} for {month} spans {vmin:.4g}..{vmax:.4g} {driver.units}, outside the "
            f"plausible {lo:g}..{hi:g}; check the units of {', '.join(driver.inputs)} in the source"
        )
