"""The command line: help, the commands end to end, and bad input as one-line errors."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from carbonsink.lake.lake import Lake
from pipelines.cli import main

pytestmark = pytest.mark.integration
SMALL_GRID = ["--grid", "10"]
STORES = ("features", "sinkmap")


def run_cli(args, capsys):
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    # Ray forwards its own processes' log lines (a raylet's disk warning, say) to stderr.
    err = "".join(line for line in out.err.splitlines(True) if "(raylet)" not in line)
    return code, out.out, err


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


def test_help_shows_examples_as_written(capsys):
    def helped(*args):
        code, out, _ = run_cli([*args, "--help"], capsys)
        assert code == 0
        return out

    top = helped()
    # Examples keep their lines (click's paragraph re-wrapping would join them).
    assert "    carbonsink run --out output\n" in top
    assert "    carbonsink ingest --source 'era5/*.nc' --lake lake --start 2015-01 --end" in top
    assert "143 terminated (SIGTERM)" in " ".join(top.split())
    serve = " ".join(helped("serve").split())
    assert "http://127.0.0.1:8000 by default" in serve and "Ctrl-C or SIGTERM" in serve
    assert "any divisor of 180" in " ".join(helped("ingest").split())
    ingest = helped("ingest")
    assert (
        "--source gs://gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3 \\\n"
        in ingest
    )


def test_settings_in_the_environment_are_checked(capsys, monkeypatch, tmp_path):
    for value, said in [
        ("abc", "environment variable CARBONSINK_GRID is not a JSON object"),  # not JSON
        ("4", "fix the environment variable CARBONSINK_GRID"),  # JSON, not a section
    ]:
        monkeypatch.setenv("CARBONSINK_GRID", value)
        code, _, err = run_cli(["status", "--lake", str(tmp_path)], capsys)
        assert code == 2 and err.count("\n") == 1, err
        assert said in err and "config file" not in err, err
    monkeypatch.delenv("CARBONSINK_GRID")
    monkeypatch.setenv("CARBONSINK_GRID__RESOLUTION", "7")
    code, _, err = run_cli(["status", "--lake", str(tmp_path)], capsys)
    assert code == 2 and "fix the environment variable CARBONSINK_GRID__RESOLUTION" in err, err
    monkeypatch.delenv("CARBONSINK_GRID__RESOLUTION")
    monkeypatch.setenv("CARBONSINK_SERVE__REPLICAS", "3")  # the setting is num_replicas
    _, _, err = run_cli(["status", "--lake", str(tmp_path)], capsys)
    assert "warning: CARBONSINK_SERVE__REPLICAS is not a carbonsink setting" in err


def test_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.startswith("carbonsink ")


def test_sample_data_takes_its_window_from_the_sample_section(tmp_path, capsys, small, monkeypatch):
    # CARBONSINK_START is the window of the commands that read a source, not the sample's.
    monkeypatch.setenv("CARBONSINK_START", "1999-01")
    monkeypatch.setenv("CARBONSINK_SAMPLE__START", "2015-03")
    monkeypatch.setenv("CARBONSINK_SAMPLE__END", "2015-04")
    out = cli_ok(["sample-data", "--out", str(tmp_path / "s.zarr"), "--resolution", "10"], capsys)
    assert "(2015-03..2015-04, step 1MS, 10.0 deg)" in out
    out = cli_ok(["sample-data", "--out", str(tmp_path / "s.zarr"), "--resolution", "10",
                  "--start", "2015-05", "--end", "2015-05", "--overwrite"], capsys)  # fmt: skip
    assert "(2015-05..2015-05, step 1MS, 10.0 deg)" in out


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
        # Two tiles a month (each with the other as its halo's neighbour across the
        # dateline): the chain, not the tiling, is under test here.
        "CARBONSINK_GRID__TILE_LAT": "18",
        "CARBONSINK_GRID__TILE_LON": "18",
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
    # A second run reuses the sample data, the ingested months, the labels, the models and
    # the mapped months: neither store gets a commit (re-ingesting would only grow the lake).
    repos = {name: Lake(str(tmp_path / "out" / "lake")).open_repo(name) for name in STORES}
    tips = {name: repo.lookup_branch("main") for name, repo in repos.items()}
    code, again, err = run_cli(["run", "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    assert "sink map:" in again and "the features already hold 2015-01..2016-12" in err
    assert {name: repo.lookup_branch("main") for name, repo in repos.items()} == tips


def test_usage_errors_are_one_line(capsys):
    code, _, err = run_cli(["ingest", "--grid", "abc"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--grid" in err and "--help" in err
    code, _, err = run_cli(["frobnicate"], capsys)
    assert code == 2 and "No such command" in err


def test_nrt_on_a_lake_without_emulators_is_one_line(monthly_store, tmp_path, capsys):
    code, _, err = run_cli(
        ["nrt", "--source", monthly_store, "--lake", str(tmp_path / "new")], capsys
    )
    assert code == 2 and err.count("\n") == 1 and "not a carbonsink lake yet" in err
    assert not (tmp_path / "new").exists()
