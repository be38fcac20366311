"""ERA5's CDS products in their real layouts: recognised, and read to the right drivers.

Every product is written small, with known values, in each form the CDS delivers it (new
NetCDF, legacy NetCDF, GRIB); the monthly drivers must match what the product's own
definition gives, to 1e-6 relative: precipitation and radiation above all, whose stored
values are hourly sums in one product and mean daily sums in another.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from carbonsink.drivers import required_variables, resolve_drivers
from carbonsink.errors import SourceError
from carbonsink.features import monthly_means
from carbonsink.sources import CdsEra5Source
from carbonsink.sources.products import Evidence, classify, layout_of
from carbonsink.timeutil import MonthWindow
from tests import cds_files
from tests.cds_files import by_hour_stamps, field, hourly_stamps

RES = 30.0
DRIVERS = resolve_drivers(["t2m", "pr", "rsds"])
GRIB_SAMPLE = Path(__file__).parents[2] / "data" / "era5-levels-members.grib"


def _fields(times: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    return {
        "t2m": field(times, RES, 280.0, 0.1, 0.01),
        "tp": field(times, RES, 2e-4, 1e-6, 1e-9),
        "ssrd": field(times, RES, 1.0e6, 1e3, 10.0),
    }


def _drivers(url: str, start: str, end: str) -> tuple[xr.Dataset, CdsEra5Source]:
    src = CdsEra5Source(url)
    sel = src.select(required_variables(DRIVERS), MonthWindow.parse(start, end))
    return monthly_means(sel, DRIVERS).compute(scheduler="sync"), src


def _as_read(path: Path) -> dict[str, np.ndarray]:
    """The legacy file's values as any NetCDF reader decodes them (packed in int16)."""
    with xr.open_dataset(path, engine="scipy") as ds:
        out = {}
        for n in ("t2m", "tp", "ssrd"):
            v = ds[n].values
            out[n] = np.where(np.isnan(v[:, 0]), v[:, 1], v[:, 0]) if v.ndim == 4 else v
        return out


def _check(got: xr.Dataset, months: list[str], expected: dict[str, list[np.ndarray]]) -> None:
    assert [str(t)[:7] for t in got["time"].values.astype("datetime64[M]")] == months
    for name, per_month in expected.items():
        for k, want in enumerate(per_month):
            np.testing.assert_allclose(got[name].values[k], want, rtol=1e-6)


def _hourly_expected(times, values):
    """Instants: stamps inside the month; sums: the hour ending at the stamp."""
    t = pd.DatetimeIndex(times)
    out = {"t2m": [], "pr": [], "rsds": []}
    for m in ("2020-02",):
        p = pd.Period(m, "M")
        inst = (t >= p.start_time) & (t < (p + 1).start_time)
        summ = (t > p.start_time) & (t <= (p + 1).start_time)
        out["t2m"].append(values["t2m"][inst].mean(0))
        out["pr"].append(values["tp"][summ].mean(0) * 1000 / 3600)
        out["rsds"].append(values["ssrd"][summ].mean(0) / 3600)
    return out


@pytest.mark.parametrize("form", ["new_netcdf", "legacy_netcdf", "grib"])
def test_hourly_reanalysis(tmp_path, form):
    # February 2020, through 00:00 on 1 March: the last hour's sums of February. The GRIB
    # file holds every sixth hour (as many users request it; and cfgrib indexes slowly).
    times = hourly_stamps("2020-02", "2020-02").append(pd.DatetimeIndex(["2020-03-01"]))
    if form == "grib":
        times = times[::6]
    values = _fields(times)
    if form == "new_netcdf":
        cds_files.new_netcdf(tmp_path, "hourly", times, values, resolution=RES)
        url = str(tmp_path / "*.nc")
    elif form == "legacy_netcdf":
        path = cds_files.legacy_netcdf(tmp_path / "era5.nc", times, values, resolution=RES)
        values, url = _as_read(path), str(path)
    else:
        url = str(cds_files.grib(tmp_path / "era5.grib", "hourly", times, values, resolution=RES))
    got, src = _drivers(url, "2020-02", "2020-02")
    assert src.product.layout == "hourly"
    _check(got, ["2020-02"], _hourly_expected(times, values))


@pytest.mark.parametrize("form", ["new_netcdf", "legacy_netcdf", "grib"])
def test_monthly_averaged_reanalysis(tmp_path, form):
    times = pd.date_range("2024-01-01", periods=3, freq="MS")
    values = _fields(times)
    values["tp"] = field(times, RES, 3.1e-3, 1e-5, 1e-4)  # m a day, as the product stores
    if form == "new_netcdf":
        cds_files.new_netcdf(tmp_path, "monthly", times, values, resolution=RES,
                             era5t_from="2024-03-01")  # fmt: skip
        url = str(tmp_path / "data_stream-moda_*.nc")
    elif form == "legacy_netcdf":
        path = cds_files.legacy_netcdf(tmp_path / "era5.nc", times, values, resolution=RES,
                                       era5t_from="2024-03-01")  # fmt: skip
        values, url = _as_read(path), str(path)
    else:
        url = str(cds_files.grib(tmp_path / "era5.grib", "monthly", times, values, resolution=RES))
    got, src = _drivers(url, "2024-01", "2024-03")
    assert src.product.layout == "monthly"
    _check(got, ["2024-01", "2024-02", "2024-03"], {
        "t2m": list(values["t2m"]),
        "pr": [v * 1000 / 86400 for v in values["tp"]],  # a mean daily sum, not an hourly one
        "rsds": [v / 86400 for v in values["ssrd"]],
    })  # fmt: skip
    # 3.1 mm a day at the equator in January, and the reader says so.
    equator = list(cds_files.grid(RES)[0]).index(0.0)
    assert got["pr"].values[0, equator, 0] * 86400 == pytest.approx(3.1, rel=1e-6)
    sel = src.select(["total_precipitation"], MonthWindow.parse("2024-01", "2024-03"))
    assert "monthly_averaged_reanalysis" in sel.attrs["source_product"]
    if form != "grib":  # ERA5T from March: the new NetCDF's expver, the legacy's dimension
        assert [str(m) for m in sel.era5t_months] == ["2024-03"]


@pytest.mark.parametrize("form", ["new_netcdf", "grib"])
def test_monthly_averaged_by_hour_of_day(tmp_path, form):
    times = by_hour_stamps("2023-06", "2023-07")
    values = _fields(times)
    if form == "new_netcdf":
        cds_files.new_netcdf(tmp_path, "monthly_by_hour", times, values, resolution=RES)
        url = str(tmp_path / "*.nc")
    else:
        url = str(cds_files.grib(tmp_path / "era5.grib", "monthly_by_hour", times, values,
                                 resolution=RES))  # fmt: skip
    got, src = _drivers(url, "2023-06", "2023-07")
    assert src.product.layout == "monthly_by_hour"
    halves = [slice(0, 24), slice(24, 48)]
    _check(got, ["2023-06", "2023-07"], {
        "t2m": [values["t2m"][h].mean(0) for h in halves],
        "pr": [values["tp"][h].mean(0) * 1000 / 3600 for h in halves],
        "rsds": [values["ssrd"][h].mean(0) / 3600 for h in halves],
    })  # fmt: skip
    assert src.available().stop == pd.Timestamp("2023-08-01")


def test_daily_statistics(tmp_path):
    """The daily-statistics service's daily means: one stamp a day, hourly sums' means."""
    times = pd.date_range("2020-01-01", "2020-02-29", freq="D")
    values = _fields(times)
    cds_files.new_netcdf(tmp_path, "daily", times, values, resolution=RES)
    got, src = _drivers(str(tmp_path / "*.nc"), "2020-01", "2020-02")
    assert src.product.layout == "daily"
    jan, feb = slice(0, 31), slice(31, 60)
    _check(got, ["2020-01", "2020-02"], {
        "t2m": [values["t2m"][m].mean(0) for m in (jan, feb)],
        "pr": [values["tp"][m].mean(0) * 1000 / 3600 for m in (jan, feb)],
        "rsds": [values["ssrd"][m].mean(0) / 3600 for m in (jan, feb)],
    })  # fmt: skip


def test_era5_land_is_refused(tmp_path):
    times = pd.date_range("2024-01-01", periods=2, freq="MS")
    path = cds_files.grib(tmp_path / "land.grib", "monthly", times, _fields(times),
                          resolution=RES, marsclass="l5")  # fmt: skip
    with pytest.raises(SourceError, match=r"holds ERA5-Land .* download reanalysis-era5-single"):
        CdsEra5Source(str(path)).select(["2m_temperature"], MonthWindow.parse("2024-01", "2024-02"))


def test_the_real_ensemble_sample_is_refused_with_what_to_download():
    src = CdsEra5Source(str(GRIB_SAMPLE))
    with pytest.raises(SourceError, match=r"the ERA5 ensemble \(enda\).*'reanalysis'"):
        src.select(["temperature"], MonthWindow.parse("2017-01", "2017-01"))


def test_metadata_and_stamps_must_agree(tmp_path):
    times = hourly_stamps("2020-01", "2020-01")
    cds_files.new_netcdf(tmp_path, "monthly", times, _fields(times), resolution=RES)
    with pytest.raises(SourceError, match="say ERA5 monthly averaged reanalysis but its time "
                       "stamps lie like ERA5 hourly reanalysis"):  # fmt: skip
        _ = CdsEra5Source(str(tmp_path / "*.nc")).product


def test_stamps_like_no_product_are_refused(tmp_path):
    times = pd.date_range("2020-01-01", periods=12, freq="5D")
    cds_files.new_netcdf(tmp_path, "daily", times, _fields(times), resolution=RES)
    with pytest.raises(SourceError, match=r"cannot tell which ERA5 product .* 12 time stamps"):
        CdsEra5Source(str(tmp_path / "*.nc")).available()


def test_mixed_products_are_refused(tmp_path):
    monthly = pd.date_range("2024-01-01", periods=2, freq="MS")
    cds_files.grib(tmp_path / "a.grib", "monthly", monthly, _fields(monthly), resolution=RES)
    hourly = hourly_stamps("2024-03", "2024-03")
    cds_files.grib(tmp_path / "b.grib", "hourly", hourly, {"t2m": _fields(hourly)["t2m"]},
                   resolution=RES)  # fmt: skip
    with pytest.raises(SourceError, match="mixes ERA5 products"):
        _ = CdsEra5Source(str(tmp_path / "*.grib")).product


@pytest.mark.parametrize(
    ("stamps", "layout"),
    [
        (pd.date_range("2020-01-01", periods=5, freq="h"), "hourly"),
        (pd.date_range("2020-01-01", periods=5, freq="6h"), "hourly"),
        (pd.date_range("2020-01-01", periods=5, freq="D"), "daily"),
        (pd.date_range("2020-01-01", periods=5, freq="MS"), "monthly"),
        (pd.DatetimeIndex(["2020-05-01"]), "monthly"),
        (by_hour_stamps("2020-01", "2020-03"), "monthly_by_hour"),
        (pd.date_range("2020-01-01", periods=5, freq="7D"), None),
        (pd.DatetimeIndex(["2020-05-03T06"]), None),
    ],
)
def test_layouts_of_stamps(stamps, layout):
    assert layout_of(stamps.values) == layout


def test_daily_maxima_are_not_means():
    ev = Evidence(hints=["daily_maximum of 2m_temperature"])
    with pytest.raises(SourceError, match="daily maxima"):
        classify(ev, pd.date_range("2020-01-01", periods=5, freq="D").values, url="x")
