"""Layout of the lake's ``features`` store and region writes into it.

The store is sized once, template first, like ARCO-ERA5: a monthly ``time`` axis from
1940-01 to 2050-12 whose unwritten chunks read as NaN. Every month of every variable is its
own set of chunks (one month x one tile), so units of work never share a chunk: an ingest
of month N+1 cannot touch month N, and rewriting a month rewrites only its own chunks.
``ingested`` (one int8 per month, one chunk each) records which months hold data.

Variables: for each driver ``d``: ``d`` (time, lat, lon) monthly means, ``d_anom`` anomalies
and ``d_clim`` (month, lat, lon) the climatology over ``climatology_baseline``; statics
``cell_area`` and ``land_fraction`` (lat, lon); CF coordinates and bounds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import icechunk
import numpy as np
import pandas as pd
import xarray as xr
import zarr
import zarr.codecs
import zarr.core.sync

from carbonsink._version import __version__
from carbonsink.drivers import DRIVERS
from carbonsink.errors import LakeError
from carbonsink.grid import ModelGrid, Tiling
from carbonsink.lake.lake import Lake
from carbonsink.timeutil import MonthWindow, month_starts

TIME_AXIS = MonthWindow.parse("1940-01", "2050-12")
TIME_UNITS = "days since 1940-01-01"
CODEC = zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
#: Root attribute: the source URL each ingested month came from.
SOURCES_ATTR = "month_sources"
#: Root attributes: the product each month was ingested from, and the synthetic months.
PRODUCTS_ATTR = "month_products"
SYNTHETIC_ATTR = "synthetic_months"


def create_array(
    group: zarr.Group,
    name: str,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dtype: str,
    dims: tuple[str, ...],
    attrs: dict[str, Any],
    data: Any = None,
    fill: Any = None,
) -> None:
    """Create one array of a lake store (carbonsink's codec), with attributes and data."""
    a = group.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        dimension_names=dims,
        fill_value=fill,
        compressors=CODEC,
    )
    a.attrs.update(attrs)
    if data is not None:
        a[...] = data


def read_month_flags(store: icechunk.IcechunkStore, path: str) -> np.ndarray:
    """A per-month flag array, reading only the chunks ever written.

    Flags have one chunk per month (concurrent forks never write the same chunk), and the
    time axis spans two centuries: reading all of it was some 1,300 chunk requests (0.5 s
    per call, measured), most of them for months never written, which hold the fill value.
    """
    a = zarr.open_array(store, path=path, mode="r")

    async def written() -> list[str]:
        return [k async for k in store.list_prefix(path)]

    # Chunk keys are "<path>/c/<index>" (Zarr v3's default encoding, one index per chunk).
    index = np.array(
        sorted(int(k.rsplit("/", 1)[1]) for k in zarr.core.sync.sync(written()) if "/c/" in k),
        dtype=np.int64,
    )
    flags = np.full(a.shape, a.fill_value, dtype=a.dtype)
    if index.size:
        flags[index] = a.get_coordinate_selection(index)
    return flags


@dataclass(frozen=True)
class FeaturesLayout:
    """What a ``features`` store holds and how it is chunked."""

    grid: ModelGrid
    tiling: Tiling
    drivers: tuple[str, ...]
    time_axis: MonthWindow = TIME_AXIS

    def month_index(self, month: pd.Period) -> int:
        """Position of a month on the store's time axis."""
        if not (self.time_axis.start <= month <= self.time_axis.end):
            raise LakeError(
                f"month {month} is outside the features store's time axis ({self.time_axis}); "
                "use a window within it"
            )
        return int((month - self.time_axis.start).n)

    def attrs(self) -> dict[str, Any]:
        """Root attributes that identify the layout."""
        return {
            "Conventions": "CF-1.10",
            "title": "carbonsink features: monthly climate drivers on the model grid",
            "grid_resolution_deg": self.grid.resolution,
            "tile_lat": self.tiling.nlat,
            "tile_lon": self.tiling.nlon,
            "chunk_lat": self.tiling.chunk_lat,
            "chunk_lon": self.tiling.chunk_lon,
            "drivers": list(self.drivers),
            "time_axis": str(self.time_axis),
            "created_by": f"carbonsink {__version__}",
        }

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> FeaturesLayout:
        """Rebuild the layout from a store's root attributes."""
        try:
            grid = ModelGrid(float(attrs["grid_resolution_deg"]))
            tiling = Tiling(
                int(attrs["tile_lat"]),
                int(attrs["tile_lon"]),
                int(attrs["chunk_lat"]),
                int(attrs["chunk_lon"]),
            )
            drivers = tuple(attrs["drivers"])
            start, end = str(attrs["time_axis"]).split("..")
        except (KeyError, ValueError, TypeError) as exc:
            raise LakeError(
                f"the features store lacks layout attributes ({exc}); it was not written by "
                "carbonsink: use a new lake"
            ) from exc
        return cls(grid, tiling, drivers, MonthWindow.parse(start, end))

    def check_compatible(self, wanted: FeaturesLayout) -> None:
        """Refuse to mix grids, tilings or driver sets in one store."""
        if self.grid != wanted.grid:
            raise LakeError(
                f"the lake's features store is on the {self.grid.resolution} deg grid, not "
                f"{wanted.grid.resolution} deg; pass --grid {self.grid.resolution} or use "
                "another lake"
            )
        if self.tiling != wanted.tiling:
            raise LakeError(
                f"the lake's features store uses {self.tiling.nlat}x{self.tiling.nlon} tiles in "
                f"{self.tiling.chunk_lat}x{self.tiling.chunk_lon} chunks, not "
                f"{wanted.tiling.nlat}x{wanted.tiling.nlon} in "
                f"{wanted.tiling.chunk_lat}x{wanted.tiling.chunk_lon}; keep the lake's tiling"
            )
        extra = [d for d in wanted.drivers if d not in self.drivers]
        if extra:
            raise LakeError(
                f"the lake's features store has no driver(s) {', '.join(extra)}; ingest into "
                "a new lake to add drivers"
            )

    def create(self, store: icechunk.IcechunkStore, land_fraction: np.ndarray) -> None:
        """Write the template: every array, coordinate and attribute; statics filled in."""
        root = zarr.open_group(store, mode="w", zarr_format=3)
        root.attrs.update(self.attrs())
        g, t = self.grid, self.tiling
        ny, nx = g.shape
        months = self.time_axis.months
        time_days = (
            (month_starts(months) - np.datetime64("1940-01-01", "ns")) // np.timedelta64(1, "D")
        ).astype(np.int32)

        arr = partial(create_array, root)

        arr("time", (len(months),), (len(months),), "int32", ("time",),
            {"units": TIME_UNITS, "calendar": "proleptic_gregorian", "standard_name": "time",
             "axis": "T"}, time_days)  # fmt: skip
        arr("month", (12,), (12,), "int8", ("month",), {"long_name": "calendar month"},
            np.arange(1, 13, dtype=np.int8))  # fmt: skip
        arr("lat", (ny,), (ny,), "float64", ("lat",),
            {"standard_name": "latitude", "units": "degrees_north", "axis": "Y",
             "bounds": "lat_bounds"}, g.lat)  # fmt: skip
        arr("lon", (nx,), (nx,), "float64", ("lon",),
            {"standard_name": "longitude", "units": "degrees_east", "axis": "X",
             "bounds": "lon_bounds"}, g.lon)  # fmt: skip
        arr("lat_bounds", (ny, 2), (ny, 2), "float64", ("lat", "bnds"), {}, g.lat_bounds)
        arr("lon_bounds", (nx, 2), (nx, 2), "float64", ("lon", "bnds"), {}, g.lon_bounds)
        arr("cell_area", (ny, nx), (t.chunk_lat, t.chunk_lon), "float64", ("lat", "lon"),
            {"standard_name": "cell_area", "units": "m2",
             "comment": "spherical cell areas, Earth radius 6371000 m"}, g.cell_area)  # fmt: skip
        arr("land_fraction", (ny, nx), (t.chunk_lat, t.chunk_lon), "float32", ("lat", "lon"),
            {"standard_name": "land_area_fraction", "units": "1",
             "source": "global-land-mask (GLOBE 1 km), area-weighted"},
            land_fraction.astype(np.float32))  # fmt: skip
        flag_attrs = {"long_name": "month holds ingested drivers (1) or not (0)"}
        arr("ingested", (len(months),), (1,), "int8", ("time",), flag_attrs, fill=0)
        arr("era5t", (len(months),), (1,), "int8", ("time",),
            {"long_name": "month includes preliminary ERA5T data (1) or only final ERA5 (0)"},
            fill=0)  # fmt: skip
        for name in self.drivers:
            d = DRIVERS[name]
            attrs = d.attrs()
            field_chunks = (1, t.chunk_lat, t.chunk_lon)
            arr(name, (len(months), ny, nx), field_chunks, "float32", ("time", "lat", "lon"),
                attrs, fill=float("nan"))  # fmt: skip
            anom_attrs = {k: v for k, v in attrs.items() if k != "standard_name"}
            anom_attrs["long_name"] = f"anomaly of {d.long_name}"
            arr(f"{name}_anom", (len(months), ny, nx), field_chunks, "float32",
                ("time", "lat", "lon"), anom_attrs, fill=float("nan"))  # fmt: skip
            clim_attrs = dict(attrs)
            clim_attrs["long_name"] = f"climatology of {d.long_name}"
            arr(f"{name}_clim", (12, ny, nx), field_chunks, "float32", ("month", "lat", "lon"),
                clim_attrs, fill=float("nan"))  # fmt: skip


def read_layout(store: icechunk.IcechunkStore) -> FeaturesLayout:
    """The layout of an existing ``features`` store."""
    root = zarr.open_group(store, mode="r")
    return FeaturesLayout.from_attrs(dict(root.attrs))


def read_attrs(store: icechunk.IcechunkStore) -> dict[str, Any]:
    """Root attributes of a store."""
    return dict(zarr.open_group(store, mode="r").attrs)


def set_attrs(store: icechunk.IcechunkStore, **attrs: Any) -> None:
    """Update root attributes (driver-side, inside the run's session)."""
    zarr.open_group(store, mode="r+").attrs.update(attrs)


def ingested_months(store: icechunk.IcechunkStore, layout: FeaturesLayout) -> pd.PeriodIndex:
    """Months that hold ingested drivers."""
    return layout.time_axis.months[read_month_flags(store, "ingested") == 1]


def era5t_months(store: icechunk.IcechunkStore, layout: FeaturesLayout) -> pd.PeriodIndex:
    """Ingested months whose drivers include preliminary ERA5T data."""
    ingested = read_month_flags(store, "ingested") == 1
    flags = read_month_flags(store, "era5t") == 1
    return layout.time_axis.months[ingested & flags]


def write_flags(
    store: icechunk.IcechunkStore,
    layout: FeaturesLayout,
    months: Sequence[pd.Period],
    era5t: Sequence[pd.Period],
) -> None:
    """Mark months as ingested (and which used ERA5T); each flag is its own chunk."""
    ing = zarr.open_array(store, path="ingested", mode="r+")
    e5t = zarr.open_array(store, path="era5t", mode="r+")
    era5t_set = set(era5t)
    for m in months:
        i = layout.month_index(m)
        ing[i] = 1
        e5t[i] = 1 if m in era5t_set else 0


def write_region(
    fork: icechunk.ForkSession, path: str, index: int, block: np.ndarray
) -> icechunk.ForkSession:
    """Write one month (or calendar month) of one variable; runs on a worker.

    ``fork`` is a forked session; it comes back carrying the change, to be merged.
    """
    a = zarr.open_array(fork.store, path=path, mode="r+")
    data = np.asarray(block, dtype=np.float32)
    a[index] = data.reshape(a.shape[1:])
    return fork


def merge_forks(*forks: icechunk.ForkSession) -> icechunk.ForkSession:
    """Merge forked sessions pairwise on a worker (a tree of these feeds the final merge)."""
    head, rest = forks[0], forks[1:]
    if rest:
        head.merge(*rest)
    return head


def open_features(session: icechunk.Session, *, only_ingested: bool = True) -> xr.Dataset:
    """The features store as an xarray Dataset (lazy; dask chunks = store chunks).

    Parameters
    ----------
    session
        A read-only (or the run's own) session.
    only_ingested
        Drop the months that hold no data.
    """
    ds = xr.open_zarr(session.store, consolidated=False, chunks={})
    ds = ds.set_coords(
        [c for c in ("lat_bounds", "lon_bounds", "cell_area", "land_fraction") if c in ds]
    )
    if only_ingested:
        # Read the flags with zarr: through dask they are 1332 one-element chunks.
        flags = read_month_flags(session.store, "ingested")
        ds = ds.isel(time=np.flatnonzero(flags == 1))
    return ds


def snapshot_metadata(**fields: Any) -> dict[str, Any]:
    """Commit metadata: JSON-safe provenance of a run."""
    return json.loads(json.dumps(fields, default=str))


def read_fields(
    store: icechunk.IcechunkStore, paths: Sequence[str], index: int
) -> dict[str, np.ndarray]:
    """One time step (or calendar month, for ``*_clim``) of several arrays, by path."""
    return {p: np.asarray(zarr.open_array(store, path=p, mode="r")[index]) for p in paths}


def read_static(store: icechunk.IcechunkStore, name: str) -> np.ndarray:
    """A static (lat, lon) field such as ``land_fraction`` or ``cell_area``."""
    return np.asarray(zarr.open_array(store, path=name, mode="r")[...])


def open_published_features(lake: Lake) -> tuple[icechunk.Session, FeaturesLayout]:
    """The published ``features`` store, read-only, and its layout.

    Raises
    ------
    LakeError
        If the lake or its features store does not exist, or has no climatology yet.
    """
    if lake.info() is None:
        raise LakeError(f"no lake at {lake.url}; run carbonsink ingest first (or pass --lake)")
    repo = lake.open_repo("features")
    if repo is None:
        raise LakeError(f"the lake {lake.url} has no features store; run carbonsink ingest first")
    session = repo.readonly_session("main")
    if not read_attrs(session.store).get("climatology_baseline"):
        raise LakeError(
            "the features store has no climatology yet (its baseline is not fully ingested); "
            "ingest the baseline window first"
        )
    return session, read_layout(session.store)


def record_sources(
    store: icechunk.IcechunkStore,
    months: Sequence[pd.Period],
    url: str,
    *,
    product: str = "",
    synthetic: bool = False,
) -> None:
    """Record where ``months`` were ingested from (root attributes).

    The source URL, the product it held (an ERA5 product, or carbonsink's sample data) and
    whether it was synthetic. Kept in the store, not only in commit metadata, so that it
    outlives the history that ``carbonsink compact`` expires, and so that every output
    drawn from these months can say what it rests on.
    """
    attrs = read_attrs(store)
    keys = [str(m) for m in months]
    sources = {**attrs.get(SOURCES_ATTR, {}), **dict.fromkeys(keys, url)}
    products = {**attrs.get(PRODUCTS_ATTR, {}), **dict.fromkeys(keys, product)}
    synthetic_set = set(attrs.get(SYNTHETIC_ATTR, [])) - set(keys)
    if synthetic:
        synthetic_set |= set(keys)
    set_attrs(
        store,
        **{
            SOURCES_ATTR: dict(sorted(sources.items())),
            PRODUCTS_ATTR: dict(sorted(products.items())),
            SYNTHETIC_ATTR: sorted(synthetic_set),
        },
    )


@dataclass(frozen=True)
class DataOrigin:
    """What the drivers of some months rest on: real ERA5, or carbonsink's sample data.

    Attributes
    ----------
    synthetic
        Some of the months came from ``carbonsink sample-data``: whatever is drawn from them
        is a demonstration, not a budget of the real world.
    products
        The products the months were ingested from (empty where not recorded).
    """

    synthetic: bool
    products: tuple[str, ...]

    @property
    def label(self) -> str:
        """One phrase for tables, titles and reports."""
        if self.synthetic:
            return SYNTHETIC_LABEL
        if not self.products:
            return "data origin not recorded (months ingested before carbonsink recorded it)"
        return "; ".join(self.products)


#: How every output drawn from carbonsink's generated sample data names it.
SYNTHETIC_LABEL = "synthetic sample data (carbonsink sample-data), not ERA5: a demonstration"


def data_origin(store: icechunk.IcechunkStore, months: Sequence[pd.Period]) -> DataOrigin:
    """The origin of ``months``' drivers, from the store's record (:func:`record_sources`)."""
    attrs = read_attrs(store)
    keys = {str(m) for m in months}
    synthetic = bool(keys & set(attrs.get(SYNTHETIC_ATTR, [])))
    recorded = attrs.get(PRODUCTS_ATTR, {})
    products = tuple(sorted({recorded[k] for k in keys if recorded.get(k)}))
    return DataOrigin(synthetic, products)


def month_sources(repo: icechunk.Repository, branch: str = "main") -> dict[pd.Period, str]:
    """The source URL each month of ``branch`` was last ingested from.

    From the store's record (:func:`record_sources`); for months ingested before it was
    kept, from the commit metadata of the ingests' ``drivers`` stage (``window`` and
    ``source_url``, newest commit winning) while that history lasts.
    """
    recorded = read_attrs(repo.readonly_session(branch).store).get(SOURCES_ATTR, {})
    sources = {pd.Period(m, "M"): str(url) for m, url in recorded.items()}
    for snap in repo.ancestry(branch=branch):  # newest first
        meta = snap.metadata or {}
        if meta.get("stage") != "drivers" or "window" not in meta:
            continue
        start, _, end = str(meta["window"]).partition("..")
        for month in MonthWindow.parse(start, end).months:
            sources.setdefault(month, str(meta.get("source_url", "")))
    return sources
