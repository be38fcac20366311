"""TRENDY DGVM and GOBM output files as the modelling groups deliver them, small and known."""

import numpy as np
import pandas as pd
import xarray as xr


def write_trendy(path, *, units="kg m-2 s-1", fill=-99999.0, declare_fill=True):
    """A TRENDY-style S2 nbp file: 1 deg, north to south, 365_day calendar from 1700."""
    lat = np.arange(89.5, -90, -1.0)
    lon = np.arange(-179.5, 180, 1.0)
    months = pd.period_range("2015-01", "2016-12", freq="M")
    lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    days = [(m.year - 1700) * 365 + sum(lengths[: m.month - 1]) + 14 for m in months]
    values = np.full((len(months), lat.size, lon.size), 2e-9, np.float32)
    values *= (1 + np.arange(len(months)) / 24)[:, None, None]
    values[:, :30] = fill  # the first rows (north of 60N, the file runs north to south): missing
    da = xr.DataArray(values, dims=("time", "lat", "lon"),
                      coords={"lat": lat, "lon": lon}, attrs={"units": units})  # fmt: skip
    ds = da.to_dataset(name="nbp")
    ds["time"] = ("time", np.array(days, float), {"units": "days since 1700-01-01 00:00:00",
                                                  "calendar": "365_day"})  # fmt: skip
    enc = {"nbp": {"_FillValue": fill}} if declare_fill else {"nbp": {"_FillValue": None}}
    ds.to_netcdf(path, engine="h5netcdf", encoding=enc)
    return str(path)


def write_gobm(path):
    """A GCB-submission-style fgco2 file: mol m-2 s-1, 1 deg, longitudes 0.5..359.5."""
    lat = np.arange(-89.5, 90, 1.0)
    lon = np.arange(0.5, 360, 1.0)
    time = pd.date_range("2015-01-01", periods=24, freq="MS") + pd.Timedelta(days=14)
    values = np.full((24, lat.size, lon.size), 1e-7, np.float32)  # mol m-2 s-1
    ds = xr.Dataset({"fgco2": (("time", "lat", "lon"), values, {"units": "mol m-2 s-1"})},
                    coords={"time": time, "lat": lat, "lon": lon})  # fmt: skip
    ds.to_netcdf(path, engine="h5netcdf")
    return str(path)
