"""Halos on the sphere and tile-by-tile prediction."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsink.emulator.tiles import pad_global, predict_global


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
@given(
    tiles=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    tile=st.tuples(st.integers(2, 5), st.integers(2, 5)),
    halo=st.integers(1, 2),
    seed=st.integers(0, 10_000),
)
def test_tiles_reassemble_the_global_prediction_exactly(tiles, tile, halo, seed):
    ny, nx = tiles[0] * tile[0], tiles[1] * tile[1] * 2  # an even number of longitudes
    x = np.random.default_rng(seed).normal(size=(2, ny, nx))
    whole = box_mean(pad_global(x, halo)[None], halo)[0]
    tiled = predict_global(lambda b: box_mean(b, halo), x, halo, (tile[0], tile[1] * 2), batch=3)
    np.testing.assert_allclose(tiled, whole, rtol=1e-12)


def test_identity_round_trip():
    x = np.random.default_rng(1).normal(size=(3, 8, 16))
    out = predict_global(lambda b: b[..., 2:-2, 2:-2], x, 2, (4, 8))
    np.testing.assert_array_equal(out, x)
