"""Halos on the sphere and tile-by-tile prediction."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsink.emulator.tiles import (
    TileKey,
    band_tiles,
    pad_global,
    predict_global,
    read_with_halo,
    tile_origin,
)
from tests.strategies import seeds, tilings


def box_mean(x: np.ndarray, halo: int) -> np.ndarray:
    """A stencil with a (2 halo + 1)^2 footprint, valid part only: [B, C, H, W] -> same - 2h."""
    k = 2 * halo + 1
    h, w = x.shape[-2] - 2 * halo, x.shape[-1] - 2 * halo
    out = np.zeros((*x.shape[:-2], h, w))
    for di in range(k):
        for dj in range(k):
            out += x[..., di : di + h, dj : dj + w] * (1 + di + 3 * dj)
    return out


def test_halo_wraps_longitude_and_crosses_the_pole():
    field = np.arange(6 * 8, dtype=float).reshape(6, 8)
    p = pad_global(field, 1)
    assert p.shape == (8, 10)
    np.testing.assert_array_equal(p[1:-1, 0], field[:, -1])  # west halo = east edge
    np.testing.assert_array_equal(p[1:-1, -1], field[:, 0])
    # Beyond the south pole: the first row, half a circle away.
    np.testing.assert_array_equal(p[0, 1:-1], np.roll(field[0], 4))
    np.testing.assert_array_equal(p[-1, 1:-1], np.roll(field[-1], 4))


@settings(max_examples=25, deadline=None)
@given(tiling=tilings(), seed=seeds())
def test_tiles_reassemble_the_global_prediction_exactly(tiling, seed):
    tiles, tile, halo = tiling
    ny, nx = tiles[0] * tile[0], tiles[1] * tile[1] * 2  # an even number of longitudes
    x = np.random.default_rng(seed).normal(size=(2, ny, nx))
    whole = box_mean(pad_global(x, halo)[None], halo)[0]
    tiled = predict_global(lambda b: box_mean(b, halo), x, halo, (tile[0], tile[1] * 2), batch=3)
    np.testing.assert_allclose(tiled, whole, rtol=1e-12)


def test_identity_round_trip():
    x = np.random.default_rng(1).normal(size=(3, 8, 16))
    out = predict_global(lambda b: b[..., 2:-2, 2:-2], x, 2, (4, 8))
    np.testing.assert_array_equal(out, x)


@settings(max_examples=60, deadline=None)
@given(
    ny=st.integers(2, 12),
    half_nx=st.integers(1, 10),
    halo=st.integers(0, 3),
    data=st.data(),
)
def test_read_with_halo_equals_padding_the_whole_field(ny, half_nx, halo, data):
    """Reading a tile's blocks reproduces the padded global field (date line and poles)."""
    nx = 2 * half_nx
    halo = min(halo, ny, nx)  # pad_global's own limits
    field = np.arange(3 * ny * nx, dtype=float).reshape(3, ny, nx)
    h = data.draw(st.integers(1, ny))
    w = data.draw(st.integers(1, nx))
    i = data.draw(st.integers(0, ny - h))
    j = data.draw(st.integers(0, nx - w))
    reads = []

    def read(rows, cols):
        reads.append((rows, cols))
        return field[..., rows, cols]

    got = read_with_halo(read, (ny, nx), i, j, h, w, halo)
    want = pad_global(field, halo)[..., i : i + h + 2 * halo, j : j + w + 2 * halo]
    np.testing.assert_array_equal(got, want)
    # Only what the tile needs is read: never more cells than the padded tile holds.
    cells = sum((r.stop - r.start) * (c.stop - c.start) for r, c in reads)
    assert cells == (h + 2 * halo) * (w + 2 * halo)


def test_tile_keys_and_origins():
    key = TileKey("ref-dry", "2021-06", 7)
    assert TileKey.parse(str(key)) == key
    assert tile_origin((8, 12), (4, 4), 0) == (0, 0)
    assert tile_origin((8, 12), (4, 4), 5) == (4, 8)
    with pytest.raises(ValueError, match="outside the 6 tiles"):
        tile_origin((8, 12), (4, 4), 6)
    with pytest.raises(ValueError, match="does not divide"):
        tile_origin((8, 12), (3, 5), 0)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 12), per_row=st.integers(1, 6), th=st.integers(1, 4),
    tw=st.integers(1, 4), bands=st.integers(1, 16),
)  # fmt: skip
def test_tile_bands_hold_every_tile_once_in_whole_rows(rows, per_row, th, tw, bands):
    shape, tile = (rows * th, per_row * tw), (th, tw)
    parts = [band_tiles(shape, tile, b, bands) for b in range(bands)]
    flat = [i for p in parts for i in p]
    assert flat == list(range(rows * per_row))  # every tile once, bands south to north
    sizes = [len(p) // per_row for p in parts]
    assert all(len(p) % per_row == 0 for p in parts)  # whole rows of tiles
    assert max(sizes) - min(sizes) <= 1  # as equal as the rows allow
    # A band's tiles start on its first row: tile_origin agrees on the band's latitude.
    for p in parts:
        if len(p):
            assert tile_origin(shape, tile, p.start)[1] == 0


def test_tile_bands_refuse_a_band_outside_the_plan():
    with pytest.raises(ValueError, match="outside the 3 bands"):
        band_tiles((8, 12), (4, 4), 3, 3)
