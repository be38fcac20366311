"""ERA5 from the Copernicus data store: the real GRIB sample and NetCDF conventions."""

from pathlib import Path

import eccodes
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from carbonsink.errors import SourceError, SourceUnreachableError
from carbonsink.sources.cds import CdsEra5Source, arco_name, normalise_cds
from carbonsink.timeutil import MonthWindow

GRIB = Path(__file__).parents[2] / "data" / "era5-levels-members.grib"


def _messages():
    with GRIB.open("rb") as fh:
        while (gid := eccodes.codes_grib_new_from_file(fh)) is not None:
            try:
                yield {
                    "short": eccodes.codes_get(gid, "shortName"),
                    "level": eccodes.codes_get(gid, "level"),
                    "number": eccodes.codes_get(gid, "number"),
                    "date": eccodes.codes_get(gid, "dataDate"),
                    "time": eccodes.codes_get(gid, "dataTime"),
                    "ni": eccodes.codes_get(gid, "Ni"),
                    "nj": eccodes.codes_get(gid, "Nj"),
                    "values": eccodes.codes_get_values(gid),
                }
            finally:
                eccodes.codes_release(gid)


def test_grib_sample_coordinates():
    ds = CdsEra5Source(str(GRIB)).dataset
    assert set(ds.data_vars) == {"geopotential", "temperature"}
    assert ds.sizes == {"number": 10, "time": 4, "level": 2, "latitude": 61, "longitude": 120}
    np.testing.assert_array_equal(ds["latitude"].values, np.linspace(90, -90, 61))
    np.testing.assert_array_equal(ds["longitude"].values, np.arange(120) * 3.0)
    assert sorted(ds["level"].values.tolist()) == [500.0, 850.0]
    assert ds["level"].attrs["units"] == "hPa"
    np.testing.assert_array_equal(
        ds["time"].values,
        pd.to_datetime(["2017-01-01T00", "2017-01-01T12", "2017-01-02T00", "2017-01-02T12"]).values,
    )
    assert ds["temperature"].attrs["units"] == "K"
    assert ds["geopotential"].attrs["units"] == "m**2 s**-2"


def test_grib_sample_values_match_eccodes():
    ds = CdsEra5Source(str(GRIB)).dataset
    names = {"t": "temperature", "z": "geopotential"}
    n = 0
    for m in _messages():
        when = pd.Timestamp(f"{m['date']}T{m['time']:04d}")
        got = ds[names[m["short"]]].sel(number=m["number"], level=m["level"], time=when).values
        np.testing.assert_array_equal(got.ravel(), m["values"].astype(np.float32))
        n += 1
    assert n == 160  # 2 parameters x 2 levels x 10 members x 4 times
    t = ds["temperature"].sel(level=850)
    assert float(t.min()) > 200 and float(t.max()) < 320  # plausible 850 hPa temperatures


def test_netcdf_in_new_cds_conventions(tmp_path):
    """The CDS NetCDF names (valid_time, t2m, tp, expver) normalise to ARCO names."""
    times = pd.date_range("2020-01-01", "2020-02-29T23", freq="h")
    lat = np.linspace(90, -90, 19)
    lon = np.arange(36) * 10.0
    shape = (times.size, lat.size, lon.size)
    ds = xr.Dataset(
        {
            "t2m": (
                ("valid_time", "latitude", "longitude"),
                np.full(shape, 280.0, np.float32),
                {"units": "K", "GRIB_paramId": 167},
            ),
            "tp": (
                ("valid_time", "latitude", "longitude"),
                np.full(shape, 1e-4, np.float32),
                {"units": "m", "GRIB_paramId": 228},
            ),
        },
        coords={
            "valid_time": times,
            "latitude": lat,
            "longitude": lon,
            "expver": ("valid_time", np.full(times.size, "0001")),
        },
    )
    path = tmp_path / "era5-2020.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    src = CdsEra5Source(str(path))
    assert set(src.dataset.data_vars) == {"2m_temperature", "total_precipitation"}
    sel = src.select(
        ["2m_temperature", "total_precipitation"], MonthWindow.parse("2020-01", "2020-01")
    )
    assert sel.variables["2m_temperature"].sizes["time"] == 744
    assert sel.variables["total_precipitation"]["time"].values[0] == np.datetime64("2020-01-01T01")


def test_cfgrib_accumulations_are_unstacked():
    base = pd.to_datetime(["2020-01-01T06", "2020-01-01T18"])
    steps = pd.to_timedelta(np.arange(1, 13), unit="h")
    valid = base.values[:, None] + steps.values[None, :]
    ds = xr.Dataset(
        {
            "tp": (
                ("time", "step", "latitude", "longitude"),
                np.ones((2, 12, 3, 4), np.float32),
                {"GRIB_paramId": 228, "units": "m"},
            )
        },
        coords={
            "time": base,
            "step": steps,
            "valid_time": (("time", "step"), valid),
            "latitude": [10.0, 0.0, -10.0],
            "longitude": [0.0, 90.0, 180.0, 270.0],
        },
    )
    out = normalise_cds(ds, url="x")
    assert out["total_precipitation"].dims == ("time", "latitude", "longitude")
    t = pd.DatetimeIndex(out["time"].values)
    assert (
        t[0] == pd.Timestamp("2020-01-01T07")
        and t[-1] == pd.Timestamp("2020-01-02T06")
        and t.is_monotonic_increasing
    )


def test_names():
    assert arco_name("t2m", {}, on_levels=False) == "2m_temperature"
    assert arco_name("z", {"GRIB_paramId": 129}, on_levels=True) == "geopotential"
    assert arco_name("z", {"GRIB_paramId": 129}, on_levels=False) == "geopotential_at_surface"
    assert (
        arco_name("ssrd", {"GRIB_paramId": 169}, on_levels=False)
        == "surface_solar_radiation_downwards"
    )
    with pytest.raises(SourceError, match="not an ERA5 variable"):
        normalise_cds(xr.Dataset({"foo": ("x", [1.0])}), url="x")


def test_missing_files(tmp_path):
    with pytest.raises(SourceUnreachableError, match="no files match"):
        _ = CdsEra5Source(str(tmp_path / "*.grib")).dataset
    with pytest.raises(SourceError, match="local paths"):
        CdsEra5Source("s3://bucket/era5.grib")
