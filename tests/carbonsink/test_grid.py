import math

import numpy as np
import pytest

from carbonsink.errors import ConfigError
from carbonsink.grid import EARTH_RADIUS_M, ModelGrid, point_grid_bounds


@pytest.mark.parametrize("res", [0.25, 0.5, 1.0, 2.0, 5.0])
def test_cell_areas_sum_to_sphere(res):
    g = ModelGrid(res)
    total = math.fsum(g.cell_area.ravel())
    sphere = 4 * math.pi * EARTH_RADIUS_M**2
    assert abs(total - sphere) / sphere < 1e-10


def test_default_grid_matches_design():
    g = ModelGrid()
    assert g.shape == (720, 1440)
    assert g.lat[0] == pytest.approx(-89.875) and g.lat[-1] == pytest.approx(89.875)
    assert g.lon[0] == pytest.approx(-179.875) and g.lon[-1] == pytest.approx(179.875)
    assert np.all(np.diff(g.lat) > 0)
    np.testing.assert_allclose(g.lat_bounds[1:, 0], g.lat_bounds[:-1, 1])
    assert g.lat_bounds[0, 0] == -90 and g.lat_bounds[-1, 1] == 90


def test_coords_dataset_is_cf():
    ds = ModelGrid(1.0).coords()
    assert ds["lat"].attrs["bounds"] == "lat_bounds"
    assert ds["lon"].attrs["units"] == "degrees_east"
    assert ds["cell_area"].attrs["units"] == "m2"


@pytest.mark.parametrize("bad", [0.7, 0.0, -1.0, 7.0, 200.0])
def test_bad_resolution_is_refused_with_fix(bad):
    with pytest.raises(ConfigError, match=r"0.25, 0.5 or 1"):
        ModelGrid(bad)


def test_tiling_clamps_and_checks():
    t = ModelGrid(0.25).tiling(180, 360)
    assert (t.nlat, t.nlon, t.chunk_lat, t.chunk_lon) == (180, 360, 360, 720)  # 2 x 2 tiles
    t = ModelGrid(5.0).tiling(180, 360)
    assert (t.nlat, t.nlon, t.chunk_lat, t.chunk_lon) == (36, 72, 36, 72)  # clamped, one tile
    t = ModelGrid(1.0).tiling(60, 120, tiles_per_chunk=2)
    assert (t.chunk_lat, t.chunk_lon) == (60, 120)  # 2 tiles divide neither 180 nor 360
    with pytest.raises(ConfigError, match="does not divide"):
        ModelGrid(0.25).tiling(100, 360)


def test_point_grid_bounds_gives_half_polar_cells():
    lat = np.linspace(90, -90, 721)
    b = point_grid_bounds(lat, clip=(-90, 90))
    assert b[0].tolist() == [89.875, 90.0]
    assert b[-1].tolist() == [-90.0, -89.875]
    assert b[360].tolist() == [-0.125, 0.125]
    assert np.all(b[:, 0] < b[:, 1])
