import numpy as np
import pytest

from carbonsink import landmask
from carbonsink.grid import ModelGrid, point_grid_bounds


def _at(grid, frac, lat, lon):
    return frac[np.argmin(np.abs(grid.lat - lat)), np.argmin(np.abs(grid.lon - lon))]


def test_land_share_and_known_places():
    g = ModelGrid(1.0)
    f = landmask.land_fraction(g.lat_bounds, g.lon_bounds)
    share = (f * g.cell_area).sum() / g.cell_area.sum()
    assert 0.28 < share < 0.30  # land and lakes cover ~29 % of the Earth
    assert _at(g, f, 20.5, 10.5) == 1.0  # Sahara
    assert _at(g, f, -80.5, 0.5) == 1.0  # Antarctica
    assert _at(g, f, 0.5, -150.5) == 0.0  # central Pacific
    assert 0.0 < _at(g, f, 51.5, 1.5) < 1.0  # the Strait of Dover: a coast
    assert f.dtype == np.float32 and f.min() >= 0 and f.max() <= 1


def test_point_grid_and_orientation():
    lat = np.linspace(90, -90, 61)
    lon = np.arange(120) * 3.0
    f = landmask.land_fraction(point_grid_bounds(lat, clip=(-90, 90)), point_grid_bounds(lon))
    assert f.shape == (61, 120)
    assert f[-1].min() == 1.0 and f[0].max() == 0.0  # south pole: Antarctica; north: ocean


def test_counts_are_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("CARBONSINK_CACHE_DIR", str(tmp_path))
    landmask.coarse_counts.cache_clear()
    try:
        a = landmask.coarse_counts()
        files = list(tmp_path.glob("global-land-mask-*-counts-40.npz"))
        assert len(files) == 1
        landmask.coarse_counts.cache_clear()
        calls = []
        monkeypatch.setattr(landmask, "counts_from_package", lambda: calls.append(1))
        b = landmask.coarse_counts()
        assert not calls and np.array_equal(a, b)  # the second read came from the cache
    finally:
        landmask.coarse_counts.cache_clear()


@pytest.mark.parametrize("res", [0.25, 5.0])
def test_model_grids(res):
    g = ModelGrid(res)
    assert landmask.land_fraction(g.lat_bounds, g.lon_bounds).shape == g.shape
