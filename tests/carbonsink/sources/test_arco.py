"""The ARCO-ERA5 reader: layouts, the padded time axis, orientation and bad input."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from carbonsink.errors import CarbonsinkError, SourceError, SourceUnreachableError
from carbonsink.sources import ArcoEra5Source, open_source
from carbonsink.sources.cds import CdsEra5Source
from carbonsink.timeutil import MonthWindow
from tests.helpers import make_sample

JUL = MonthWindow.parse("2015-07", "2015-07")


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and len(text) < 400
    return text


def test_reads_padded_store_only_inside_valid_range(hourly_store):
    src = ArcoEra5Source(hourly_store)
    sel = src.select(["2m_temperature", "total_precipitation"], JUL)
    t = sel.variables["2m_temperature"]["time"].values
    assert t[0] == np.datetime64("2015-07-01T00") and t[-1] == np.datetime64("2015-07-31T23")
    # Accumulations cover the hour *ending* at the stamp: July is 01T01 .. 08-01T00, and
    # the last interval lies past the store's end (the tolerated newest hour).
    p = sel.variables["total_precipitation"]["time"].values
    assert p[0] == np.datetime64("2015-07-01T01") and p[-1] == np.datetime64("2015-07-31T23")
    assert sel.semantics["total_precipitation"].kind == "accumulated"
    jun = src.select(["total_precipitation"], MonthWindow.parse("2015-06", "2015-06"))
    pj = jun.variables["total_precipitation"]["time"].values
    assert pj[0] == np.datetime64("2015-06-01T01") and pj[-1] == np.datetime64("2015-07-01T00")
    assert pj.size == 30 * 24
    assert sel.land_sea_mask is not None and sel.land_sea_mask.dims == ("latitude", "longitude")


def test_one_month_of_monthly_means_is_read_as_a_month(monthly_store):
    # A single stamp shows no step; its neighbours on the store's axis do.
    for month in ("2015-01", "2016-06", "2016-12"):
        sel = ArcoEra5Source(monthly_store).select(
            ["2m_temperature"], MonthWindow.parse(month, month)
        )
        t = sel.variables["2m_temperature"]["time"].values
        assert t.size == 1 and str(t[0])[:7] == month


def test_window_outside_valid_range(hourly_store):
    with pytest.raises(
        SourceError, match=r"outside the valid time range.*2015-06-01 .. 2015-07-31"
    ) as e:
        ArcoEra5Source(hourly_store).select(
            ["2m_temperature"], MonthWindow.parse("2015-08", "2015-09")
        )
    _one_line(e.value)


def test_era5t_months_are_flagged(monthly_store):
    sel = ArcoEra5Source(monthly_store).select(
        ["2m_temperature"], MonthWindow.parse("2016-09", "2016-12")
    )
    assert [str(m) for m in sel.era5t_months] == ["2016-11", "2016-12"]


def test_zarr_v3_and_memory_urls(tmp_path):
    v3 = make_sample(
        tmp_path / "v3.zarr", "2015-01", "2015-02", resolution=10.0, step="1MS", zarr_format=3
    )
    a = ArcoEra5Source(v3).select(["2m_temperature"], MonthWindow.parse("2015-01", "2015-02"))
    mem = make_sample(
        "memory://carbonsink-test/m.zarr", "2015-01", "2015-02", resolution=10.0, step="1MS"
    )
    b = ArcoEra5Source(mem).select(["2m_temperature"], MonthWindow.parse("2015-01", "2015-02"))
    np.testing.assert_array_equal(
        a.variables["2m_temperature"].values, b.variables["2m_temperature"].values
    )


def test_open_source_dispatches_by_suffix(monthly_store):
    assert isinstance(open_source(monthly_store), ArcoEra5Source)
    assert isinstance(open_source("era5/*.grib"), CdsEra5Source)


def _rewrite(url: str, fn) -> None:
    """Change a store with xarray-free zarr calls and re-consolidate."""
    g = zarr.open_group(url, mode="r+", use_consolidated=False)
    fn(g)
    zarr.consolidate_metadata(url)


def test_missing_variable(monthly_store, store_copy):
    url = store_copy(monthly_store)
    shutil.rmtree(Path(url) / "10m_u_component_of_wind")
    zarr.consolidate_metadata(url)
    with pytest.raises(SourceError, match=r"lacks variable.*10m_u_component_of_wind") as e:
        ArcoEra5Source(url).select(["10m_u_component_of_wind"], JUL)
    assert "--drivers" in _one_line(e.value)


def test_time_gap_and_duplicates(monthly_store, store_copy):
    url = store_copy(monthly_store)
    src = ArcoEra5Source(url)
    i = int(np.searchsorted(src.dataset["time"].values, np.datetime64("2015-05-01")))

    def gap(g):
        t = g["time"][:]
        t[i:-1] = t[i + 1 :].copy()  # May's stamp disappears; later months move up one
        g["time"][:] = t

    _rewrite(url, gap)
    with pytest.raises(SourceError, match=r"misses 1 time step.*2015-05-01") as e:
        ArcoEra5Source(url).select(["2m_temperature"], MonthWindow.parse("2015-01", "2015-12"))
    _one_line(e.value)

    url2 = store_copy(monthly_store)

    def dup(g):
        t = g["time"][:]
        t[i] = t[i - 1]
        g["time"][:] = t

    _rewrite(url2, dup)
    with pytest.raises(SourceError, match="duplicate stamps"):
        ArcoEra5Source(url2).select(["2m_temperature"], MonthWindow.parse("2015-01", "2015-12"))


def test_non_monotonic_latitude(monthly_store, store_copy):
    url = store_copy(monthly_store)

    def shuffle(g):
        lat = g["latitude"][:]
        lat[[3, 4]] = lat[[4, 3]]
        g["latitude"][:] = lat

    _rewrite(url, shuffle)
    with pytest.raises(SourceError, match=r"latitude .* not strictly monotonic"):
        ArcoEra5Source(url).select(["2m_temperature"], JUL)


def test_unexpected_units_are_caught_at_ingest_not_here(monthly_store, store_copy):
    # The reader passes attributes through; the driver computation refuses them (features).
    url = store_copy(monthly_store)
    _rewrite(url, lambda g: g["2m_temperature"].attrs.update(units="furlongs"))
    sel = ArcoEra5Source(url).select(["2m_temperature"], JUL)
    assert sel.variables["2m_temperature"].attrs["units"] == "furlongs"


def test_unreachable_urls(tmp_path, s3_server):
    with pytest.raises(SourceUnreachableError, match="cannot open") as e:
        _ = ArcoEra5Source(str(tmp_path / "nothing.zarr")).dataset
    _one_line(e.value)
    from carbonsink.storage import StorageOptions

    closed = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(SourceUnreachableError, match=r"cannot open s3://bucket/store.zarr") as e:
        _ = ArcoEra5Source("s3://bucket/store.zarr", StorageOptions(endpoint_url=closed)).dataset
    _one_line(e.value)


def test_empty_store(tmp_path):
    zarr.open_group(str(tmp_path / "empty.zarr"), mode="w", zarr_format=2)
    zarr.consolidate_metadata(str(tmp_path / "empty.zarr"))
    with pytest.raises(SourceError, match="empty store"):
        _ = ArcoEra5Source(str(tmp_path / "empty.zarr")).dataset


def test_other_orientations_are_normalised(monthly_store, tmp_path):
    """Ascending latitude and -180..180 longitude (WeatherBench2 style) read the same data."""
    ds = xr.open_zarr(monthly_store, consolidated=True, chunks=None)
    w = ds.isel(
        time=slice(
            *np.searchsorted(
                ds["time"].values, [np.datetime64("2015-01-01"), np.datetime64("2016-01-01")]
            )
        )
    )
    flipped = w.isel(latitude=slice(None, None, -1))
    flipped = flipped.assign_coords(longitude=((flipped.longitude + 180) % 360) - 180).sortby(
        "longitude"
    )
    flipped = flipped.isel(
        longitude=np.r_[10 : flipped.sizes["longitude"], 0:10]
    )  # rotated, not sorted
    out = tmp_path / "flipped.zarr"
    flipped.attrs.pop("valid_time_stop", None)
    flipped.to_zarr(out, consolidated=True, zarr_format=2)
    a = ArcoEra5Source(monthly_store).select(
        ["2m_temperature"], MonthWindow.parse("2015-03", "2015-03")
    )
    b = ArcoEra5Source(str(out)).select(["2m_temperature"], MonthWindow.parse("2015-03", "2015-03"))
    assert np.all(np.diff(b.longitude) > 0)
    va = a.variables["2m_temperature"].isel(time=0)
    vb = b.variables["2m_temperature"].isel(time=0)
    va = (
        va.assign_coords(longitude=((va.longitude + 180) % 360) - 180)
        .sortby("longitude")
        .sortby("latitude")
    )
    np.testing.assert_array_equal(va.values, vb.sortby("latitude").values)


def test_errors_are_carbonsink_errors():
    assert issubclass(SourceUnreachableError, SourceError) and issubclass(
        SourceError, CarbonsinkError
    )
