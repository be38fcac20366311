"""The ``sinkmap`` store: each member's mapped fluxes, their ensemble median and spread.

One group per member plus the ensemble median and spread (:mod:`carbonsink.lake.flux_store`
lays them out), on the features' grid and time axis with one tile per chunk, so that no two
tiles that replicas write in parallel share a chunk. ``carbonsink infer`` fills it; the
budget and the report read it through :func:`open_sinkmap`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

import icechunk
import numpy as np
import pandas as pd
import zarr

from carbonsink.errors import LakeError
from carbonsink.grid import Tiling
from carbonsink.lake.features_store import (
    DataOrigin,
    FeaturesLayout,
    data_origin,
    open_published_features,
    read_attrs,
    read_static,
)
from carbonsink.lake.flux_store import (
    ENSEMBLE_MEDIAN,
    ENSEMBLE_SPREAD,
    FLUXES,
    FluxLayout,
    ensemble_median,
    member_months,
    members,
    read_flux,
    write_member_flags,
)
from carbonsink.lake.lake import Lake
from carbonsink.targets import PLAUSIBLE_FLUX

#: ``read(month, flux)``: one month of one flux of a sink-map group, on the model grid.
FluxReader = Callable[[pd.Period, str], np.ndarray]


def sinkmap_layout(features_layout: FeaturesLayout) -> FluxLayout:
    """The sink map's layout: the features' grid and time axis, one tile per chunk."""
    t = features_layout.tiling
    return FluxLayout(features_layout.grid, Tiling(t.nlat, t.nlon, t.nlat, t.nlon))


def sinkmap_groups(names: list[str], variant: str, run_id: str) -> dict[str, dict[str, Any]]:
    """The sink map's groups and their attributes: one per member, the median, the spread."""
    attrs = {"variant": variant, "run": run_id}
    groups = {m: {**attrs, "kind": "member"} for m in names}
    groups[ENSEMBLE_MEDIAN] = {**attrs, "kind": "ensemble median over members"}
    groups[ENSEMBLE_SPREAD] = {**attrs, "kind": "ensemble spread: sample standard deviation"}
    return groups


def prepare_store(
    session: icechunk.Session, layout: FluxLayout, groups: dict[str, dict[str, Any]]
) -> None:
    """Create the sink-map store (or check it) and add missing groups.

    Raises
    ------
    LakeError
        The store exists with another grid or tiling.
    """
    root = zarr.open_group(session.store, mode="a", zarr_format=3)
    if "kind" not in root.attrs:
        layout.create(session.store, "sinkmap")
    else:
        have = FluxLayout.from_attrs(dict(root.attrs))
        if have != layout:
            raise LakeError(
                "the lake's sinkmap store has another grid or tiling than its features; "
                "export it and delete it, or use a new lake"
            )
    present = set(members(session.store))
    for name, attrs in groups.items():
        if name not in present:
            layout.add_member(session.store, name, attrs)
        else:
            zarr.open_group(session.store, path=name, mode="r+").attrs.update(attrs)


def check_member_fluxes(
    name: str, month: pd.Period, fluxes: np.ndarray, domains: tuple[np.ndarray, ...]
) -> None:
    """Refuse a member's month with gaps over a flux's domain or implausible magnitudes.

    ``fluxes`` is ``[flux, lat, lon]`` in the order of ``FLUXES``; ``domains`` the cells
    where each flux must be defined (land for SLAND, ocean for SOCEAN).

    Raises
    ------
    LakeError
        Missing cells over the domain, or a flux beyond any plausible value.
    """
    for k, f in enumerate(FLUXES):
        gaps = int(np.count_nonzero(~np.isfinite(fluxes[k]) & domains[k]))
        if gaps:
            raise LakeError(
                f"{name} {f} of {month} has {gaps} missing cells over its domain; "
                "the features of that month are incomplete: re-ingest it"
            )
        big = float(np.nanmax(np.abs(fluxes[k]))) if domains[k].any() else 0.0
        if big > PLAUSIBLE_FLUX:
            raise LakeError(
                f"{name} {f} of {month} reaches {big:.2e} kg m-2 s-1, beyond any "
                "plausible flux; the emulator does not fit these inputs: retrain it"
            )


def ensemble_spread(stack: list[np.ndarray], median: np.ndarray) -> np.ndarray:
    """Sample standard deviation of the members (zero for one member), NaN where the median is."""
    with warnings.catch_warnings():  # all-NaN cells outside a flux's domain
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = (
            np.nanstd(np.stack(stack), axis=0, ddof=1) if len(stack) > 1 else np.zeros_like(median)
        )
    spread[np.isnan(median)] = np.nan
    return spread


def ensemble_and_check(
    session: icechunk.Session,
    layout: FluxLayout,
    names: list[str],
    months: list[pd.Period],
    land_fraction: np.ndarray,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Check every member's map of ``months``, then write their median and spread.

    ``progress(done, total)`` is called after each month. The month flags of every group
    are set at the end, so a failed check leaves no month marked mapped.

    Raises
    ------
    LakeError
        A member's month fails :func:`check_member_fluxes`.
    """
    domains = (land_fraction > 0, land_fraction < 1)
    for done, month in enumerate(months, 1):
        index = layout.month_index(month)
        fields = {
            m: np.stack([read_flux(session.store, m, f, index) for f in FLUXES]) for m in names
        }
        for m, flux in fields.items():
            check_member_fluxes(m, month, flux, domains)
        stack = list(fields.values())
        median = ensemble_median(stack)
        spread = ensemble_spread(stack, median)
        for group, value in ((ENSEMBLE_MEDIAN, median), (ENSEMBLE_SPREAD, spread)):
            for k, f in enumerate(FLUXES):
                a = zarr.open_array(session.store, path=f"{group}/{f}", mode="r+")
                a[index] = value[k].astype(np.float32)
        if progress is not None:
            progress(done, len(months))
    for name in [*names, ENSEMBLE_MEDIAN, ENSEMBLE_SPREAD]:
        write_member_flags(session.store, layout, name, months)


def mapped_months(lake: Lake) -> set[pd.Period]:
    """Months the lake's published sink map holds (its ensemble median's)."""
    repo = lake.open_repo("sinkmap")
    if repo is None:
        return set()
    store = repo.readonly_session("main").store
    if ENSEMBLE_MEDIAN not in members(store):
        return set()
    return set(member_months(store, FluxLayout.from_attrs(read_attrs(store)), ENSEMBLE_MEDIAN))


def months_to_map(
    window: Iterable[pd.Period], mapped: Collection[pd.Period], ingested: Collection[pd.Period]
) -> list[pd.Period]:
    """The months of ``window`` to map: those the sink map lacks, and those ingested now.

    A month ingested again (ERA5T made final, a changed source) may have new drivers, so
    its map is redone even where one exists. ``carbonsink run`` and ``carbonsink nrt``
    both decide what to map by this rule.
    """
    return sorted(m for m in set(window) if m not in mapped or m in ingested)


@dataclass
class SinkMap:
    """A published sink map: store, layout, cell areas, groups and mapped months.

    ``names`` are the members and the ensemble median (the spread is left out: it is not a
    map of fluxes); ``months`` are the median's mapped months.
    """

    store: Any
    layout: FluxLayout
    area: np.ndarray
    names: list[str]
    months: list[pd.Period]
    snapshot: str
    variant: str
    origin: DataOrigin

    @property
    def member_names(self) -> list[str]:
        """The members, without the ensemble median."""
        return [n for n in self.names if n != ENSEMBLE_MEDIAN]

    def reader(self, name: str) -> FluxReader:
        """``read(month, flux)`` of one group."""

        def read(month: pd.Period, flux: str) -> np.ndarray:
            return read_flux(self.store, name, flux, self.layout.month_index(month))

        return read

    def annual_mean(self, year: int, name: str = ENSEMBLE_MEDIAN) -> np.ndarray:
        """Day-weighted annual mean of a group's land + ocean flux (kg C m-2 s-1).

        Cells outside a flux's domain count as zero, so each cell holds the flux it has.
        """
        read = self.reader(name)
        total = np.zeros(self.area.shape, np.float64)
        days = 0
        for month in pd.period_range(f"{year}-01", f"{year}-12", freq="M"):
            both = np.nan_to_num(read(month, FLUXES[0]).astype(np.float64))
            for flux in FLUXES[1:]:
                both = both + np.nan_to_num(read(month, flux).astype(np.float64))
            total = total + both * month.days_in_month
            days += month.days_in_month
        return total / days

    def months_of(self, name: str) -> list[pd.Period]:
        """The mapped months of ``name`` that the median also holds, in order."""
        have = set(member_months(self.store, self.layout, name))
        return [m for m in self.months if m in have]


def open_sinkmap(lake: Lake) -> SinkMap:
    """The lake's published sink map.

    Raises
    ------
    LakeError
        No published sink map, or one without mapped months.
    """
    repo = lake.open_repo("sinkmap")
    if repo is None:
        raise LakeError(f"the lake {lake.url} has no sink map; run carbonsink infer first")
    store = repo.readonly_session("main").store
    layout = FluxLayout.from_attrs(read_attrs(store))
    features, _ = open_published_features(lake)
    names = [m for m in members(store) if m != ENSEMBLE_SPREAD]
    if ENSEMBLE_MEDIAN not in names:
        raise LakeError("the sink map has no ensemble median; run carbonsink infer again")
    months = list(member_months(store, layout, ENSEMBLE_MEDIAN))
    if not months:
        raise LakeError("the sink map holds no mapped month; run carbonsink infer first")
    variant = str(zarr.open_group(store, path=names[0], mode="r").attrs.get("variant", ""))
    return SinkMap(
        store, layout, read_static(features.store, "cell_area"), names, months,
        repo.lookup_branch("main"), variant, data_origin(features.store, months),
    )  # fmt: skip
