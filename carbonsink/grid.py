"""The model grid: a regular, cell-centred latitude-longitude grid with CF bounds.

Conventions (``docs/design.md``): latitude ascends from ``-90 + d/2`` to ``90 - d/2``,
longitude runs from ``-180 + d/2`` to ``180 - d/2``, and cell areas come from the bounds on
a sphere of radius :data:`EARTH_RADIUS_M`, so that they sum to ``4 pi R**2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import xarray as xr

from carbonsink.errors import ConfigError

#: Mean Earth radius used for every area in carbonsink (IUGG mean radius R1), in metres.
EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True)
class Tiling:
    """How a grid splits into emulator tiles, and store chunks into whole tiles.

    Parameters
    ----------
    nlat, nlon
        Tile size in cells along latitude and longitude.
    chunk_lat, chunk_lon
        Store chunk size in cells: a whole number of tiles, so chunk boundaries are tile
        boundaries. Chunks of a few tiles (1 MB at 0.25 deg) halve the per-object cost of
        reading and writing whole fields against one-tile chunks (measured: 17.6 -> 8.7 ms
        to write and 11.3 -> 5.3 ms to read a 0.25 deg field).
    """

    nlat: int
    nlon: int
    chunk_lat: int
    chunk_lon: int


@dataclass(frozen=True)
class ModelGrid:
    """A regular global latitude-longitude grid of ``resolution`` degrees.

    Parameters
    ----------
    resolution
        Cell size in degrees. It must divide 180 into a whole number of cells; 0.25 (the
        default of the product), 0.5 and 1 are the documented choices, coarser ones serve
        tests.
    """

    resolution: float = 0.25

    def __post_init__(self) -> None:
        d = float(self.resolution)
        n = 180.0 / d if d > 0 else math.inf
        if not (0 < d <= 90) or abs(n - round(n)) > 1e-9:
            raise ConfigError(
                f"grid resolution {self.resolution!r} deg does not divide 180 deg into whole "
                "cells; use 0.25, 0.5 or 1 (or another divisor of 180)"
            )
        object.__setattr__(self, "resolution", d)

    @property
    def nlat(self) -> int:
        """Number of latitude rows."""
        return round(180.0 / self.resolution)

    @property
    def nlon(self) -> int:
        """Number of longitude columns."""
        return 2 * self.nlat

    @property
    def shape(self) -> tuple[int, int]:
        """``(nlat, nlon)``."""
        return (self.nlat, self.nlon)

    @cached_property
    def lat_bounds(self) -> np.ndarray:
        """Latitude bounds, shape ``(nlat, 2)``, ascending, in degrees."""
        edges = np.linspace(-90.0, 90.0, self.nlat + 1)
        return np.stack([edges[:-1], edges[1:]], axis=1)

    @cached_property
    def lon_bounds(self) -> np.ndarray:
        """Longitude bounds, shape ``(nlon, 2)``, from -180 to 180, in degrees."""
        edges = np.linspace(-180.0, 180.0, self.nlon + 1)
        return np.stack([edges[:-1], edges[1:]], axis=1)

    @cached_property
    def lat(self) -> np.ndarray:
        """Latitude of cell centres, ascending, in degrees."""
        return self.lat_bounds.mean(axis=1)

    @cached_property
    def lon(self) -> np.ndarray:
        """Longitude of cell centres in [-180, 180), in degrees."""
        return self.lon_bounds.mean(axis=1)

    @cached_property
    def cell_area(self) -> np.ndarray:
        """Cell areas in m**2, shape ``(nlat, nlon)``.

        ``R**2 * dlon * (sin(lat2) - sin(lat1))``: exact on the sphere, so the total is
        ``4 pi R**2`` up to rounding.
        """
        sin_edges = np.sin(np.deg2rad(self.lat_bounds))
        band = EARTH_RADIUS_M**2 * (sin_edges[:, 1] - sin_edges[:, 0])
        dlon = np.deg2rad(self.lon_bounds[:, 1] - self.lon_bounds[:, 0])
        return band[:, None] * dlon[None, :]

    def tiling(self, nlat: int, nlon: int, tiles_per_chunk: int = 2) -> Tiling:
        """Return the tiling of this grid into tiles of ``nlat x nlon`` cells.

        A tile larger than the grid is clamped to the grid (a coarse grid is one tile
        tall or wide). Chunks hold ``tiles_per_chunk`` tiles along each axis where that
        divides the grid, else one.

        Raises
        ------
        ConfigError
            If the (clamped) tile size does not divide the grid.
        """
        tlat, tlon = min(nlat, self.nlat), min(nlon, self.nlon)
        if tlat <= 0 or tlon <= 0 or self.nlat % tlat or self.nlon % tlon:
            raise ConfigError(
                f"tile of {nlat}x{nlon} cells does not divide the {self.resolution} deg grid "
                f"({self.nlat}x{self.nlon} cells); pick a tile size that divides both"
            )
        clat = tlat * tiles_per_chunk if self.nlat % (tlat * tiles_per_chunk) == 0 else tlat
        clon = tlon * tiles_per_chunk if self.nlon % (tlon * tiles_per_chunk) == 0 else tlon
        return Tiling(tlat, tlon, clat, clon)

    def coords(self) -> xr.Dataset:
        """Return the grid as a Dataset: ``lat``/``lon`` with CF bounds and ``cell_area``."""
        ds = xr.Dataset(
            coords={
                "lat": (
                    "lat",
                    self.lat,
                    {
                        "standard_name": "latitude",
                        "units": "degrees_north",
                        "axis": "Y",
                        "bounds": "lat_bounds",
                    },
                ),
                "lon": (
                    "lon",
                    self.lon,
                    {
                        "standard_name": "longitude",
                        "units": "degrees_east",
                        "axis": "X",
                        "bounds": "lon_bounds",
                    },
                ),
            }
        )
        ds["lat_bounds"] = (("lat", "bnds"), self.lat_bounds)
        ds["lon_bounds"] = (("lon", "bnds"), self.lon_bounds)
        ds["cell_area"] = (
            ("lat", "lon"),
            self.cell_area,
            {
                "standard_name": "cell_area",
                "units": "m2",
                "comment": f"spherical cell areas, Earth radius {EARTH_RADIUS_M:.0f} m",
            },
        )
        ds.attrs["grid_resolution_deg"] = self.resolution
        return ds


def point_grid_bounds(
    centres: np.ndarray, *, clip: tuple[float, float] | None = None
) -> np.ndarray:
    """Infer cell bounds of a point grid from its centres (midpoints between neighbours).

    This is how ERA5's 721-row grid gets its half-width polar cells: the rows at +-90
    extend only to the midpoint towards their neighbour, because the bounds are clipped
    to ``[-90, 90]``.

    Parameters
    ----------
    centres
        Strictly monotonic coordinate values (ascending or descending).
    clip
        Optional ``(low, high)`` to clip the outer bounds to, e.g. ``(-90, 90)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, 2)``; each row is ``(low, high)`` with ``low < high`` regardless of the
        orientation of ``centres``.
    """
    c = np.asarray(centres, dtype=np.float64)
    if c.size < 2:
        raise ConfigError("a grid axis needs at least two points to infer cell bounds")
    mid = 0.5 * (c[1:] + c[:-1])
    first = c[0] - (mid[0] - c[0])
    last = c[-1] + (c[-1] - mid[-1])
    edges = np.concatenate([[first], mid, [last]])
    if clip is not None:
        edges = np.clip(edges, clip[0], clip[1])
    lo = np.minimum(edges[:-1], edges[1:])
    hi = np.maximum(edges[:-1], edges[1:])
    return np.stack([lo, hi], axis=1)
