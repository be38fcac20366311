"""Land fraction of grid cells from the ``global-land-mask`` package (GLOBE, 1 km).

The package ships a 21600 x 43200 boolean mask (30 arc-second pixels, about 1 GB in
memory). We load it once per process, count land pixels in 3 x 3 blocks (1/40 degree,
fine enough that ERA5's cell edges at odd multiples of 0.125 degree fall on block edges),
drop the full mask, and average the counts conservatively (area-weighted, on the sphere)
onto the requested cells. The block counts are cached on disk (:func:`cache_dir`) and
callers cache the result per grid (the lake's ``features`` store holds the model grid's
land fraction), so the 1 km mask is loaded once per machine, not per run.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numba
import numpy as np

from carbonsink.regrid import ConservativeRegridder

#: Pixels per degree of the GLOBE mask, and the block size we coarsen it by.
_MASK_PER_DEG = 120
_BLOCK = 3
_COARSE_PER_DEG = _MASK_PER_DEG // _BLOCK
_lock = threading.Lock()


@numba.njit(nogil=True, cache=True)
def _block_land_counts(ocean: np.ndarray, block: int) -> np.ndarray:  # pragma: no cover
    ny, nx = ocean.shape[0] // block, ocean.shape[1] // block
    out = np.zeros((ny, nx), dtype=np.uint8)
    for i in range(ocean.shape[0]):
        oi = i // block
        for j in range(ocean.shape[1]):
            if not ocean[i, j]:
                out[oi, j // block] += 1
    return out


def cache_dir() -> Path:
    """Where carbonsink keeps derived data between runs (``$CARBONSINK_CACHE_DIR``)."""
    root = os.environ.get("CARBONSINK_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path.home() / ".cache"
    return base / "carbonsink" if not os.environ.get("CARBONSINK_CACHE_DIR") else base


@lru_cache(maxsize=1)
def coarse_counts() -> np.ndarray:
    """Land pixels (0-9) per 1/40 degree block, rows from 90N southwards, from 180W."""
    # Loading the 1 km mask costs seconds and 1 GB; its 3 x 3 block counts (100 MB, a few
    # MB compressed) are cached on disk so later processes skip it.
    version = importlib.metadata.version("global-land-mask")
    path = cache_dir() / f"global-land-mask-{version}-counts-{_COARSE_PER_DEG}.npz"
    try:
        with np.load(path) as npz:
            counts = npz["counts"]
        if counts.shape == (180 * _COARSE_PER_DEG, 360 * _COARSE_PER_DEG):
            return counts
    except (OSError, KeyError, ValueError):
        pass
    counts = counts_from_package()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, counts=counts)
        os.replace(tmp, path)  # atomic: concurrent processes never read a partial file
    except OSError:
        pass  # a read-only home is fine: we just recompute next time
    return counts


def counts_from_package() -> np.ndarray:
    """The 1 km GLOBE mask of the global-land-mask package as 1/40 degree block counts."""
    with _lock:
        path = resources.files("global_land_mask") / "globe_combined_mask_compressed.npz"
        with resources.as_file(path) as p, np.load(p) as npz:
            ocean = npz["mask"]  # True over the ocean; row 0 is the band just below 90N
            lat = npz["lat"]
            lon = npz["lon"]
        expected = (180 * _MASK_PER_DEG, 360 * _MASK_PER_DEG)
        if ocean.shape != expected or lat[0] != 90.0 or lon[0] != -180.0:
            raise RuntimeError("global-land-mask changed its layout; pin global-land-mask==1.0.0")
        counts = _block_land_counts(ocean, _BLOCK)
        del ocean
        return counts


def _coarse_bounds() -> tuple[np.ndarray, np.ndarray]:
    n = _COARSE_PER_DEG
    top = 90.0 - np.arange(180 * n) / n
    lat_b = np.stack([top - 1.0 / n, top], axis=1)
    west = -180.0 + np.arange(360 * n) / n
    lon_b = np.stack([west, west + 1.0 / n], axis=1)
    return lat_b, lon_b


def land_fraction(lat_bounds: np.ndarray, lon_bounds: np.ndarray) -> np.ndarray:
    """Area-weighted land fraction of each cell of a rectilinear grid.

    Parameters
    ----------
    lat_bounds, lon_bounds
        ``(n, 2)`` cell bounds in degrees (any orientation, longitude in any range).

    Returns
    -------
    numpy.ndarray
        ``(nlat, nlon)`` float32 in ``[0, 1]``, rows and columns in the order given.
        Lakes count as land, as in the GLOBE mask.
    """
    src_lat, src_lon = _coarse_bounds()
    regridder = ConservativeRegridder(
        src_lat, src_lon, lat_bounds, lon_bounds, min_valid_fraction=1e-9
    )
    # The kernel reads the uint8 counts directly: no 400 MB float copy of the grid.
    frac = regridder.apply(coarse_counts()) / np.float32(_BLOCK * _BLOCK)
    frac = np.clip(np.nan_to_num(frac, nan=0.0), 0.0, 1.0)
    # float32 accumulation leaves 1 - 4e-7 in solid land cells: snap such rounding.
    frac[frac > 1.0 - 1e-5] = 1.0
    frac[frac < 1e-5] = 0.0
    return frac.astype(np.float32)
