"""The sample store has exactly the ARCO-ERA5 layout, and is deterministic by seed."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from carbonsink.errors import ConfigError
from carbonsink.sample.climate import SAMPLE_VARIABLES
from carbonsink.sample.store import SampleSpec
from carbonsink.timeutil import MonthWindow
from tests.helpers import make_sample


def _tree_hash(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_arco_layout(hourly_store):
    root = Path(hourly_store)
    zmeta = json.loads((root / ".zmetadata").read_text())
    assert zmeta["zarr_consolidated_format"] == 1
    meta = zmeta["metadata"]
    arr = meta["2m_temperature/.zarray"]
    assert arr["chunks"] == [1, 31, 60] and arr["dtype"] == "<f4"
    assert arr["compressor"]["id"] == "blosc" and arr["compressor"]["cname"] == "lz4"
    assert arr["compressor"]["clevel"] == 5
    assert meta["2m_temperature/.zattrs"]["_ARRAY_DIMENSIONS"] == ["time", "latitude", "longitude"]
    assert meta["total_precipitation/.zattrs"]["units"] == "m"
    assert meta["surface_solar_radiation_downwards/.zattrs"]["units"] == "J m**-2"
    assert meta["time/.zattrs"]["units"] == "hours since 1900-01-01"
    attrs = meta[".zattrs"]
    assert attrs["valid_time_start"] == "2015-06-01"
    assert attrs["valid_time_stop_era5t"] == "2015-07-31"
    assert {"2m_temperature", "total_precipitation", "land_sea_mask"} <= {
        k.split("/")[0] for k in meta
    }
    ds = xr.open_zarr(hourly_store, consolidated=True, chunks=None)
    # Padded like ARCO-ERA5: 1900-01-01T00 .. 2050-12-31T23, value == index.
    assert ds.sizes["time"] == 1_323_648
    assert ds["time"].values[0] == np.datetime64("1900-01-01T00")
    assert ds["time"].values[-1] == np.datetime64("2050-12-31T23")
    assert ds["latitude"].values[0] == 90 and ds["latitude"].values[-1] == -90
    assert ds["longitude"].values[0] == 0 and ds["longitude"].values[-1] == 354
    # Padding reads as NaN and is not stored.
    assert np.isnan(ds["2m_temperature"].sel(time="2020-01-01T00").values).all()
    assert not (root / "2m_temperature" / "0.0.0").exists()
    assert np.isfinite(ds["2m_temperature"].sel(time="2015-06-15T12").values).all()


def test_all_variables_by_default(tmp_path):
    url = make_sample(tmp_path / "all.zarr", "2015-01", "2015-01", resolution=10.0, step="1MS")
    assert set(SAMPLE_VARIABLES) <= set(zarr.open_group(url, mode="r").array_keys())


def test_deterministic_by_seed(tmp_path):
    a = make_sample(tmp_path / "a.zarr", "2015-01", "2015-02", resolution=10.0, step="1D", seed=7)
    b = make_sample(tmp_path / "b.zarr", "2015-01", "2015-02", resolution=10.0, step="1D", seed=7)
    c = make_sample(tmp_path / "c.zarr", "2015-01", "2015-02", resolution=10.0, step="1D", seed=8)
    assert _tree_hash(Path(a)) == _tree_hash(Path(b))
    assert _tree_hash(Path(a)) != _tree_hash(Path(c))


def test_zarr_v3_option(tmp_path):
    url = make_sample(
        tmp_path / "v3.zarr", "2015-01", "2015-01", resolution=10.0, step="1MS", zarr_format=3
    )
    assert (Path(url) / "zarr.json").exists()
    g = zarr.open_group(url, mode="r")
    assert g["2m_temperature"].metadata.dimension_names == ("time", "latitude", "longitude")
    assert g.attrs["valid_time_start"] == "2015-01-01"


def test_monthly_and_daily_steps_are_period_means(tmp_path):
    url = make_sample(tmp_path / "m.zarr", "2015-01", "2015-03", resolution=10.0, step="1MS")
    ds = xr.open_zarr(url, consolidated=True, chunks=None)
    assert ds["2m_temperature"].attrs["cell_methods"] == "time: mean"
    t = ds["time"].sel(time=slice("2015-01", "2015-03")).values
    assert list(pd.DatetimeIndex(t).day) == [1, 1, 1]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"step": "2h"}, "step"),
        ({"resolution": 0.7}, "divide 180"),
        ({"variables": ("snow",)}, "cannot generate"),
    ],
)
def test_bad_specs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SampleSpec(MonthWindow.parse("2015-01", "2015-01"), **kwargs)
