"""Bad input, command by command: one line that names the problem and the fix, exit code 2,
and a lake that is exactly as it was (every store's tip, branches and tags, every file).
"""

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from carbonsink.lake.lake import Lake
from pipelines.cli import main
from tests import cds_files
from tests.helpers import lake_state
from tests.tiny_lake import TINY_ENV

pytestmark = pytest.mark.integration

MONTH_2016_02 = (2016 - 1900) * 12 + 1  # index of February 2016 in the sample's time axis


@dataclass
class Ctx:
    """What a case builds on: the sample source (copied when a case asks for it, to break
    it), the lake, a scratch folder."""

    original: str
    lake: Path
    tmp: Path
    _copy: Path | None = None

    @property
    def source(self) -> Path:
        if self._copy is None:
            self._copy = self.tmp / "source.zarr"
            shutil.copytree(self.original, self._copy)
        return self._copy


def _edit(store: Path, change: Callable[[zarr.Group], None]) -> None:
    change(zarr.open_group(str(store), mode="r+", use_consolidated=False))
    zarr.consolidate_metadata(str(store))


def ingest(ctx: Ctx, *extra: str, start: str = "2016-01", end: str = "2016-03") -> list[str]:
    return ["ingest", "--source", str(ctx.source), "--lake", str(ctx.lake),
            "--start", start, "--end", end, *extra]  # fmt: skip


def missing_variable(ctx: Ctx) -> list[str]:
    shutil.rmtree(ctx.source / "10m_v_component_of_wind")
    zarr.consolidate_metadata(str(ctx.source))
    return ingest(ctx)


def unexpected_units(ctx: Ctx) -> list[str]:
    _edit(ctx.source, lambda g: g["total_precipitation"].attrs.update(units="inches"))
    return ingest(ctx)


def nan_padded_times(ctx: Ctx) -> list[str]:
    """An ARCO-style store padded past its data, without the attributes that say so."""

    def change(g: zarr.Group) -> None:
        for key in ("valid_time_start", "valid_time_stop", "valid_time_stop_era5t"):
            g.attrs.pop(key, None)

    _edit(ctx.source, change)
    return ingest(ctx, start="2017-01", end="2017-02")


def _time(ctx: Ctx, change: Callable[[np.ndarray], None]) -> list[str]:
    def edit(g: zarr.Group) -> None:
        t = g["time"][:]
        change(t)
        g["time"][:] = t

    _edit(ctx.source, edit)
    return ingest(ctx)


def time_gap(ctx: Ctx) -> list[str]:
    def drop_february(t: np.ndarray) -> None:
        t[MONTH_2016_02:-1] = t[MONTH_2016_02 + 1 :].copy()

    return _time(ctx, drop_february)


def duplicate_time(ctx: Ctx) -> list[str]:
    def twice(t: np.ndarray) -> None:
        t[MONTH_2016_02] = t[MONTH_2016_02 - 1]

    return _time(ctx, twice)


def non_monotonic_longitude(ctx: Ctx) -> list[str]:
    def swap(g: zarr.Group) -> None:
        lon = g["longitude"][:]
        lon[[5, 6]] = lon[[6, 5]]
        g["longitude"][:] = lon

    _edit(ctx.source, swap)
    return ingest(ctx)


def unexpected_grid(ctx: Ctx) -> list[str]:
    return ingest(ctx, "--grid", "10")  # the lake is on the 4 degree grid


def corrupted_chunk(ctx: Ctx) -> list[str]:
    (ctx.source / "2m_temperature" / f"{MONTH_2016_02}.0.0").write_bytes(b"\x00garbage" * 64)
    return ingest(ctx)


def empty_store(ctx: Ctx) -> list[str]:
    empty = ctx.tmp / "empty.zarr"
    zarr.open_group(str(empty), mode="w", zarr_format=2)
    zarr.consolidate_metadata(str(empty))
    return ["ingest", "--source", str(empty), "--lake", str(ctx.lake),
            "--start", "2016-01", "--end", "2016-03"]  # fmt: skip


def non_gregorian_calendar(ctx: Ctx) -> list[str]:
    _edit(ctx.source, lambda g: g["time"].attrs.update(calendar="noleap"))
    return ingest(ctx)


def missing_credentials(ctx: Ctx) -> list[str]:
    return ["ingest", "--source", "s3://era5/era5.zarr", "--source-endpoint-url",
            os.environ["TEST_S3_ENDPOINT"], "--lake", str(ctx.lake),
            "--start", "2016-01", "--end", "2016-03"]  # fmt: skip


def invalid_settings_file(ctx: Ctx) -> list[str]:
    config = ctx.tmp / "settings.yaml"
    config.write_text("ingest:\n  min_valid_fraction: 2\n")
    return ["ingest", "--config", str(config), "--source", str(ctx.source),
            "--lake", str(ctx.lake), "--start", "2016-01", "--end", "2016-03"]  # fmt: skip


def unknown_setting(ctx: Ctx) -> list[str]:
    config = ctx.tmp / "settings.yaml"
    config.write_text("serve:\n  replicas: 3\n")
    return ["infer", "--config", str(config), "--lake", str(ctx.lake),
            "--start", "2016-01", "--end", "2016-01"]  # fmt: skip


def invalid_month(ctx: Ctx) -> list[str]:
    return ingest(ctx, start="2016-13")


def reversed_window(ctx: Ctx) -> list[str]:
    return ingest(ctx, start="2016-03", end="2016-01")


def window_in_the_future(ctx: Ctx) -> list[str]:
    return ingest(ctx, start="2031-01", end="2031-02")


def nrt_end_in_the_future(ctx: Ctx) -> list[str]:
    return ["nrt", "--source", str(ctx.source), "--lake", str(ctx.lake), "--end", "2031-01"]


def _checkpoint(ctx: Ctx, change: Callable[[dict], None]) -> None:
    """Rewrite the metadata of every published checkpoint (on the lake's models store)."""
    repo = Lake(str(ctx.lake)).open_repo("models")
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="r+")
    for variant, members in root.groups():
        for _, group in members.groups():
            meta = dict(group.attrs["metadata"])
            change(meta)
            group.attrs["metadata"] = meta
        del variant
    session.commit("a checkpoint from elsewhere")


def checkpoint_for_another_grid(ctx: Ctx) -> list[str]:
    _checkpoint(ctx, lambda m: m.update(grid_resolution=1.0))
    return ["infer", "--lake", str(ctx.lake), "--start", "2016-01", "--end", "2016-01"]


def checkpoint_for_other_drivers(ctx: Ctx) -> list[str]:
    _checkpoint(ctx, lambda m: m.update(channels=[*m["channels"], "snow_depth_anom"]))
    return ["nrt", "--source", str(ctx.source), "--lake", str(ctx.lake)]


def gcb_workbook_of_unknown_layout(ctx: Ctx) -> list[str]:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Budget"
    book.active.append(["Year", "Fossil", "Land"])
    path = ctx.tmp / "Global_Carbon_Budget_2026_v1.0.xlsx"
    book.save(path)
    return ["budget", "--lake", str(ctx.lake), "--gcb", str(path)]


def noaa_file_with_a_changed_header(ctx: Ctx) -> list[str]:
    path = ctx.tmp / "co2_mm_gl.csv"
    path.write_text("# NOAA\nyr,mon,decimal,avg,avg_unc,trend,trend_unc\n2026,1,2026.04,1,1,1,1\n")
    return ["budget", "--lake", str(ctx.lake), "--noaa-monthly", str(path)]


def emissions_without_years(ctx: Ctx) -> list[str]:
    path = ctx.tmp / "emissions.csv"
    path.write_text("EFOS,ELUC\n10.2,1.1\n")
    return ["budget", "--lake", str(ctx.lake), "--emissions", str(path)]


def lake_that_is_not_a_lake(ctx: Ctx) -> list[str]:
    other = ctx.tmp / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"\xff\xd8")
    return ["ingest", "--source", str(ctx.source), "--lake", str(other),
            "--start", "2016-01", "--end", "2016-03"]  # fmt: skip


def unreachable_source(ctx: Ctx) -> list[str]:
    return ingest(ctx, "--source", "s3://nowhere/era5.zarr", "--source-endpoint-url",
                  "http://127.0.0.1:9")  # fmt: skip


def export_over_an_existing_file(ctx: Ctx) -> list[str]:
    target = ctx.tmp / "sinks.nc"
    target.write_bytes(b"keep me")
    return ["export", "--lake", str(ctx.lake), "--start", "2016-01", "--end", "2016-01",
            "--out", str(target)]  # fmt: skip


def cds_files_of_no_product(ctx: Ctx) -> list[str]:
    """Stamps every five days: no ERA5 product lies like that."""
    times = pd.date_range("2016-01-01", "2016-03-31", freq="5D")
    lat, lon = cds_files.grid(4.0)
    t2m = np.full((times.size, lat.size, lon.size), 280.0)
    cds_files.new_netcdf(ctx.tmp / "cds", "daily", times, {"t2m": t2m}, resolution=4.0)
    return ingest(ctx, "--source", str(ctx.tmp / "cds" / "*.nc"))


def cds_era5_land(ctx: Ctx) -> list[str]:
    times = pd.date_range("2016-01-01", periods=3, freq="MS")
    lat, lon = cds_files.grid(4.0)
    t2m = np.full((times.size, lat.size, lon.size), 280.0)
    path = cds_files.grib(ctx.tmp / "land.grib", "monthly", times, {"t2m": t2m}, resolution=4.0,
                          marsclass="l5")  # fmt: skip
    return ingest(ctx, "--source", str(path))


def cds_radiation_in_the_wrong_units(ctx: Ctx) -> list[str]:
    """Monthly means whose radiation is 100x too large: refused in the Dask task that checks
    each month (the one-line rule holds for errors raised on workers too)."""
    cds_files.monthly_download(ctx.tmp / "cds", "2016-01", "2016-03", resolution=4.0, ssrd=3.6e8)
    return ingest(ctx, "--source", str(ctx.tmp / "cds" / "*.nc"))


def export_to_a_missing_folder(ctx: Ctx) -> list[str]:
    return ["export", "--lake", str(ctx.lake), "--start", "2016-01", "--end", "2016-01",
            "--out", str(ctx.tmp / "no" / "such" / "sinks.nc")]  # fmt: skip


CASES: list[tuple[Callable[[Ctx], list[str]], str]] = [
    (missing_variable, "lacks variable(s) 10m_v_component_of_wind"),
    (unexpected_units, "units 'inches' but carbonsink expects 'm'"),
    # Both months are padding: whichever of their tasks fails first is named.
    (nan_padded_times, "has missing values over 100.0% of the grid"),
    (time_gap, "misses 1 time step"),
    (duplicate_time, "duplicate stamps"),
    (non_monotonic_longitude, "longitude of"),
    (unexpected_grid, "grid"),
    (corrupted_chunk, "2m_temperature of"),
    (empty_store, "empty store"),
    (non_gregorian_calendar, "not on the proleptic Gregorian calendar"),
    (missing_credentials, "credentials"),
    (invalid_settings_file, "ingest.min_valid_fraction"),
    (unknown_setting, "serve.replicas"),
    (invalid_month, "YYYY-MM"),
    (reversed_window, "2016-03"),
    (window_in_the_future, "outside the valid time range"),
    (nrt_end_in_the_future, "past the source's newest complete month"),
    (checkpoint_for_another_grid, "trained on the 1.0 deg grid"),
    (checkpoint_for_other_drivers, "snow_depth"),
    (gcb_workbook_of_unknown_layout, "Global_Carbon_Budget_2026_v1.0.xlsx"),
    (noaa_file_with_a_changed_header, "header"),
    (emissions_without_years, "'year' column"),
    (lake_that_is_not_a_lake, "is not a carbonsink lake"),
    (unreachable_source, "cannot open s3://nowhere/era5.zarr"),
    (export_over_an_existing_file, "sinks.nc"),
    (cds_files_of_no_product, "cannot tell which ERA5 product"),
    (cds_era5_land, "holds ERA5-Land"),
    (cds_radiation_in_the_wrong_units, "outside the plausible 0..500; check the units"),
    (export_to_a_missing_folder, "of --out does not exist"),
]


#: Cases that alter the lake before the command runs (a checkpoint from elsewhere).
WRITES_THE_LAKE = {checkpoint_for_another_grid, checkpoint_for_other_drivers}


@pytest.fixture
def env(monkeypatch, dask_client, s3_server, ray_cluster):
    """The tiny lake's grid and windows, the shared cluster, an S3 server without keys."""
    for key, value in {
        **TINY_ENV,
        "CARBONSINK_DASK__ADDRESS": dask_client.scheduler.address,
        "CARBONSINK_SERVE__HTTP_PORT": str(ray_cluster["http_port"]),
        "TEST_S3_ENDPOINT": s3_server,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    yield
    # fsspec caches S3 file systems by their arguments; one made without credentials must
    # not serve later tests that have them.
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


def test_the_matrix_has_at_least_twenty_cases():
    assert len(CASES) >= 20 and len({f.__name__ for f, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("build", "message"), CASES, ids=[f.__name__ for f, _ in CASES])
def test_bad_input_is_one_line_and_leaves_the_lake(
    build, message, mapped_lake, monthly_store, tmp_path, capsys, env
):
    lake = mapped_lake
    if build in WRITES_THE_LAKE:  # those change the lake first: a copy of their own
        lake = tmp_path / "lake"
        shutil.copytree(mapped_lake, lake)
    ctx = Ctx(monthly_store, lake, tmp_path)
    argv = build(ctx)
    before = lake_state(lake)
    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    # Ray forwards its own processes' log lines (a raylet's disk warning, say) to stderr.
    lines = [line for line in err.splitlines() if line.strip() and "(raylet)" not in line]
    assert code == 2, err
    assert len(lines) == 1 and message in lines[0], err
    assert lake_state(lake) == before
    print(json.dumps({"case": build.__name__, "message": lines[0]}))
