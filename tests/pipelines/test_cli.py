"""The command line: help, the commands end to end, and bad input as one-line errors."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from carbonsink.lake.lake import Lake
from pipelines.cli import main

pytestmark = pytest.mark.integration
SMALL_GRID = ["--grid", "10"]


def run_cli(args, capsys):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def cli_ok(args, capsys):
    code, out, err = run_cli(args, capsys)
    assert code == 0, f"exit {code}: {err}"
    return out


@pytest.fixture
def small(monkeypatch, dask_client):
    """Tiles that fit the 10 degree test grid, baseline inside the sample, shared cluster."""
    monkeypatch.setenv("CARBONSINK_GRID__TILE_LAT", "9")
    monkeypatch.setenv("CARBONSINK_GRID__TILE_LON", "18")
    monkeypatch.setenv("CARBONSINK_INGEST__BASELINE_START", "2015-01")
    monkeypatch.setenv("CARBONSINK_INGEST__BASELINE_END", "2015-12")
    monkeypatch.setenv("CARBONSINK_DASK__ADDRESS", dask_client.scheduler.address)


def test_help_for_newcomers():
    r = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0
    for cmd in ("run", "ingest", "sample-data"):
        assert cmd in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "ingest", "--help"], capture_output=True, text=True
    )
    assert (
        "CARBONSINK_SOURCE" in r.stdout and "--dask-address" in r.stdout and "Example" in r.stdout
    )


def test_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.startswith("carbonsink ")


def test_sample_data_then_ingest(tmp_path, capsys, small):
    store = tmp_path / "era5.zarr"
    out = cli_ok(["sample-data", "--out", str(store), "--start", "2015-01", "--end", "2015-12",
                  "--resolution", "5", "--step", "1MS", "--seed", "3"], capsys)  # fmt: skip
    assert f"sample data: {store.as_uri()}" in out
    out = cli_ok(["ingest", "--source", str(store), "--lake", str(tmp_path / "lake"),
                  "--start", "2015-01", "--end", "2015-12", *SMALL_GRID], capsys)  # fmt: skip
    assert "features: " in out and "climatology over 2015-01..2015-12" in out


@pytest.mark.integration
def test_run_chains_every_stage_and_prints_its_outputs(
    tmp_path, capsys, small, monkeypatch, ray_cluster
):
    """The whole chain on two 10 deg years: sample data to the report (real Dask, Ray, Serve)."""
    tiny_year = {
        "CARBONSINK_SAMPLE__RESOLUTION": "10",
        "CARBONSINK_SAMPLE__START": "2015-01",
        "CARBONSINK_SAMPLE__END": "2016-12",
        "CARBONSINK_GRID__RESOLUTION": "10",
        "CARBONSINK_INGEST__BASELINE_END": "2015-12",
        "CARBONSINK_LABELS__END": "2016-06",
        "CARBONSINK_EMULATOR__HOLDOUT_START": "2016-01",
        "CARBONSINK_EMULATOR__HOLDOUT_END": "2016-06",
        "CARBONSINK_EMULATOR__CROP": "8",
        "CARBONSINK_EMULATOR__CROPS_PER_MONTH": "4",
        "CARBONSINK_EMULATOR__EPOCHS": "1",
        "CARBONSINK_EMULATOR__HIDDEN": "8",
        "CARBONSINK_BUDGET__REFERENCE_START": "2015",
        "CARBONSINK_BUDGET__REFERENCE_END": "2015",
        "CARBONSINK_SERVE__HTTP_PORT": str(ray_cluster["http_port"]),
    }
    for k, v in tiny_year.items():
        monkeypatch.setenv(k, v)
    out = cli_ok(["run", "--out", str(tmp_path / "out")], capsys)
    lines = [line.split(":", 1) for line in out.strip().splitlines()]
    paths = {k: v.strip() for k, v in lines}
    assert Path(paths["sample data"]).exists()
    assert paths["features"].endswith("/out/lake/features")
    assert paths["sink map"].endswith("/out/lake/sinkmap")
    for key in ("budget", "regions", "report"):
        assert Path(paths[key].removeprefix("file://")).is_file(), key
    assert sum(k == "figure" for k, _ in lines) == 4
    budget = pd.read_csv(paths["budget"].removeprefix("file://"))
    assert list(budget["year"]) == [2015, 2016]
    # A second run reuses the sample data, the labels, the models and the mapped months.
    again = cli_ok(["run", "--out", str(tmp_path / "out")], capsys)
    assert "sink map:" in again


def _break(store, how):
    g = zarr.open_group(store, mode="r+", use_consolidated=False)
    if how == "missing variable":
        shutil.rmtree(Path(store) / "10m_v_component_of_wind")
    elif how == "unexpected units":
        g["total_precipitation"].attrs["units"] = "inches"
    elif how == "non-monotonic longitude":
        lon = g["longitude"][:]
        lon[[5, 6]] = lon[[6, 5]]
        g["longitude"][:] = lon
    elif how in ("time gap", "duplicate time"):
        t = g["time"][:]
        feb = (pd.Timestamp("2016-02-01") - pd.Timestamp("1900-01-01")) // pd.Timedelta(hours=1)
        j = int(np.searchsorted(t, feb))
        if how == "time gap":
            t[j:-1] = t[j + 1 :].copy()  # February 2016 disappears
        else:
            t[j] = t[j - 1]  # January 2016 twice
        g["time"][:] = t
    zarr.consolidate_metadata(store)


@pytest.mark.parametrize(
    "how,args,message",
    [
        ("missing variable", [], "lacks variable(s) 10m_v_component_of_wind"),
        ("unexpected units", [], "units 'inches' but carbonsink expects 'm'"),
        ("non-monotonic longitude", [], "longitude of"),
        ("time gap", [], "misses 1 time step"),
        ("duplicate time", [], "duplicate stamps"),
        (
            "window outside",
            ["--start", "2031-01", "--end", "2031-02"],
            "outside the valid time range",
        ),
        (
            "unreachable",
            ["--source", "s3://nowhere/era5.zarr", "--source-endpoint-url", "http://127.0.0.1:9"],
            "cannot open s3://nowhere/era5.zarr",
        ),
        ("missing path", ["--source", "/does/not/exist.zarr"], "cannot open"),
        ("bad grid", ["--grid", "0.7"], "grid.resolution"),
        ("bad month", ["--start", "2015-13"], "YYYY-MM"),
    ],
)
def test_bad_input_gives_one_line_and_leaves_the_lake(
    how, args, message, monthly_store, store_copy, tmp_path, capsys, small
):
    lake = tmp_path / "lake"
    # A lake that already holds a year, so "unchanged" is checked on a real store.
    cli_ok(
        [
            "ingest",
            "--source",
            monthly_store,
            "--lake",
            str(lake),
            "--start",
            "2015-01",
            "--end",
            "2015-12",
            *SMALL_GRID,
        ],
        capsys,
    )
    before = Lake(str(lake)).open_repo("features").lookup_branch("main")
    source = store_copy(monthly_store)
    _break(source, how)
    base = [
        "ingest",
        "--source",
        source,
        "--lake",
        str(lake),
        "--start",
        "2016-01",
        "--end",
        "2016-03",
        *SMALL_GRID,
    ]
    code, _, err = run_cli(base + args, capsys)
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    repo = Lake(str(lake)).open_repo("features")
    assert repo.lookup_branch("main") == before and repo.list_branches() == {"main"}


def test_not_a_lake(tmp_path, monthly_store, capsys, small):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"\xff\xd8")
    args = ["ingest", "--source", monthly_store, "--lake", str(other)]
    code, _, err = run_cli([*args, "--start", "2015-01", "--end", "2015-01", *SMALL_GRID], capsys)
    assert code == 2 and "is not a carbonsink lake" in err
    assert sorted(p.name for p in other.iterdir()) == ["cat.jpg"]


def test_usage_errors_are_one_line(capsys):
    code, _, err = run_cli(["ingest", "--grid", "abc"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--grid" in err and "--help" in err
    code, _, err = run_cli(["frobnicate"], capsys)
    assert code == 2 and "No such command" in err
