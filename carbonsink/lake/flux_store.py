"""Layout of the lake's flux stores: ``labels`` (training targets) and, later, ``sinkmap``.

One group per member (an emulated process model, or an imported TRENDY/GOBM model), each a
self-contained CF dataset: ``land_flux`` and ``ocean_flux`` (time, lat, lon) in
kg C m-2 s-1 per m2 of grid cell, positive into the land / ocean, on the same monthly time
axis and chunking as the ``features`` store (one month x one chunk of tiles per chunk), and
per-month flags: ``labelled`` in the labels store, ``mapped`` in the sink map (sink maps
written before carbonsink named it so call it ``labelled``; both are read). Members are
added as groups, so importing another model never rewrites the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import icechunk
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from carbonsink._version import __version__
from carbonsink.errors import LakeError
from carbonsink.grid import ModelGrid, Tiling
from carbonsink.lake.features_store import TIME_AXIS, create_array, read_attrs, read_month_flags
from carbonsink.lake.lake import Lake
from carbonsink.timeutil import MonthWindow, month_starts

FLUXES = ("land_flux", "ocean_flux")
#: Groups of the sink map beside the members.
ENSEMBLE_MEDIAN = "ensemble-median"
ENSEMBLE_SPREAD = "ensemble-spread"
_FLUX_ATTRS = {
    "land_flux": {
        "standard_name": "surface_net_downward_mass_flux_of_carbon_dioxide_expressed_as_carbon"
        "_due_to_all_land_processes",
        "long_name": "net land-atmosphere CO2 flux (NBP), positive into the land",
    },
    "ocean_flux": {
        "standard_name": "surface_downward_mass_flux_of_carbon_dioxide_expressed_as_carbon",
        "long_name": "air-sea CO2 flux, positive into the ocean",
    },
}


#: The per-month flag of a member's group, by store kind: what a 1 means there.
FLAGS = {"labels": "labelled", "sinkmap": "mapped"}


def _flag_path(store: icechunk.IcechunkStore, member: str) -> str:
    """The member's flag array: ``mapped`` or ``labelled`` (older sink maps)."""
    group = zarr.open_group(store, path=member, mode="r")
    name = next((f for f in ("mapped", "labelled") if f in group), None)
    if name is None:
        raise LakeError(f"the flux store's member {member} has no month flags; use a new lake")
    return f"{member}/{name}"


@dataclass(frozen=True)
class FluxLayout:
    """Grid, tiling and time axis of a flux store."""

    grid: ModelGrid
    tiling: Tiling
    time_axis: MonthWindow = TIME_AXIS

    def month_index(self, month: pd.Period) -> int:
        """Position of a month on the time axis."""
        if not (self.time_axis.start <= month <= self.time_axis.end):
            raise LakeError(f"month {month} is outside the flux store's time axis")
        return int((month - self.time_axis.start).n)

    def attrs(self, kind: str) -> dict[str, Any]:
        """Root attributes."""
        return {
            "Conventions": "CF-1.10",
            "title": f"carbonsink {kind}: land and ocean CO2 fluxes per member",
            "kind": kind,
            "grid_resolution_deg": self.grid.resolution,
            "tile_lat": self.tiling.nlat,
            "tile_lon": self.tiling.nlon,
            "chunk_lat": self.tiling.chunk_lat,
            "chunk_lon": self.tiling.chunk_lon,
            "time_axis": str(self.time_axis),
            "created_by": f"carbonsink {__version__}",
        }

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> FluxLayout:
        """Rebuild from a store's root attributes."""
        try:
            start, end = str(attrs["time_axis"]).split("..")
            return cls(
                ModelGrid(float(attrs["grid_resolution_deg"])),
                Tiling(
                    int(attrs["tile_lat"]),
                    int(attrs["tile_lon"]),
                    int(attrs["chunk_lat"]),
                    int(attrs["chunk_lon"]),
                ),
                MonthWindow.parse(start, end),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise LakeError(
                f"the flux store lacks layout attributes ({exc}); use a new lake"
            ) from exc

    def create(self, store: icechunk.IcechunkStore, kind: str) -> None:
        """Write the root group."""
        root = zarr.open_group(store, mode="w", zarr_format=3)
        root.attrs.update(self.attrs(kind))

    def add_member(self, store: icechunk.IcechunkStore, member: str, attrs: dict[str, Any]) -> None:
        """Create a member's group: coordinates, empty fluxes (NaN) and flags (0)."""
        root = zarr.open_group(store, mode="r+")
        flag = FLAGS.get(str(root.attrs.get("kind")), "labelled")
        g = root.create_group(member)
        g.attrs.update(attrs)
        ny, nx = self.grid.shape
        months = self.time_axis.months
        nt = len(months)
        days = (month_starts(months) - month_starts(months[:1])[0]) // np.timedelta64(1, "D")

        arr = partial(create_array, g)

        t0 = str(self.time_axis.start.start_time.date())
        arr("time", (nt,), (nt,), "int32", ("time",),
            {"units": f"days since {t0}", "calendar": "proleptic_gregorian",
             "standard_name": "time", "axis": "T"}, days.astype(np.int32))  # fmt: skip
        arr("lat", (ny,), (ny,), "float64", ("lat",),
            {"standard_name": "latitude", "units": "degrees_north", "axis": "Y",
             "bounds": "lat_bounds"}, self.grid.lat)  # fmt: skip
        arr("lon", (nx,), (nx,), "float64", ("lon",),
            {"standard_name": "longitude", "units": "degrees_east", "axis": "X",
             "bounds": "lon_bounds"}, self.grid.lon)  # fmt: skip
        arr("lat_bounds", (ny, 2), (ny, 2), "float64", ("lat", "bnds"), {}, self.grid.lat_bounds)
        arr("lon_bounds", (nx, 2), (nx, 2), "float64", ("lon", "bnds"), {}, self.grid.lon_bounds)
        arr(flag, (nt,), (1,), "int8", ("time",),
            {"long_name": f"month is {flag} for this member (1) or not (0)"}, fill=0)  # fmt: skip
        chunks = (1, self.tiling.chunk_lat, self.tiling.chunk_lon)
        for name in FLUXES:
            a = dict(_FLUX_ATTRS[name])
            a["units"] = "kg m-2 s-1"
            a["positive"] = "down"
            a["cell_methods"] = "time: mean area: mean"
            a["comment"] = "kg of carbon per m2 of grid cell per second; uptake is positive"
            arr(name, (nt, ny, nx), chunks, "float32", ("time", "lat", "lon"), a,
                fill=float("nan"))  # fmt: skip


def members(store: icechunk.IcechunkStore) -> list[str]:
    """Member groups of a flux store, sorted."""
    root = zarr.open_group(store, mode="r")
    return sorted(name for name, _ in root.groups())


def member_attrs(store: icechunk.IcechunkStore, member: str) -> dict[str, Any]:
    """A member's attributes."""
    return dict(zarr.open_group(store, path=member, mode="r").attrs)


#: ``source`` of a labels-store member imported from TRENDY / GOBM output.
IMPORTED = "imported"


def imported_members(store: icechunk.IcechunkStore) -> list[str]:
    """Members of a labels store imported from model output (not carbonsink's references)."""
    return [m for m in members(store) if member_attrs(store, m).get("source") == IMPORTED]


def ensemble(
    candidates: Sequence[str], imported: Sequence[str], *, with_reference: bool
) -> list[str]:
    """The members an ensemble takes from ``candidates``.

    carbonsink's reference process models are a stand-in for real model output: once a
    lake holds imported TRENDY / GOBM members, its ensemble is those, and the reference
    members join them only when asked (``with_reference``). Without imported members, the
    reference members are the ensemble.
    """
    chosen = [m for m in candidates if m in set(imported)]
    if not chosen or with_reference:
        return list(candidates)
    return chosen


def member_months(store: icechunk.IcechunkStore, layout: FluxLayout, member: str) -> pd.PeriodIndex:
    """Months that hold a member's fluxes: labelled (labels store) or mapped (sink map)."""
    return layout.time_axis.months[read_month_flags(store, _flag_path(store, member)) == 1]


def write_member_flags(
    store: icechunk.IcechunkStore, layout: FluxLayout, member: str, months: Sequence[pd.Period]
) -> None:
    """Mark months as holding a member's fluxes."""
    a = zarr.open_array(store, path=_flag_path(store, member), mode="r+")
    for m in months:
        a[layout.month_index(m)] = 1


def read_flux(store: icechunk.IcechunkStore, member: str, name: str, index: int) -> np.ndarray:
    """One month of one member's flux (lat, lon)."""
    return np.asarray(zarr.open_array(store, path=f"{member}/{name}", mode="r")[index])


def open_member(
    session: icechunk.Session, member: str, chunks: dict[str, int] | None = None
) -> xr.Dataset:
    """A member's group as a lazy Dataset, restricted to the months it holds.

    ``chunks=None`` (the default) gives lazily indexed arrays without Dask: the time axis
    holds two centuries of small chunks, and a Dask graph over all of them costs seconds.
    """
    ds = xr.open_zarr(session.store, group=member, consolidated=False, chunks=chunks)
    ds = ds.set_coords([c for c in ("lat_bounds", "lon_bounds") if c in ds])
    path = _flag_path(session.store, member)
    flags = read_month_flags(session.store, path)
    return ds.drop_vars(path.rsplit("/", 1)[1]).isel(time=np.flatnonzero(flags == 1))


def ensemble_median(fields: list[np.ndarray]) -> np.ndarray:
    """Median over members, ignoring members that are NaN in a cell (NaN if all are).

    ``np.nanmedian`` on whole global fields is slow; the plain median is right wherever
    every member has a value, so only the other cells take the NaN-aware path.
    """
    stack = np.stack(fields)
    med = np.median(stack, axis=0)
    gaps = np.isnan(med) & np.isfinite(stack).any(axis=0)
    if gaps.any():
        med[gaps] = np.nanmedian(stack[:, gaps], axis=0)
    return med


def open_labels(lake: Lake) -> tuple[icechunk.Session, FluxLayout]:
    """The published ``labels`` store, read-only, and its layout.

    Raises
    ------
    LakeError
        If the lake has no labels store.
    """
    repo = lake.open_repo("labels")
    if repo is None:
        raise LakeError(
            f"the lake {lake.url} has no labels store; run carbonsink labels first (or import "
            "TRENDY/GOBM files with carbonsink labels --nbp/--fgco2)"
        )
    session = repo.readonly_session("main")
    return session, FluxLayout.from_attrs(read_attrs(session.store))
