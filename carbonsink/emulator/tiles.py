"""Tiles with halos on the sphere: padding across the date line and over the poles.

A tile's halo comes from its neighbours; at the edges of the global grid the neighbours are
across the date line (longitude wraps) and across the pole (the row beyond the last row is
the last row itself, half a circle away in longitude). With those halos, tiles predicted
independently reproduce a prediction of the whole globe exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


def pad_global(field: np.ndarray, halo: int) -> np.ndarray:
    """Pad the last two axes (lat ascending, lon) of a global field by ``halo`` cells.

    Latitude rows beyond a pole mirror the rows next to it, shifted by 180 deg of longitude;
    longitude wraps around.
    """
    if halo == 0:
        return field
    ny, nx = field.shape[-2:]
    if nx % 2 or halo > ny or halo > nx:
        raise ValueError("pad_global needs an even number of longitudes and halo <= grid size")
    south = np.roll(field[..., :halo, :][..., ::-1, :], nx // 2, axis=-1)
    north = np.roll(field[..., ny - halo :, :][..., ::-1, :], nx // 2, axis=-1)
    rows = np.concatenate([south, field, north], axis=-2)
    return np.concatenate([rows[..., -halo:], rows, rows[..., :halo]], axis=-1)


def tile_origins(shape: tuple[int, int], tile: tuple[int, int]) -> Iterator[tuple[int, int]]:
    """Top-left corners (row, col) of the tiles that cover a grid (edge tiles may be smaller)."""
    for i in range(0, shape[0], tile[0]):
        for j in range(0, shape[1], tile[1]):
            yield i, j


def crop_with_halo(padded: np.ndarray, i: int, j: int, h: int, w: int, halo: int) -> np.ndarray:
    """The ``h x w`` tile at (i, j) of the unpadded grid, with its halo, from ``padded``."""
    return padded[..., i : i + h + 2 * halo, j : j + w + 2 * halo]


def predict_global(
    predict: Callable[[np.ndarray], np.ndarray],
    inputs: np.ndarray,
    halo: int,
    tile: tuple[int, int],
    batch: int = 8,
) -> np.ndarray:
    """Predict a global field tile by tile.

    Parameters
    ----------
    predict
        ``[B, C, th + 2 halo, tw + 2 halo] -> [B, K, th, tw]``.
    inputs
        ``[C, lat, lon]`` normalised channels.
    halo
        The predictor's halo.
    tile
        Tile size (rows, cols); it must divide the grid.

    Returns
    -------
    numpy.ndarray
        ``[K, lat, lon]``.
    """
    ny, nx = inputs.shape[-2:]
    th, tw = tile
    if ny % th or nx % tw:
        raise ValueError(f"tile {tile} does not divide the grid {(ny, nx)}")
    padded = pad_global(inputs, halo)
    origins = list(tile_origins((ny, nx), tile))
    out: np.ndarray | None = None
    for k in range(0, len(origins), batch):
        group = origins[k : k + batch]
        x = np.stack([crop_with_halo(padded, i, j, th, tw, halo) for i, j in group])
        y = predict(x)
        if out is None:
            out = np.empty((y.shape[1], ny, nx), dtype=y.dtype)
        for (i, j), block in zip(group, y, strict=True):
            out[:, i : i + th, j : j + tw] = block
    assert out is not None
    return out
