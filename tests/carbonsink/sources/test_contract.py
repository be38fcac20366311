"""One suite over every implementation of the ``Source`` protocol.

Each reader (ARCO-ERA5 Zarr v2 and v3, CDS GRIB, CDS NetCDF) is given the same three months
of 2 m temperature, precipitation and radiation, written in its own layout; every promise of
``carbonsink/sources/base.py`` is checked the same way on each. A new reader joins by adding
a factory to ``SOURCES``.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from carbonsink.drivers import required_variables, resolve_drivers
from carbonsink.errors import SourceError
from carbonsink.features import monthly_means
from carbonsink.sources import ArcoEra5Source, CdsEra5Source, Source, open_source
from carbonsink.sources.base import SourceSelection, ValidRange
from carbonsink.timeutil import MonthWindow
from tests import cds_files
from tests.helpers import make_sample

RES = 30.0
MONTHS = ("2020-01", "2020-03")
VARIABLES = required_variables(resolve_drivers(["t2m", "pr", "rsds"]))


def _cds_fields(times: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    return {
        "t2m": cds_files.field(times, RES, 280.0, 0.1, 0.5),
        "tp": cds_files.field(times, RES, 3e-3, 1e-6, 1e-5),
        "ssrd": cds_files.field(times, RES, 1.5e7, 1e3, 1e4),
    }


def _monthly_stamps() -> pd.DatetimeIndex:
    return pd.date_range(f"{MONTHS[0]}-01", f"{MONTHS[1]}-01", freq="MS")


def arco_v2(tmp: Path) -> str:
    return make_sample(tmp / "v2.zarr", *MONTHS, resolution=RES, step="1MS", zarr_format=2)


def arco_v3(tmp: Path) -> str:
    return make_sample(tmp / "v3.zarr", *MONTHS, resolution=RES, step="1MS", zarr_format=3)


def cds_grib(tmp: Path) -> str:
    times = _monthly_stamps()
    path = cds_files.grib(tmp / "era5.grib", "monthly", times, _cds_fields(times), resolution=RES)
    return str(path)


def cds_netcdf(tmp: Path) -> str:
    times = _monthly_stamps()
    cds_files.new_netcdf(tmp, "monthly", times, _cds_fields(times), resolution=RES)
    return str(tmp / "data_stream-moda_*.nc")


#: name -> (factory writing the three months and returning the URL, the reader's class)
SOURCES: dict[str, tuple[Callable[[Path], str], type]] = {
    "arco-zarr-v2": (arco_v2, ArcoEra5Source),
    "arco-zarr-v3": (arco_v3, ArcoEra5Source),
    "cds-grib": (cds_grib, CdsEra5Source),
    "cds-netcdf": (cds_netcdf, CdsEra5Source),
}


@pytest.fixture(params=list(SOURCES), scope="module")
def source(request, tmp_path_factory) -> Source:
    factory, cls = SOURCES[request.param]
    src = open_source(factory(tmp_path_factory.mktemp(request.param)))
    assert type(src) is cls  # open_source picks the reader by the URL
    return src


def test_it_is_a_source(source):
    assert isinstance(source, Source)


def test_available_covers_the_written_months(source):
    valid = source.available()
    assert isinstance(valid, ValidRange)
    assert valid.start <= pd.Timestamp(f"{MONTHS[0]}-01")
    assert valid.start < valid.stop <= valid.stop_era5t
    assert valid.stop_era5t >= pd.Timestamp(f"{MONTHS[1]}-01")


def test_a_selection_is_lazy_normal_and_inside_its_window(source):
    window = MonthWindow.parse(*MONTHS)
    sel = source.select(VARIABLES, window)
    assert isinstance(sel, SourceSelection)
    assert sel.window == window
    assert set(sel.variables) == set(VARIABLES) == set(sel.semantics)
    for name, da in sel.variables.items():
        assert isinstance(da, xr.DataArray)
        # Nothing is read before the ingest asks for it.
        assert not isinstance(da.variable._data, np.ndarray), name
        assert da.dims == ("time", "latitude", "longitude"), name
        for axis in ("latitude", "longitude"):
            step = np.diff(da[axis].values)
            assert (step > 0).all() or (step < 0).all(), (name, axis)
        stamps = da["time"].values
        assert len(np.unique(stamps)) == len(stamps)
        months = sel.semantics[name].interval_midpoints(stamps).to_period("M")
        # Every stamp stands for an interval inside the window, and every month is there.
        assert set(months) == set(window.months), name
    assert sel.latitude.ndim == sel.longitude.ndim == 1
    # Provenance every reader records; sample data says it is synthetic.
    assert {"source_url", "source_product", "source_step", "source_synthetic"} <= set(sel.attrs)
    assert sel.attrs["source_synthetic"] == ("true" if "zarr" in source.url else "false")


def test_monthly_drivers_are_plausible_on_every_reader(source):
    drivers = resolve_drivers(["t2m", "pr", "rsds"])
    sel = source.select(VARIABLES, MonthWindow.parse(*MONTHS))
    out = monthly_means(sel, drivers).compute(scheduler="sync")
    assert [str(t)[:7] for t in out["time"].values.astype("datetime64[M]")] == [
        "2020-01",
        "2020-02",
        "2020-03",
    ]
    t2m, pr, rsds = (out[n].values for n in ("t2m", "pr", "rsds"))
    assert np.isfinite(t2m).all() and t2m.min() > 180 and t2m.max() < 340
    # kg m-2 s-1 and W m-2 whatever the product's accumulation period.
    assert (pr >= 0).all() and pr.max() * 86400 < 100
    assert (rsds >= 0).all() and rsds.max() < 500


def test_a_window_past_the_data_is_refused(source):
    with pytest.raises(SourceError):
        source.select(VARIABLES, MonthWindow.parse("2031-01", "2031-02"))


def test_a_missing_variable_is_refused(source):
    with pytest.raises(SourceError) as info:
        source.select([*VARIABLES, "snow_depth"], MonthWindow.parse(*MONTHS))
    assert "snow_depth" in str(info.value) and "\n" not in str(info.value)
