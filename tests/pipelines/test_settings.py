"""The composed settings (pipelines/settings.py) and the engines' sections (cluster/settings.py)."""

import pandas as pd
import pytest

from carbonsink.errors import ConfigError
from pipelines.settings import load_settings


def test_defaults():
    s = load_settings()
    assert s.grid.resolution == 0.25 and s.dask.address is None
    assert str(s.ingest.baseline) == "2015-01..2022-12"


def test_precedence(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "grid:\n  resolution: 1.0\n  tile_lat: 90\ndask:\n  n_workers: 3\nlake: from-yaml\n"
    )
    s = load_settings(cfg)
    assert s.grid.resolution == 1.0 and s.grid.tile_lat == 90 and s.lake == "from-yaml"
    monkeypatch.setenv("CARBONSINK_GRID__RESOLUTION", "0.5")
    monkeypatch.setenv("CARBONSINK_LAKE", "from-env")
    s = load_settings(cfg)
    assert (
        s.grid.resolution == 0.5
        and s.grid.tile_lat == 90
        and s.dask.n_workers == 3
        and s.lake == "from-env"
    )
    s = load_settings(cfg, grid={"resolution": 0.25}, lake=None)
    assert s.grid.resolution == 0.25 and s.lake == "from-env" and s.grid.tile_lat == 90
    monkeypatch.setenv("CARBONSINK_CONFIG", str(cfg))
    assert load_settings().dask.n_workers == 3


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"grid": {"resolution": 0.3 + 0.4}}, "grid.resolution"),
        ({"ingest": {"min_valid_fraction": 2}}, "ingest.min_valid_fraction"),
        ({"ingest": {"drivers": ["t2m", "nope"]}}, "unknown driver"),
        ({"ingest": {"baseline_start": "2015-13"}}, "YYYY-MM"),
        ({"sample": {"step": "2h"}}, "sample.step"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_invalid_values_give_one_line(overrides, match):
    with pytest.raises(ConfigError, match=match) as e:
        load_settings(**overrides)
    assert "\n" not in str(e.value) and "fix it" in str(e.value)


def test_short_baseline_and_missing_file(tmp_path):
    s = load_settings(ingest={"baseline_start": "2015-01", "baseline_end": "2015-06"})
    with pytest.raises(ConfigError, match="needs every calendar month"):
        _ = s.ingest.baseline
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [unclosed\n")
    with pytest.raises(ConfigError, match="fix the config file"):
        load_settings(bad)


def test_a_window_change_is_validated_and_leaves_the_original():
    s = load_settings(None, start="2015-01", end="2016-12")
    sub = s.with_window(pd.Period("2016-03", "M"), "2016-05")
    assert (sub.start, sub.end) == ("2016-03", "2016-05") and len(sub.window()) == 3
    assert (s.start, s.end) == ("2015-01", "2016-12")
    with pytest.raises(ConfigError, match="YYYY-MM"):
        s.with_window("2016-3", "2016-05")
    with pytest.raises(ConfigError, match="before start month"):
        s.with_window("2016-05", "2016-03")
