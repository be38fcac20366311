"""Regions of the budget: latitude bands, RECCAP2-like continents and ocean basins, hotspots.

All are defined here, as unions of longitude-latitude boxes (W, S, E, N in degrees, cell
centres inside), so no download is needed at run time. The continents and ocean basins
follow the RECCAP2 land regions and ocean basins (Ciais et al. 2022, Geosci. Model Dev. 15,
1289; DeVries et al. 2023, Global Biogeochem. Cycles 37) at box resolution: a cell belongs
to the first continent (or basin) whose boxes hold its centre, so they partition the land
(ocean) and their sums add up to the global sink (tested). Hotspot boxes may overlap
anything.

A land region weighs each cell by 1 (the flux is already per m2 of grid cell and zero off
land), an ocean region likewise; bands and hotspots apply to both sinks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carbonsink.grid import ModelGrid

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Region:
    """A named region: its kind, the sinks it applies to and its boxes."""

    name: str
    kind: str  # band, continent, basin, hotspot
    sinks: tuple[str, ...]
    boxes: tuple[Box, ...]


BOTH = ("SLAND", "SOCEAN")
BANDS = (
    Region("north of 20N", "band", BOTH, ((-180, 20, 180, 90),)),
    Region("20S-20N", "band", BOTH, ((-180, -20, 180, 20),)),
    Region("south of 20S", "band", BOTH, ((-180, -90, 180, -20),)),
)
#: Order matters: a cell goes to the first continent that holds it.
CONTINENTS = (
    Region("North America", "continent", ("SLAND",),
           ((-170, 15, -50, 84), (-118, 7, -77, 15), (-75, 58, -10, 84))),
    Region("South America", "continent", ("SLAND",), ((-92, -60, -30, 15),)),
    Region("Europe", "continent", ("SLAND",), ((-25, 35, 45, 72), (-10, 72, 45, 82))),
    Region("Africa", "continent", ("SLAND",), ((-20, -36, 35, 37), (35, -36, 52, 12))),
    Region("Russia", "continent", ("SLAND",), ((45, 45, 180, 82), (-180, 60, -168, 72))),
    Region("West and South Asia", "continent", ("SLAND",), ((35, 5, 92, 45),)),
    Region("East Asia", "continent", ("SLAND",), ((92, 20, 150, 55),)),
    Region("Southeast Asia", "continent", ("SLAND",), ((92, -11, 160, 20),)),
    Region("Australasia", "continent", ("SLAND",), ((110, -50, 180, -11), (160, -11, 180, 0))),
    Region("Other land", "continent", ("SLAND",), ((-180, -90, 180, 90),)),
)  # fmt: skip
BASINS = (
    Region("Arctic Ocean", "basin", ("SOCEAN",), ((-180, 66, 180, 90),)),
    Region("Southern Ocean", "basin", ("SOCEAN",), ((-180, -90, 180, -35),)),
    Region("Atlantic Ocean", "basin", ("SOCEAN",),
           ((-100, 0, 20, 66), (-70, -35, 20, 0), (20, 30, 45, 50))),
    Region("Indian Ocean", "basin", ("SOCEAN",), ((20, -35, 120, 30), (120, -35, 147, -20))),
    Region("Pacific Ocean", "basin", ("SOCEAN",), ((-180, -35, 180, 66),)),
)  # fmt: skip
HOTSPOTS = (
    Region("Amazon", "hotspot", ("SLAND",), ((-75, -15, -50, 5),)),
    Region("Congo basin", "hotspot", ("SLAND",), ((10, -10, 30, 5),)),
    Region("Boreal Siberia", "hotspot", ("SLAND",), ((60, 55, 140, 70),)),
    Region("Southeast Asian peatlands", "hotspot", ("SLAND",), ((95, -8, 120, 5),)),
    Region("Equatorial Pacific", "hotspot", ("SOCEAN",), ((-180, -5, -80, 5), (160, -5, 180, 5))),
    Region("Subpolar North Atlantic", "hotspot", ("SOCEAN",), ((-60, 45, -10, 65),)),
)  # fmt: skip
REGIONS = (*BANDS, *CONTINENTS, *BASINS, *HOTSPOTS)


def _inside(grid: ModelGrid, boxes: tuple[Box, ...]) -> np.ndarray:
    lat, lon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    out = np.zeros(grid.shape, dtype=bool)
    for w, s, e, n in boxes:
        out |= (lon >= w) & (lon < e) & (lat >= s) & (lat < n)
    return out


def region_masks(grid: ModelGrid) -> dict[str, np.ndarray]:
    """0/1 weights of every region on ``grid``; continents and basins partition the globe."""
    masks: dict[str, np.ndarray] = {}
    for group in (BANDS, CONTINENTS, BASINS):
        taken = np.zeros(grid.shape, dtype=bool)
        for r in group:
            m = _inside(grid, r.boxes) & ~taken if group is not BANDS else _inside(grid, r.boxes)
            taken |= m
            masks[r.name] = m.astype(np.float64)
    for r in HOTSPOTS:
        masks[r.name] = _inside(grid, r.boxes).astype(np.float64)
    return masks


class RegionIndex:
    """Fast regional sums on one grid: label arrays for the partitions, masks for hotspots.

    ``np.bincount`` over a partition's labels sums all its regions in one pass, so the
    regional sums of a month cost a few passes over the grid instead of one per region
    (60 at 0.25 deg took most of ``carbonsink budget``).
    """

    def __init__(self, grid: ModelGrid) -> None:
        masks = region_masks(grid)
        self.partitions: list[tuple[np.ndarray, list[str]]] = []
        for group in (BANDS, CONTINENTS, BASINS):
            labels = np.zeros(grid.shape, dtype=np.intp)
            for k, r in enumerate(group):
                labels[masks[r.name] > 0] = k
            self.partitions.append((labels.ravel(), [r.name for r in group]))
        self.hotspots = {r.name: masks[r.name] > 0 for r in HOTSPOTS}

    def sums(self, values: np.ndarray) -> dict[str, float]:
        """Sum of ``values`` (NaN as 0) over every region."""
        v = np.nan_to_num(values.astype(np.float64, copy=False))
        out: dict[str, float] = {}
        flat = v.ravel()
        for labels, names in self.partitions:
            totals = np.bincount(labels, weights=flat, minlength=len(names))
            out.update({n: float(t) for n, t in zip(names, totals, strict=True)})
        for name, mask in self.hotspots.items():
            out[name] = float(v[mask].sum())
        return out


def region(name: str) -> Region:
    """A region by name."""
    for r in REGIONS:
        if r.name == name:
            return r
    raise KeyError(name)
