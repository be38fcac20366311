"""The lake's outputs as xarray and pandas objects: what ``carbonsink.open_lake`` returns.

This is the public way into a lake from Python (a notebook, a dashboard, a data-lake
loader). It reads; it never writes. Every object holds only the months that have data and
carries what a user needs to aggregate it (``cell_area``, ``land_fraction``), so a global
total is one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import xarray as xr
import zarr

from carbonsink.errors import LakeError
from carbonsink.lake.features_store import open_features, read_static
from carbonsink.lake.flux_store import ENSEMBLE_MEDIAN, ENSEMBLE_SPREAD, members, open_member
from carbonsink.lake.lake import Lake
from carbonsink.lake.table_store import read_table
from carbonsink.storage import StorageOptions

if TYPE_CHECKING:
    import icechunk

#: The budget store's tables, as ``LakeOutputs.table`` names them.
TABLES = (
    "budget",
    "budget_12m",
    "regions_annual",
    "regions_monthly",
    "sinks_annual",
    "sinks_monthly",
)


class LakeOutputs:
    """A carbonsink lake, read at one version of its stores.

    Use :func:`open_lake` to make one.

    Parameters
    ----------
    url
        Root of the lake: a local path, ``file://``, ``s3://`` or ``gs://``.
    ref
        ``main`` (what the last run published) or a tag such as ``run-20240702T...``: a
        past version of the store that run published to (``tags`` lists a store's tags).
    storage
        Endpoint, region and anonymous access for object stores.
    """

    def __init__(
        self, url: str, *, ref: str = "main", storage: StorageOptions | None = None
    ) -> None:
        self._lake = Lake(url, storage)
        if self._lake.info() is None:
            raise LakeError(f"no carbonsink lake at {self._lake.url}; check the URL")
        self.url: str = self._lake.url
        self.ref = ref

    def __repr__(self) -> str:
        return f"<carbonsink lake {self.url} at {self.ref}>"

    def at(self, ref: str) -> LakeOutputs:
        """The same lake read at ``ref`` (``main`` or a tag)."""
        return LakeOutputs(self.url, ref=ref, storage=self._lake.storage)

    def tags(self, store: str = "sinkmap") -> list[str]:
        """The tags of one of the lake's stores (one per published run), oldest first."""
        return sorted(self._repo(store).list_tags())

    def _repo(self, store: str) -> icechunk.Repository:
        repo = self._lake.open_repo(store)
        if repo is None:
            command = {"features": "ingest", "sinkmap": "infer", "budget": "budget"}.get(
                store, "run"
            )
            raise LakeError(
                f"the lake {self.url} has no {store} store yet; run carbonsink {command} first"
            )
        return repo

    def _session(self, store: str) -> icechunk.Session:
        repo = self._repo(store)
        if self.ref in repo.list_branches():
            return repo.readonly_session(branch=self.ref)
        if self.ref in repo.list_tags():
            return repo.readonly_session(tag=self.ref)
        raise LakeError(
            f"the {store} store of {self.url} has no branch or tag {self.ref!r}; "
            f"use main or one of its tags ({', '.join(self.tags(store)[-3:]) or 'none yet'})"
        )

    # -- gridded outputs --------------------------------------------------------------
    def features(self) -> xr.Dataset:
        """The monthly climate drivers: ingested months only, lazy (Dask) arrays.

        ``cell_area`` (m2) and ``land_fraction`` are coordinates; ``*_clim`` variables have
        a ``month`` dimension (1-12) instead of ``time``.
        """
        return open_features(self._session("features"))

    def members(self) -> list[str]:
        """The emulated members of the sink map (the ensemble groups left out)."""
        store = self._session("sinkmap").store
        return [m for m in members(store) if m not in (ENSEMBLE_MEDIAN, ENSEMBLE_SPREAD)]

    def sinkmap(self, member: str = ENSEMBLE_MEDIAN) -> xr.Dataset:
        """Land and ocean CO2 fluxes at the model grid, mapped months only.

        ``member``: a member's name (``members()``), ``ensemble-median`` (the default) or
        ``ensemble-spread``.

        ``land_flux`` and ``ocean_flux`` are in kg C m-2 s-1 per m2 of grid cell, positive
        into the land / ocean; ``cell_area`` (m2) and ``land_fraction`` are coordinates, so
        ``(ds.land_flux * ds.cell_area).sum(("lat", "lon"))`` is the global land sink in
        kg C s-1.
        """
        session = self._session("sinkmap")
        groups = members(session.store)
        if member not in groups:
            raise LakeError(f"the sink map has no member {member!r}; it has {', '.join(groups)}")
        ds = open_member(session, member)
        # Static fields of the grid: the features store's main has them whatever the ref
        # (a tag names one store's version; the grid of a lake never changes).
        features = self._repo("features").readonly_session(branch="main").store
        for name in ("cell_area", "land_fraction"):
            ds = ds.assign_coords({name: (("lat", "lon"), read_static(features, name))})
        return ds

    # -- tables -----------------------------------------------------------------------
    def table(self, name: str) -> pd.DataFrame:
        """One of the budget store's tables (``TABLES``); its provenance is in ``.attrs``."""
        if name not in TABLES:
            raise LakeError(f"no table {name!r}; the budget store has {', '.join(TABLES)}")
        store = self._session("budget").store
        if name not in zarr.open_group(store, mode="r"):
            raise LakeError(
                f"the budget store of {self.url} has no {name} table at {self.ref}; "
                "run carbonsink budget (budget_12m needs the newest months mapped)"
            )
        frame, attrs = read_table(store, name)
        frame.attrs.update(attrs)
        return frame

    def budget(self) -> pd.DataFrame:
        """The annual global budget in GtC/yr, one row per year.

        EFOS, ELUC, GATM, SOCEAN, SLAND, BIM and their 1-sigma uncertainties.
        """
        return self.table("budget")

    def regions(self, *, monthly: bool = False) -> pd.DataFrame:
        """Regional sinks, annual or monthly.

        A long table: region, group, flux, statistic, value, unit, adjustment.
        """
        return self.table("regions_monthly" if monthly else "regions_annual")


def open_lake(url: str, *, ref: str = "main", storage: dict[str, Any] | None = None) -> LakeOutputs:
    """Open a carbonsink lake's outputs for reading.

    Parameters
    ----------
    url
        Root of the lake: a local path, ``file://``, ``s3://`` or ``gs://``.
    ref
        ``main`` (the latest published outputs) or a tag of a past run.
    storage
        Object-store options, as the ``lake_storage`` setting: ``endpoint_url``,
        ``region``, ``anonymous``.

    Returns
    -------
    LakeOutputs
        ``.features()``, ``.sinkmap()``, ``.budget()``, ``.regions()``, ``.table(name)``.

    Examples
    --------
    >>> import carbonsink
    >>> lake = carbonsink.open_lake("output/lake")  # doctest: +SKIP
    >>> june = lake.sinkmap().sel(time="2024-06")  # doctest: +SKIP
    >>> (june.land_flux * june.cell_area).sum(("lat", "lon"))  # kg C s-1  # doctest: +SKIP
    """
    return LakeOutputs(url, ref=ref, storage=StorageOptions(**(storage or {})))
