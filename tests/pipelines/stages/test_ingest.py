"""The ingest on a real Dask LocalCluster, into a real Icechunk lake."""

import datetime as dt
import math
from pathlib import Path

import icechunk
import numpy as np
import pytest
import xarray as xr
import zarr

from carbonsink.drivers import DRIVERS
from carbonsink.errors import LakeError, SourceError
from carbonsink.grid import EARTH_RADIUS_M, ModelGrid
from carbonsink.lake.features_store import (
    SOURCES_ATTR,
    data_origin,
    open_features,
    read_attrs,
    read_fields,
    read_layout,
)
from carbonsink.lake.lake import Lake
from carbonsink.regrid import ConservativeRegridder
from carbonsink.sources import ArcoEra5Source
from carbonsink.timeutil import MonthWindow
from pipelines.lake.compact import run_compact
from pipelines.settings import load_settings
from pipelines.stages.ingest import months_to_ingest, run_ingest
from tests import cds_files

pytestmark = pytest.mark.integration
# One tile per chunk here, so that every field spans several chunks.
GRID = {"resolution": 10.0, "tile_lat": 9, "tile_lon": 18, "chunk_tiles": 1}
BASELINE = {"baseline_start": "2015-01", "baseline_end": "2015-12"}


def settings(source, lake, start, end, **kw):
    return load_settings(
        None, source=source, lake=str(lake), start=start, end=end, grid=GRID, ingest=BASELINE, **kw
    )


def main_snapshot(lake) -> str:
    return Lake(str(lake)).open_repo("features").lookup_branch("main")


def chunk_bytes(lake, month_index: int) -> dict[str, bytes]:
    """Raw stored bytes of every chunk of one month (drivers and anomalies)."""
    repo = Lake(str(lake)).open_repo("features")
    session = repo.readonly_session("main")
    layout = read_layout(session.store)
    out = {}
    for name in layout.drivers:
        for var in (name, f"{name}_anom"):
            arr = zarr.open_array(session.store, path=var, mode="r")
            for i in range(arr.cdata_shape[1]):
                for j in range(arr.cdata_shape[2]):
                    key = f"{var}/c/{month_index}/{i}/{j}"
                    buf = zarr.core.sync.sync(
                        session.store.get(
                            key, prototype=zarr.core.buffer.default_buffer_prototype()
                        )
                    )
                    out[key] = buf.to_bytes()
    return out


@pytest.fixture(scope="module")
def full_lake(dask_client, monthly_store, tmp_path_factory):
    """Two years ingested in one run (the baseline completes inside it)."""
    lake = tmp_path_factory.mktemp("lakes") / "full"
    report = run_ingest(settings(monthly_store, lake, "2015-01", "2016-12"), dask_client)
    return lake, report


def test_end_to_end_values_and_metadata(full_lake, monthly_store):
    lake, report = full_lake
    assert len(report.months) == 24 and report.climatology == "2015-01..2015-12"
    assert report.anomaly_months == 24
    assert [str(m) for m in report.era5t_months] == ["2016-11", "2016-12"]
    ds = open_features(Lake(str(lake)).open_repo("features").readonly_session("main"))
    assert ds.sizes == {"time": 24, "lat": 18, "lon": 36, "month": 12, "bnds": 2}
    assert ds["t2m"].encoding["chunks"] == (1, 9, 18)  # one month x one tile per chunk
    # Values: the store's month equals the source's monthly field, regridded.
    src = ArcoEra5Source(monthly_store).select(
        ["2m_temperature"], MonthWindow.parse("2016-03", "2016-03")
    )
    r = ConservativeRegridder.from_points(
        src.latitude, src.longitude, ModelGrid(10.0), min_valid_fraction=0.01
    )
    expected = r.apply(src.variables["2m_temperature"].isel(time=0).values)
    np.testing.assert_allclose(ds["t2m"].sel(time="2016-03").values[0], expected, rtol=1e-6)
    # Climatology over a one-year baseline is that year; anomalies are differences.
    np.testing.assert_allclose(
        ds["t2m_clim"].sel(month=3).values, ds["t2m"].sel(time="2015-03").values[0]
    )
    np.testing.assert_allclose(ds["t2m_anom"].sel(time="2015-03").values, 0.0, atol=1e-4)
    diff = ds["t2m"].sel(time="2016-03").values - ds["t2m"].sel(time="2015-03").values
    np.testing.assert_allclose(ds["t2m_anom"].sel(time="2016-03").values, diff, atol=1e-4)
    # CF metadata, bounds and areas.
    assert (
        ds["pr"].attrs["standard_name"] == "precipitation_flux"
        and ds["pr"].attrs["units"] == "kg m-2 s-1"
    )
    assert ds["lat"].attrs["bounds"] == "lat_bounds" and ds["time"].attrs["standard_name"] == "time"
    assert math.isclose(
        float(ds["cell_area"].sum()), 4 * math.pi * EARTH_RADIUS_M**2, rel_tol=1e-10
    )
    assert (
        0.25 < float((ds["land_fraction"] * ds["cell_area"]).sum() / ds["cell_area"].sum()) < 0.33
    )
    # Domains: SST over the ocean only, soil water over land only, t2m everywhere.
    month = ds.sel(time="2016-07")
    assert np.isfinite(month["t2m"]).all()
    # (A cell that is nearly all land can still overlap a sliver of a sea point and keep
    # an SST value: min_valid_fraction is 1 % by default.)
    land = ds["land_fraction"].values
    assert np.isnan(month["sst"].values[0][land > 0.99]).mean() > 0.8
    assert np.isnan(month["swvl1"].values[0][land < 0.01]).mean() > 0.8
    assert np.isfinite(month["sst"].values[0][land < 0.01]).all()
    for name in DRIVERS:
        assert np.isfinite(month[name].values).any(), name


def test_reingest_rewrites_identical_bytes_and_leaves_other_months(
    full_lake, dask_client, monthly_store, tmp_path
):
    import shutil

    lake = tmp_path / "lake"
    shutil.copytree(full_lake[0], lake)
    layout = read_layout(Lake(str(lake)).open_repo("features").readonly_session("main").store)
    june = layout.month_index(MonthWindow.parse("2016-06", "2016-06").start)
    before = chunk_bytes(lake, june)
    first = main_snapshot(lake)
    run_ingest(settings(monthly_store, lake, "2016-06", "2016-06"), dask_client)
    second = main_snapshot(lake)
    assert second != first
    assert chunk_bytes(lake, june) == before  # byte-identical rewrite
    repo = Lake(str(lake)).open_repo("features")
    changed = repo.diff(from_snapshot_id=first, to_snapshot_id=second).updated_chunks
    touched = {
        c[0]
        for path, chunks in changed.items()
        if path.lstrip("/") in layout.drivers
        for c in chunks
    }
    assert touched == {june}  # no other month of any driver was written


def test_months_to_ingest_are_those_an_ingest_would_change(
    full_lake, dask_client, monthly_store, store_copy, tmp_path
):
    lake, _ = full_lake
    window = MonthWindow.parse("2015-01", "2016-12").months
    # Everything current: the two ERA5T months (2016-11, 2016-12) are still ERA5T at source.
    assert months_to_ingest(settings(monthly_store, lake, "2015-01", "2016-12")) == []
    assert months_to_ingest(settings(monthly_store, tmp_path / "none", "2016-01", "2016-03")) == [
        *MonthWindow.parse("2016-01", "2016-03").months
    ]
    # The same data under another URL: a different source, so every month.
    source = store_copy(monthly_store)
    assert months_to_ingest(settings(source, lake, "2015-01", "2016-12")) == [*window]
    # Ingested from that source; its ERA5T months then become final: only those two.
    other = tmp_path / "lake"
    run_ingest(settings(source, other, "2016-09", "2016-12"), dask_client)
    assert months_to_ingest(settings(source, other, "2016-09", "2016-12")) == []
    store = Lake(str(other)).open_repo("features").readonly_session("main").store
    recorded = read_attrs(store)[SOURCES_ATTR]
    assert sorted(recorded) == ["2016-09", "2016-10", "2016-11", "2016-12"]
    assert set(recorded.values()) == {ArcoEra5Source(source).url}
    # The record outlives the history: compacted to the tip, nothing needs ingesting.
    run_compact(Lake(str(other)), 0, grace=dt.timedelta(0))
    assert len(list(Lake(str(other)).open_repo("features").ancestry(branch="main"))) <= 2
    assert months_to_ingest(settings(source, other, "2016-09", "2016-12")) == []
    zarr.open_group(source, mode="r+").attrs["valid_time_stop"] = "2016-12-31"
    zarr.consolidate_metadata(source)
    assert months_to_ingest(settings(source, other, "2016-09", "2016-12")) == [
        *MonthWindow.parse("2016-11", "2016-12").months
    ]


def test_failed_ingest_publishes_nothing(
    full_lake, dask_client, monthly_store, store_copy, tmp_path
):
    import shutil

    lake = tmp_path / "lake"
    shutil.copytree(full_lake[0], lake)
    broken = store_copy(monthly_store)
    ds = ArcoEra5Source(broken).dataset
    i = int(np.searchsorted(ds["time"].values, np.datetime64("2016-02-01")))
    g = zarr.open_group(broken, mode="r+", use_consolidated=False)
    g["2m_temperature"][i, 5:9, :] = np.nan  # corrupt part of February 2016
    before = main_snapshot(lake)
    with pytest.raises(SourceError, match=r"t2m for 2016-02 has missing values"):
        run_ingest(settings(broken, lake, "2016-01", "2016-03"), dask_client)
    repo = Lake(str(lake)).open_repo("features")
    assert main_snapshot(lake) == before
    assert repo.list_branches() == {"main"}  # the run's branch is gone too


def test_failed_first_ingest_leaves_no_lake(dask_client, monthly_store, store_copy, tmp_path):
    broken = store_copy(monthly_store)
    g = zarr.open_group(broken, mode="r+", use_consolidated=False)
    g["2m_temperature"].attrs["units"] = "degF"
    zarr.consolidate_metadata(broken)
    with pytest.raises(SourceError, match="units 'degF'"):
        run_ingest(settings(broken, tmp_path / "new-lake", "2015-01", "2015-02"), dask_client)
    assert not (tmp_path / "new-lake").exists()


def test_climatology_waits_for_the_baseline(dask_client, monthly_store, tmp_path):
    lake = tmp_path / "lake"
    first = run_ingest(settings(monthly_store, lake, "2015-01", "2015-06"), dask_client)
    assert first.climatology is None and "wait for the climatology baseline" in first.notes[0]
    ds = open_features(Lake(str(lake)).open_repo("features").readonly_session("main"))
    assert np.isnan(ds["t2m_anom"].values).all()
    second = run_ingest(settings(monthly_store, lake, "2015-07", "2015-12"), dask_client)
    assert second.climatology == "2015-01..2015-12" and second.anomaly_months == 12
    ds = open_features(Lake(str(lake)).open_repo("features").readonly_session("main"))
    assert np.isfinite(ds["t2m_anom"].values).all() and ds.sizes["time"] == 12


def test_lake_mismatches_are_refused(full_lake, dask_client, monthly_store):
    lake = full_lake[0]
    before = main_snapshot(lake)
    s = settings(monthly_store, lake, "2016-01", "2016-01")
    with pytest.raises(LakeError, match=r"10.0 deg grid, not 5.0 deg"):
        run_ingest(
            s.model_copy(
                update={
                    "grid": s.grid.model_copy(
                        update={"resolution": 5.0, "tile_lat": 36, "tile_lon": 72}
                    )
                }
            ),
            dask_client,
        )
    other_baseline = {"baseline_start": "2016-01", "baseline_end": "2016-12"}
    other = s.model_copy(update={"ingest": s.ingest.model_copy(update=other_baseline)})
    with pytest.raises(LakeError, match=r"climatology is over 2015-01..2015-12"):
        run_ingest(other, dask_client)
    assert main_snapshot(lake) == before


def test_ingest_from_s3_into_an_s3_lake(dask_client, monthly_store, s3_server, s3_bucket):
    """The source on a real S3 API server on 127.0.0.1, the lake in the same bucket."""
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server})
    fs.put(str(Path(monthly_store)) + "/", f"{s3_bucket}/era5.zarr", recursive=True)
    storage = {"endpoint_url": s3_server}
    s = load_settings(
        None,
        source=f"s3://{s3_bucket}/era5.zarr",
        lake=f"s3://{s3_bucket}/lake",
        start="2015-01",
        end="2015-12",
        grid=GRID,
        ingest=BASELINE,
        source_storage=storage,
        lake_storage=storage,
    )
    report = run_ingest(s, dask_client)
    assert (
        report.store == f"s3://{s3_bucket}/lake/features"
        and report.climatology == "2015-01..2015-12"
    )
    repo = icechunk.Repository.open(Lake(s.lake, s.lake_storage).icechunk_storage("features"))
    ds = open_features(repo.readonly_session("main"))
    assert ds.sizes["time"] == 12 and np.isfinite(ds["t2m"].values).all()
    assert fs.exists(f"{s3_bucket}/lake/carbonsink-lake.json")
    local = xr.open_zarr(monthly_store, consolidated=True, chunks=None)
    assert float(ds["t2m"].mean()) == pytest.approx(
        float(local["2m_temperature"].sel(time=slice("2015-01", "2015-12")).mean()), rel=0.02
    )


def test_a_cds_monthly_means_download_becomes_the_right_drivers(dask_client, tmp_path):
    """The first-day case: a new-CDS monthly-means download (valid_time, expver, number;
    1 deg, 3 months) ingested at 10 deg. Its precipitation is 3.1 mm a day, its radiation
    1.5e7 J m-2 a day: the lake must hold 3.1 mm a day and 173.6 W m-2, not 24 times that."""
    cds_files.monthly_download(tmp_path / "cds", "2024-01", "2024-03", resolution=1.0)
    s = settings(str(tmp_path / "cds" / "*.nc"), tmp_path / "lake", "2024-01", "2024-03")
    report = run_ingest(s, dask_client)
    assert [str(m) for m in report.months] == ["2024-01", "2024-02", "2024-03"]
    store = Lake(str(tmp_path / "lake")).open_repo("features").readonly_session("main").store
    layout = read_layout(store)
    for month in report.months:
        f = read_fields(store, ["pr", "rsds", "t2m", "u10"], layout.month_index(month))
        np.testing.assert_allclose(f["pr"] * 86400, 3.1, rtol=1e-6)  # kg m-2 a day = mm a day
        np.testing.assert_allclose(f["rsds"], 1.5e7 / 86400, rtol=1e-6)
        np.testing.assert_allclose(f["t2m"], 285.0, rtol=1e-6)
        np.testing.assert_allclose(f["u10"], 3.0, rtol=1e-6)
    origin = data_origin(store, report.months)
    assert not origin.synthetic
    assert origin.label.startswith("ERA5 monthly averaged reanalysis (reanalysis-era5-single-")
