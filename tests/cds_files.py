"""Small ERA5 downloads laid out as the Copernicus data store delivers them.

Three forms: the new CDS NetCDF (NetCDF4, ``valid_time``, ``expver`` and ``number``
coordinates, cfgrib's ``GRIB_*`` attributes, a ``history`` line naming the stream and step
type, one file per step type named ``data_stream-<stream>_stepType-<type>.nc``), the legacy
NetCDF of ``grib_to_netcdf`` (NetCDF3, ``time`` in hours since 1900, values packed in int16,
an ``expver`` dimension when ERA5 and ERA5T meet) and GRIB1 written with ecCodes (MARS
class, stream, type and step type; hourly accumulations as base time x step). The values
are whatever the caller gives, so tests know what the monthly drivers must be.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

# name in the file -> (GRIB parameter id, units, accumulated)
PARAMS: dict[str, tuple[int, str, bool]] = {
    "t2m": (167, "K", False),
    "d2m": (168, "K", False),
    "tp": (228, "m", True),
    "ssrd": (169, "J m**-2", True),
    "swvl1": (39, "m**3 m**-3", False),
    "stl1": (139, "K", False),
    "lai_hv": (67, "m**2 m**-2", False),
    "lai_lv": (66, "m**2 m**-2", False),
    "u10": (165, "m s**-1", False),
    "v10": (166, "m s**-1", False),
    "sst": (34, "K", False),
    "siconc": (31, "(0 - 1)", False),
    "msl": (151, "Pa", False),
    "lsm": (172, "(0 - 1)", False),
}
#: MARS stream, and the step types of instantaneous and accumulated fields, per product.
PRODUCTS = {
    "hourly": ("oper", "instant", "accum"),
    "monthly": ("moda", "avgua", "avgad"),
    "monthly_by_hour": ("mnth", "avgua", "avgas"),
}

Fields = Mapping[str, np.ndarray]  # name -> (time, lat, lon)


def grid(resolution: float) -> tuple[np.ndarray, np.ndarray]:
    """ERA5's point grid at ``resolution``: latitude 90 -> -90, longitude 0 -> 360 - d."""
    lat = np.linspace(90.0, -90.0, round(180 / resolution) + 1)
    lon = np.arange(round(360 / resolution)) * resolution
    return lat, lon


def hourly_stamps(start: str, end: str) -> pd.DatetimeIndex:
    """Every hour of the months ``start``..``end`` (instantaneous stamps)."""
    first = pd.Period(start, "M").start_time
    stop = (pd.Period(end, "M") + 1).start_time
    return pd.date_range(first, stop, freq="h", inclusive="left")


def by_hour_stamps(start: str, end: str) -> pd.DatetimeIndex:
    """00:00..23:00 on the 1st of every month (monthly means by hour of day)."""
    firsts = pd.date_range(pd.Period(start, "M").start_time, pd.Period(end, "M").start_time,
                           freq="MS")  # fmt: skip
    return pd.DatetimeIndex([t + pd.Timedelta(hours=h) for t in firsts for h in range(24)])


def new_netcdf(
    folder: Path,
    product: str,
    times: pd.DatetimeIndex,
    fields: Fields,
    *,
    resolution: float,
    accumulated_times: pd.DatetimeIndex | None = None,
    era5t_from: str | None = None,
    history: bool = True,
) -> list[Path]:
    """A new-CDS download: one NetCDF4 file per step type; returns the paths.

    ``accumulated_times`` stamps the accumulated fields (default ``times``); ``era5t_from``
    marks stamps from then on with ``expver`` 0005. ``product`` ``daily`` writes what the
    daily-statistics service returns: no stream, no step type.
    """
    lat, lon = grid(resolution)
    stream, instant, accum = PRODUCTS.get(product, (None, None, None))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for is_acc, step_type in ((False, instant), (True, accum)):
        names = [n for n in fields if PARAMS[n][2] == is_acc]
        if not names:
            continue
        t = accumulated_times if is_acc and accumulated_times is not None else times
        prelim = np.zeros(t.size, bool) if era5t_from is None else t >= pd.Timestamp(era5t_from)
        expver = np.where(prelim, "0005", "0001")
        data = {}
        for n in names:
            pid, units, _ = PARAMS[n]
            attrs = {"GRIB_paramId": pid, "units": units, "GRIB_units": units, "long_name": n}
            if step_type is not None:
                attrs |= {"GRIB_stepType": step_type, "GRIB_dataType": "fc" if is_acc else "an"}
            data[n] = (("valid_time", "latitude", "longitude"), np.asarray(fields[n], np.float32),
                       attrs)  # fmt: skip
        attrs = {"GRIB_centre": "ecmf", "Conventions": "CF-1.7",
                 "institution": "European Centre for Medium-Range Weather Forecasts"}  # fmt: skip
        if history and stream is not None:
            attrs["history"] = (
                "2026-11-20T10:00 GRIB to CDM+CF via cfgrib-0.9.15.0/ecCodes-2.41.0 with "
                f'{{"source": "data.grib", "filter_by_keys": {{"stream": ["{stream}"], '
                f'"stepType": ["{step_type}"]}}, "encode_cf": ["parameter", "time", '
                '"geography", "vertical"]}'
            )
        ds = xr.Dataset(
            data,
            coords={"valid_time": t, "latitude": lat, "longitude": lon, "number": 0,
                    "expver": ("valid_time", expver)},
            attrs=attrs,
        )  # fmt: skip
        name = (
            f"data_stream-{stream}_stepType-{step_type}.nc"
            if stream is not None
            else f"{product}-{'accum' if is_acc else 'instant'}.nc"
        )
        path = folder / name
        ds.to_netcdf(path, engine="h5netcdf")
        paths.append(path)
    return paths


def legacy_netcdf(
    path: Path,
    times: pd.DatetimeIndex,
    fields: Fields,
    *,
    resolution: float,
    era5t_from: str | None = None,
) -> Path:
    """A legacy-CDS NetCDF3 file, values packed in int16; with ``era5t_from``, ERA5 and
    ERA5T side by side along an ``expver`` dimension (1, 5), NaN where the other holds."""
    lat, lon = grid(resolution)
    data = {}
    split = None if era5t_from is None else times >= pd.Timestamp(era5t_from)
    for n, values in fields.items():
        v = np.asarray(values, np.float64)
        lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
        scale = (hi - lo) / 60000 if hi > lo else 1.0
        enc = {"dtype": "int16", "scale_factor": scale, "add_offset": (hi + lo) / 2,
               "_FillValue": np.int16(-32767)}  # fmt: skip
        attrs = {"units": PARAMS[n][1], "long_name": n}
        if split is None:
            data[n] = xr.Variable(("time", "latitude", "longitude"), v, attrs, encoding=enc)
        else:
            both = np.full((v.shape[0], 2, *v.shape[1:]), np.nan)
            both[~split, 0] = v[~split]
            both[split, 1] = v[split]
            data[n] = xr.Variable(("time", "expver", "latitude", "longitude"), both, attrs,
                                  encoding=enc)  # fmt: skip
    coords: dict = {"time": times, "latitude": lat.astype(np.float32),
                    "longitude": lon.astype(np.float32)}  # fmt: skip
    if split is not None:
        coords["expver"] = np.array([1, 5], np.int32)
    ds = xr.Dataset(
        data,
        coords=coords,
        attrs={"Conventions": "CF-1.6", "history": "2023-01-05 10:00:00 GMT by "
               "grib_to_netcdf-2.25.1: /opt/ecmwf/mars-client/bin/grib_to_netcdf -S param "
               "-o /cache/data0/adaptor.mars.internal-1672912800.nc /cache/tmp/x.grib"},
    )  # fmt: skip
    ds["time"].encoding = {"units": "hours since 1900-01-01 00:00:00.0", "calendar": "gregorian",
                           "dtype": "int32"}  # fmt: skip
    ds.to_netcdf(path, engine="scipy", format="NETCDF3_64BIT")
    return path


def grib(
    path: Path,
    product: str,
    times: pd.DatetimeIndex,
    fields: Fields,
    *,
    resolution: float,
    marsclass: str = "ea",
) -> Path:
    """GRIB1 messages as the CDS writes them. Hourly accumulations (valid at ``times``)
    come from the 06 and 18 UTC forecasts, steps 1 to 12; other fields are stamped as given.
    """
    import eccodes

    lat, lon = grid(resolution)
    stream, instant, accum = PRODUCTS[product]
    with path.open("wb") as fh:
        for n, values in fields.items():
            pid, _, is_acc = PARAMS[n]
            v = np.asarray(values, np.float64)
            for k, t in enumerate(times):
                gid = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib1")
                try:
                    for key, val in (
                        ("Ni", lon.size), ("Nj", lat.size),
                        ("latitudeOfFirstGridPointInDegrees", lat[0]),
                        ("latitudeOfLastGridPointInDegrees", lat[-1]),
                        ("longitudeOfFirstGridPointInDegrees", lon[0]),
                        ("longitudeOfLastGridPointInDegrees", lon[-1]),
                        ("iDirectionIncrementInDegrees", resolution),
                        ("jDirectionIncrementInDegrees", resolution),
                        ("marsClass", marsclass), ("marsStream", stream),
                        ("marsType", "fc" if is_acc else "an"), ("paramId", pid),
                    ):  # fmt: skip
                        eccodes.codes_set(gid, key, val)
                    if is_acc and product == "hourly":
                        base = (t - pd.Timedelta(hours=1)).floor("12h") + pd.Timedelta(hours=6)
                        if base >= t:
                            base -= pd.Timedelta(hours=12)
                        step = int((t - base) / pd.Timedelta(hours=1))
                        eccodes.codes_set(gid, "dataDate", int(base.strftime("%Y%m%d")))
                        eccodes.codes_set(gid, "dataTime", int(base.strftime("%H%M")))
                        eccodes.codes_set(gid, "stepType", accum)
                        eccodes.codes_set(gid, "startStep", step - 1)
                        eccodes.codes_set(gid, "endStep", step)
                    else:
                        eccodes.codes_set(gid, "dataDate", int(t.strftime("%Y%m%d")))
                        eccodes.codes_set(gid, "dataTime", int(t.strftime("%H%M")))
                        eccodes.codes_set(gid, "stepType", accum if is_acc else instant)
                    eccodes.codes_set_values(gid, v[k].ravel())
                    eccodes.codes_write(gid, fh)
                finally:
                    eccodes.codes_release(gid)
    return path


def field(times: pd.DatetimeIndex, resolution: float, base: float, per_lat: float,
          per_step: float) -> np.ndarray:  # fmt: skip
    """``base + per_lat * latitude + per_step * k`` for stamp k: known and not symmetric."""
    lat, lon = grid(resolution)
    k = np.arange(times.size, dtype=np.float64)[:, None, None]
    return base + per_lat * lat[None, :, None] + per_step * k + 0.0 * lon[None, None, :]


#: Plausible monthly means of every variable carbonsink ingests, as the monthly means
#: product stores them: ``tp`` in m a day (3.1 mm), ``ssrd`` in J m-2 a day (173.6 W m-2).
MONTHLY_MEANS = {
    "t2m": 285.0, "d2m": 280.0, "tp": 3.1e-3, "ssrd": 1.5e7, "swvl1": 0.3, "stl1": 286.0,
    "lai_hv": 2.0, "lai_lv": 1.5, "u10": 3.0, "v10": -2.0, "sst": 290.0, "siconc": 0.0,
    "msl": 101_325.0,
}  # fmt: skip


def monthly_download(
    folder: Path, start: str, end: str, *, resolution: float = 1.0, **values: float
) -> list[Path]:
    """Every variable of a months' monthly means as a new-CDS download (two NetCDF files):
    uniform fields (``values`` override :data:`MONTHLY_MEANS`), land north of the equator."""
    times = pd.date_range(pd.Period(start, "M").start_time, pd.Period(end, "M").start_time,
                          freq="MS")  # fmt: skip
    lat, lon = grid(resolution)
    shape = (times.size, lat.size, lon.size)
    fields = {n: np.full(shape, v, np.float32) for n, v in {**MONTHLY_MEANS, **values}.items()}
    fields["lsm"] = np.broadcast_to((lat > 0)[None, :, None], shape).astype(np.float32)
    return new_netcdf(folder, "monthly", times, fields, resolution=resolution)
