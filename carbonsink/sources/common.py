"""Validation and window selection shared by every source.

A source opens its data into an xarray Dataset with ARCO-ERA5 names; this module checks
the coordinates and the time axis and cuts out the complete months of a window, lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from carbonsink.drivers import LAND_SEA_MASK, SOURCE_VARIABLES
from carbonsink.errors import SourceError
from carbonsink.sources.base import SourceSelection, TimeSemantics, ValidRange
from carbonsink.timeutil import MonthWindow, month_starts

#: Accumulation period of ERA5 single-level accumulations in ARCO and CDS hourly data.
ERA5_ACCUMULATION = pd.Timedelta(hours=1)

Step = pd.Timedelta | pd.offsets.BaseOffset
#: How a reader decides a variable's time semantics: ``rule(name, data, store_step)``.
SemanticsRule = Callable[[str, xr.DataArray, Step], TimeSemantics]


def valid_range_from_attrs(attrs: dict, *, url: str) -> ValidRange | None:
    """Read ARCO's inclusive ``valid_time_start/stop/stop_era5t`` dates, if present."""
    if "valid_time_start" not in attrs:
        return None
    try:
        start = pd.Timestamp(attrs["valid_time_start"])
        stop = pd.Timestamp(attrs.get("valid_time_stop", attrs["valid_time_start"]))
        stop_t = pd.Timestamp(attrs.get("valid_time_stop_era5t", str(stop.date())))
    except (ValueError, TypeError) as exc:
        raise SourceError(
            f"source {url} has unreadable valid_time_* attributes ({exc}); "
            "they must be dates like 2026-04-30"
        ) from exc
    one_day = pd.Timedelta(days=1)
    # The attributes are inclusive dates: data run through 23:00 of the last day.
    return ValidRange(start.normalize(), stop.normalize() + one_day, stop_t.normalize() + one_day)


def axis_range(times: np.ndarray, *, url: str, monthly: bool = False) -> ValidRange:
    """The range a time axis spans, for a source without ``valid_time_*`` attributes.

    ``monthly``: every stamp stands for its whole month (monthly means, also by hour of
    day), so the range ends with the last stamp's month.

    Raises
    ------
    SourceError
        An empty time axis.
    """
    tvals = np.asarray(times).astype("datetime64[ns]")
    good = tvals[~np.isnat(tvals)]
    if good.size == 0:
        raise SourceError(f"source {url} has an empty time axis; ingest a store with data")
    last = pd.Timestamp(good.max())
    if monthly:
        end = (last.to_period("M") + 1).start_time
    else:
        # The last stamp opens one more step of data (an hour, or a month of monthly means).
        end = last + detect_step(np.sort(good)[-2000:], url=url)
    return ValidRange(pd.Timestamp(good.min()), end, end)


def newest_complete_month(valid: ValidRange) -> pd.Period | None:
    """The newest month whose every hour lies in ``valid`` (ERA5T included), if any.

    A month counts as complete when the data reach its last hour: ARCO-ERA5's attributes
    end at midnight after the last day, an hourly axis at 23:00 of it (the same tolerance
    as :func:`select_window`).
    """
    month = (valid.stop_era5t - pd.Timedelta(seconds=1)).to_period("M")
    if MonthWindow(month, month).end_instant > valid.stop_era5t + pd.Timedelta(hours=1):
        month -= 1
    return month if MonthWindow(month, month).first_instant >= valid.start else None


def final_months(valid: ValidRange) -> pd.Period | None:
    """The newest complete month of final ERA5 (before ``valid.stop``), if any."""
    return newest_complete_month(ValidRange(valid.start, valid.stop, valid.stop))


def _check_axis(values: np.ndarray, name: str, url: str) -> None:
    if values.ndim != 1 or values.size < 2:
        raise SourceError(f"coordinate {name!r} of {url} must be 1-D with 2+ points")
    if not np.all(np.isfinite(values)):
        raise SourceError(f"coordinate {name!r} of {url} has NaN or infinite values")


def _is_rotation(lon: np.ndarray) -> bool:
    """Whether ascending longitudes wrap once (e.g. 180..359.75 then 0..179.75)."""
    drops = np.flatnonzero(np.diff(lon) <= 0)
    if drops.size != 1:
        return False
    k = int(drops[0]) + 1
    unwrapped = np.concatenate([lon[:k], lon[k:] + 360.0])
    return bool(np.all(np.diff(unwrapped) > 0) and unwrapped[-1] - unwrapped[0] < 360.0)


def normalise_horizontal(ds: xr.Dataset, *, url: str) -> xr.Dataset:
    """Check latitude/longitude and bring longitude into ascending order (lazily).

    Latitude may run either way (ERA5: 90 -> -90; WeatherBench2: ascending); the regridder
    works from cell bounds, so no data is reordered for it. Longitude must ascend for the
    periodic overlap computation, so a descending or rotated axis is sorted.

    Raises
    ------
    SourceError
        Missing, non-monotonic or duplicated coordinates.
    """
    for name in ("latitude", "longitude"):
        if name not in ds.coords:
            raise SourceError(
                f"source {url} has no {name!r} coordinate; carbonsink reads lat-lon grids "
                "with coordinates named latitude and longitude"
            )
    lat = np.asarray(ds["latitude"].values, dtype=np.float64)
    lon = np.asarray(ds["longitude"].values, dtype=np.float64)
    _check_axis(lat, "latitude", url)
    _check_axis(lon, "longitude", url)
    if np.abs(lat).max() > 90.0 + 1e-6:
        raise SourceError(f"latitude of {url} goes beyond +-90 degrees; fix the coordinate")
    dlat = np.diff(lat)
    if not (np.all(dlat > 0) or np.all(dlat < 0)):
        raise SourceError(
            f"latitude of {url} is not strictly monotonic (repeated or unordered values); "
            "fix the coordinate or sort the source by latitude"
        )
    if np.unique(lon).size != lon.size:
        raise SourceError(f"longitude of {url} has repeated values; drop the duplicate column")
    if np.ptp(lon) >= 360.0:
        raise SourceError(
            f"longitude of {url} spans 360 degrees or more (a repeated seam column?); drop it"
        )
    if not np.all(np.diff(lon) > 0):
        if not (np.all(np.diff(lon) < 0) or _is_rotation(lon)):
            raise SourceError(
                f"longitude of {url} is not monotonic (nor a rotated circle); sort the source "
                "by longitude"
            )
        ds = ds.sortby("longitude")
    return ds


def detect_step(times: np.ndarray, *, url: str) -> pd.Timedelta | pd.offsets.BaseOffset:
    """The time step of a store: a fixed Timedelta (1h, 6h, 1D) or month starts."""
    t = pd.DatetimeIndex(times[: min(times.size, 2000)])
    if t.size < 2:
        return pd.Timedelta(hours=1)
    diffs = np.diff(t.values).astype("timedelta64[s]").astype(np.int64)
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        raise SourceError(f"time coordinate of {url} does not increase; sort it by time")
    common = int(np.bincount(np.minimum(diffs // 3600, 10_000)).argmax()) * 3600
    if 28 * 86400 <= common <= 31 * 86400 or (diffs >= 28 * 86400).all():
        if not (t.day == 1).all() or not (t.hour == 0).all():
            raise SourceError(
                f"monthly time stamps of {url} are not at 00:00 on the 1st; "
                "carbonsink expects monthly data stamped at the month start"
            )
        return pd.offsets.MonthBegin()
    return pd.Timedelta(seconds=int(np.median(diffs)))


def zarr_semantics(
    name: str, da: xr.DataArray, step: Step, *, url: str, sample: bool = False
) -> TimeSemantics:
    """How the stamps of one variable of a Zarr store are read (ARCO-ERA5's conventions).

    A ``cell_methods`` attribute with ``time: mean`` marks means over the step starting at
    the stamp (daily or monthly means); ERA5's accumulations (``tp``, ``ssrd``) otherwise
    sum over the hour ending at the stamp (ARCO-ERA5 is hourly); everything else is
    instantaneous. An ``accumulation_period_hours`` attribute says what an accumulation
    sums over; means of accumulations must say it, because ERA5's monthly means hold daily
    sums and means of hourly data hourly ones. carbonsink's ``sample`` stores hold means
    of hourly sums.

    Raises
    ------
    SourceError
        Means of an accumulated variable that do not say what it sums over.
    """
    spec = SOURCE_VARIABLES.get(name)
    accumulated = spec is not None and spec.accumulated
    declared = da.attrs.get("accumulation_period_hours")
    try:
        period = pd.Timedelta(hours=float(declared)) if declared is not None else None
    except (TypeError, ValueError) as exc:
        raise SourceError(
            f"{name} of {url} has accumulation_period_hours={declared!r}; it must be a number "
            "of hours (1 for ERA5's hourly sums, 24 for its monthly means' daily sums)"
        ) from exc
    if "time: mean" in str(da.attrs.get("cell_methods", "")):
        if accumulated and period is None:
            if not sample:
                raise SourceError(
                    f"{name} of {url} holds means of an accumulation without saying what it "
                    "sums over: set its accumulation_period_hours attribute (24 for ERA5's "
                    "monthly means, 1 for means of hourly sums)"
                )
            period = ERA5_ACCUMULATION
        return TimeSemantics("period_mean", step, period if accumulated else None)
    if accumulated:
        period = period or ERA5_ACCUMULATION
        return TimeSemantics("accumulated", period, period)
    return TimeSemantics("instant", step)


def _expected_stamps(
    sem: TimeSemantics,
    store_step: pd.Timedelta | pd.offsets.BaseOffset,
    phase: pd.Timestamp,
    window: MonthWindow,
) -> pd.DatetimeIndex:
    """Stamps a complete window must contain for a variable of these semantics."""
    if sem.kind == "hour_of_day_mean":
        step = sem.step
        assert isinstance(step, pd.Timedelta)
        starts = pd.DatetimeIndex(month_starts(window.months))
        return pd.DatetimeIndex(
            sorted(s + k * step for s in starts for k in range(pd.Timedelta(days=1) // step))
        )
    lo = window.first_instant - pd.Timedelta(days=2)
    hi = window.end_instant + pd.Timedelta(days=2)
    if isinstance(store_step, pd.offsets.BaseOffset):
        grid = pd.date_range(lo.normalize().replace(day=1), hi, freq="MS")
    else:
        # Stamps of the store lie on phase + k * step.
        k0 = int(np.floor((lo - phase) / store_step))
        k1 = int(np.ceil((hi - phase) / store_step))
        grid = pd.DatetimeIndex([phase + store_step * k for k in range(k0, k1 + 1)])
    labels = sem.interval_midpoints(grid.values).to_period("M")
    keep = (labels >= window.start) & (labels <= window.end)
    return grid[keep]


def select_window(
    ds: xr.Dataset,
    variables: Sequence[str],
    window: MonthWindow,
    *,
    url: str,
    valid: ValidRange | None,
    rule: SemanticsRule | None = None,
) -> SourceSelection:
    """Validate ``ds`` and cut out ``variables`` for the complete months of ``window``.

    Parameters
    ----------
    ds
        Lazily opened dataset in the normal form of :mod:`carbonsink.sources.base`.
    variables
        ARCO-ERA5 names to read.
    window
        Months to select.
    url
        For messages.
    valid
        Range holding real data; ``None`` means the whole time axis.
    rule
        How each variable's stamps are read (default: :func:`zarr_semantics`).
    """
    if rule is None:

        def rule(name: str, da: xr.DataArray, step: Step) -> TimeSemantics:
            return zarr_semantics(name, da, step, url=url)

    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        names = sorted(map(str, ds.data_vars))
        listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise SourceError(
            f"source {url} lacks variable(s) {', '.join(missing)} (it has {listed}); "
            "use a store that has them or select fewer drivers with --drivers"
        )
    if "time" not in ds.coords:
        raise SourceError(f"source {url} has no 'time' coordinate")
    times = ds["time"].values
    if not np.issubdtype(times.dtype, np.datetime64):
        cal = ds["time"].attrs.get("calendar") or ds["time"].encoding.get("calendar", "?")
        raise SourceError(
            f"time of {url} is not on the proleptic Gregorian calendar (calendar {cal!r}); "
            "ERA5 is: convert the source's time axis before ingesting"
        )
    ds = normalise_horizontal(ds, url=url)

    tvals = times.astype("datetime64[ns]")
    if valid is None:
        valid = axis_range(tvals, url=url)
    if window.first_instant < valid.start or window.end_instant > valid.stop_era5t + pd.Timedelta(
        hours=1
    ):
        raise SourceError(
            f"window {window} is outside the valid time range of {url} "
            f"({valid.describe()}, ERA5T included); choose --start/--end within it"
        )

    # The stamps that can matter: a little around the window, inside the valid range.
    lo = np.datetime64(max(window.first_instant - pd.Timedelta(days=3), valid.start), "ns")
    hi = np.datetime64(min(window.end_instant + pd.Timedelta(days=3), valid.stop_era5t), "ns")
    if np.isnat(tvals).any():
        raise SourceError(f"time coordinate of {url} has missing (NaT) values; fix the store")
    i0 = int(np.searchsorted(tvals, lo, side="left"))
    i1 = int(np.searchsorted(tvals, hi, side="left"))
    local = tvals[i0:i1]
    d = np.diff(local.astype(np.int64))
    if (d == 0).any():
        at = pd.Timestamp(local[1:][d == 0][0])
        raise SourceError(
            f"time of {url} has duplicate stamps (first at {at}); drop the duplicates"
        )
    if (d < 0).any() or not np.all(
        np.diff(tvals[[0, i0, max(i1 - 1, 0), -1]].astype(np.int64)) >= 0
    ):
        raise SourceError(f"time of {url} is not in increasing order; sort the store by time")
    if local.size == 0:
        raise SourceError(f"source {url} holds no time steps in {window}; check the window")
    # A window with a single stamp (one month of monthly means) shows no step: take its
    # neighbours on the store's axis too.
    around = local if local.size > 1 else tvals[max(i0 - 1, 0) : max(i1 + 1, i0 + 2)]
    step = detect_step(around, url=url)
    phase = pd.Timestamp(local[0])

    out_vars: dict[str, xr.DataArray] = {}
    semantics: dict[str, TimeSemantics] = {}
    local_index = pd.DatetimeIndex(local)
    for name in variables:
        da = ds[name]
        extra = [d for d in da.dims if d not in ("time", "latitude", "longitude")]
        for dim in extra:
            if da.sizes[dim] != 1:
                raise SourceError(
                    f"variable {name!r} of {url} has an extra dimension {dim!r} of size "
                    f"{da.sizes[dim]}; carbonsink reads single-level fields"
                )
        da = da.squeeze(extra, drop=True).transpose("time", "latitude", "longitude")
        sem = rule(name, da, step)
        expected = _expected_stamps(sem, step, phase, window)
        labels = sem.interval_midpoints(local).to_period("M")
        keep = np.nonzero((labels >= window.start) & (labels <= window.end))[0]
        have = local_index[keep]
        absent = expected.difference(have)
        # The newest accumulation interval of a store ends on the next day at 00:00,
        # which may lie past the store's last stamp: tolerate exactly that one.
        if (
            sem.kind == "accumulated"
            and absent.size == 1
            and absent[0] >= valid.stop_era5t - pd.Timedelta(hours=1)
        ):
            absent = absent[:0]
        if absent.size:
            raise SourceError(
                f"variable {name!r} of {url} misses {absent.size} time step(s) in {window} "
                f"(first {absent[0]}); the months must be complete: fill the gap or shorten "
                "the window"
            )
        extra_stamps = have.difference(expected)
        if extra_stamps.size:
            raise SourceError(
                f"variable {name!r} of {url} has time stamps off its regular step "
                f"(first {extra_stamps[0]}); regularise the time axis"
            )
        out_vars[name] = da.isel(time=slice(i0 + int(keep[0]), i0 + int(keep[-1]) + 1))
        semantics[name] = sem

    era5t = [
        m
        for m in window.months
        if m.end_time.ceil("h") > valid.stop and valid.stop < valid.stop_era5t
    ]
    lsm = None
    if LAND_SEA_MASK in ds.data_vars:
        m = ds[LAND_SEA_MASK]
        if "time" in m.dims:
            j = int(np.searchsorted(tvals, np.datetime64(window.first_instant, "ns")))
            m = m.isel(time=min(j, tvals.size - 1))
        extra = [d for d in m.dims if d not in ("latitude", "longitude")]
        lsm = m.squeeze(extra, drop=True).transpose("latitude", "longitude")
    attrs = {
        "source_url": url,
        "source_valid_range": valid.describe(),
        "source_step": str(step),
    }
    return SourceSelection(
        variables=out_vars,
        semantics=semantics,
        window=window,
        era5t_months=era5t,
        land_sea_mask=lsm,
        attrs=attrs,
    )
