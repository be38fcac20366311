"""Tiles with halos on the sphere: padding across the date line and over the poles.

A tile's halo comes from its neighbours; at the edges of the global grid the neighbours are
across the date line (longitude wraps) and across the pole (the row beyond the last row is
the last row itself, half a circle away in longitude). With those halos, tiles predicted
independently reproduce a prediction of the whole globe exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: ``read(rows, cols) -> field[..., rows, cols]``: a contiguous block of a global field.
BlockReader = Callable[[slice, slice], np.ndarray]


@dataclass(frozen=True, order=True)
class TileKey:
    """What travels between engines: a tile of one member's map for one month.

    ``index`` counts tiles row-major from the south-west corner (:func:`tile_origins`).
    """

    member: str
    month: str
    index: int

    def __str__(self) -> str:
        return f"{self.member}/{self.month}/{self.index}"

    @classmethod
    def parse(cls, text: str) -> TileKey:
        """The inverse of ``str(key)``."""
        member, month, index = text.rsplit("/", 2)
        return cls(member, month, int(index))


def tile_keys(months: Iterable[Any], members: Sequence[str], tiles: Iterable[int]) -> list[TileKey]:
    """Keys of ``tiles`` of every member, month by month (neighbouring keys share reads)."""
    tiles = list(tiles)
    return [TileKey(m, str(month), i) for month in months for m in members for i in tiles]


def _tile_grid(shape: tuple[int, int], tile: tuple[int, int]) -> tuple[int, int]:
    """Rows of tiles and tiles per row; tiles must divide the grid."""
    (ny, nx), (th, tw) = shape, tile
    if ny % th or nx % tw:
        raise ValueError(f"tile {tile} does not divide the grid {shape}")
    return ny // th, nx // tw


def tile_origin(shape: tuple[int, int], tile: tuple[int, int], index: int) -> tuple[int, int]:
    """Top-left corner (row, col) of tile ``index``; tiles must divide the grid."""
    rows, per_row = _tile_grid(shape, tile)
    if not 0 <= index < rows * per_row:
        raise ValueError(f"tile index {index} is outside the {rows * per_row} tiles")
    return (index // per_row) * tile[0], (index % per_row) * tile[1]


def _segments(start: int, stop: int, n: int) -> list[tuple[int, int]]:
    """``range(start, stop)`` taken modulo ``n`` as contiguous ``[a, b)`` blocks, in order."""
    out = []
    k = start
    while k < stop:
        a = k % n
        b = min(n, a + (stop - k))
        out.append((a, b))
        k += b - a
    return out


def read_with_halo(
    read: BlockReader, shape: tuple[int, int], i: int, j: int, h: int, w: int, halo: int
) -> np.ndarray:
    """The ``h x w`` tile at (i, j) with its halo, reading only the blocks it needs.

    Equal to ``pad_global(field, halo)[..., i : i + h + 2 halo, j : j + w + 2 halo]`` (the
    same rules across the date line and the poles) without reading the whole field.
    """
    ny, nx = shape
    if nx % 2 or halo > ny:
        raise ValueError("read_with_halo needs an even number of longitudes and halo <= rows")
    top, bottom = i - halo, i + h + halo
    blocks = []
    # (source rows, whether mirrored, longitude shift) for the rows south of the grid, inside
    # it and north of it; rows past a pole are the rows next to it, half a circle away.
    parts = [
        (slice(0, -top), True, nx // 2) if top < 0 else None,
        (slice(max(top, 0), min(bottom, ny)), False, 0),
        (slice(2 * ny - bottom, ny), True, nx // 2) if bottom > ny else None,
    ]
    for part in parts:
        if part is None or part[0].stop <= part[0].start:
            continue
        rows, mirrored, shift = part
        cols = [
            read(rows, slice(a, b))
            for a, b in _segments(j - halo + shift, j + w + halo + shift, nx)
        ]
        block = np.concatenate(cols, axis=-1)
        blocks.append(block[..., ::-1, :] if mirrored else block)
    return np.concatenate(blocks, axis=-2)


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


def band_tiles(shape: tuple[int, int], tile: tuple[int, int], band: int, bands: int) -> range:
    """Tile indices of ``band`` when the grid's rows of tiles are cut into ``bands`` bands.

    Bands are contiguous runs of whole tile rows, south to north, as equal as the rows
    allow; together they hold every tile once. With more bands than rows some are empty.
    """
    rows, per_row = _tile_grid(shape, tile)
    if not 0 <= band < bands:
        raise ValueError(f"band {band} is outside the {bands} bands")
    return range(band * rows // bands * per_row, (band + 1) * rows // bands * per_row)
