"""``carbonsink labels``: training targets in the lake's ``labels`` store.

By default the reference process models run over the ``features`` store on Dask, one task
per month, up to the labels' cut-off month (process models lag the forcing, so the newest
months stay unlabelled). With ``--nbp`` / ``--fgco2`` a TRENDY DGVM and/or a GOBM file is
imported instead, as one member, regridded conservatively month by month. Writes go to a
run branch and are published by compare-and-swap, like every stage.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

import icechunk
import numpy as np
import pandas as pd
import zarr
from distributed import Client

from carbonsink.co2 import co2_for
from carbonsink.errors import ConfigError, LakeError
from carbonsink.lake.features_store import (
    FeaturesLayout,
    ingested_months,
    open_published_features,
    read_attrs,
    read_fields,
    read_static,
    snapshot_metadata,
    write_region,
)
from carbonsink.lake.flux_store import FluxLayout, member_attrs, members, write_member_flags
from carbonsink.lake.lake import Lake
from carbonsink.process import MonthInputs, ReferenceMember, resolve_members
from carbonsink.regrid import ConservativeRegridder
from carbonsink.targets import TargetFile, open_target, target_on_grid
from carbonsink.timeutil import parse_month
from pipelines.lake.transaction import StoreTransaction, new_run_id
from pipelines.options import (
    ConfigOpt,
    DaskAddressOpt,
    LakeOpt,
    echo,
    setting,
    settings,
    split,
)
from pipelines.progress import merge_forks_into
from pipelines.settings import Settings

STORE = "labels"


@dataclass
class LabelsReport:
    """What a labels run published."""

    store: str
    members: list[str]
    months: list[pd.Period]
    snapshot: str
    seconds: float


def _climatology(store: icechunk.IcechunkStore, names: Sequence[str]) -> dict[str, np.ndarray]:
    return {n: np.asarray(zarr.open_array(store, path=f"{n}_clim", mode="r")[:]) for n in names}


def prepare_member(
    features: icechunk.Session, member: ReferenceMember, land_fraction: np.ndarray
) -> dict[str, dict[str, np.ndarray]]:
    """A member's derived fields from the 12-month climatology (runs on a worker)."""
    return member.prepare(_climatology(features.store, member.drivers), land_fraction)


def month_inputs(
    features: icechunk.Session,
    names: Sequence[str],
    index: int,
    month: pd.Period,
    land_fraction: np.ndarray,
) -> MonthInputs:
    """One month of drivers and their climatology from the features store."""
    fields = read_fields(features.store, names, index)
    clim = read_fields(features.store, [f"{n}_clim" for n in names], month.month - 1)
    return MonthInputs(
        fields,
        {n: clim[f"{n}_clim"] for n in names},
        land_fraction,
        float(co2_for([month]).ppm[0]),
        month.month,
    )


def reference_month(
    fork: icechunk.ForkSession,
    features: icechunk.Session,
    members_: list[ReferenceMember],
    states: list[Mapping[str, Mapping[str, np.ndarray]]],
    index: int,
    month: str,
    land_fraction: np.ndarray,
) -> icechunk.ForkSession:
    """Run every member for one month and write its fluxes (on a worker)."""
    m = pd.Period(month, freq="M")
    names = list(dict.fromkeys(n for mem in members_ for n in mem.drivers))
    inputs = month_inputs(features, names, index, m, land_fraction)
    for member, state in zip(members_, states, strict=True):
        land, ocean = member.fluxes(inputs, state)
        write_region(fork, f"{member.name}/land_flux", index, land)
        write_region(fork, f"{member.name}/ocean_flux", index, ocean)
    return fork


def import_month(
    fork: icechunk.ForkSession,
    targets: list[TargetFile],
    regridders: list[ConservativeRegridder],
    member: str,
    index: int,
    month: str,
    land_fraction: np.ndarray,
) -> icechunk.ForkSession:
    """Regrid one month of imported target files and write it (on a worker)."""
    m = pd.Period(month, freq="M")
    for t, r in zip(targets, regridders, strict=True):
        write_region(fork, f"{member}/{t.flux_name}", index, target_on_grid(t, m, r, land_fraction))
    return fork


def _member_specs(
    settings: Settings, layout: FeaturesLayout
) -> tuple[list[ReferenceMember], list[TargetFile], dict[str, dict]]:
    """What to write: reference members or imported targets, with their attributes."""
    lab = settings.labels
    if lab.nbp or lab.fgco2:
        if not lab.member:
            raise ConfigError(
                "imported targets need a member name: pass --member, e.g. CLASSIC or CLASSIC+NorESM"
            )
        targets = []
        if lab.nbp:
            targets.append(open_target(lab.nbp, "nbp"))
        if lab.fgco2:
            targets.append(open_target(lab.fgco2, "fgco2"))
        attrs = {
            lab.member: {
                "source": "imported",
                "files": {t.kind: t.path for t in targets},
                "calendars": {t.kind: t.calendar for t in targets},
                "description": "TRENDY / GOBM output regridded conservatively",
            }
        }
        return [], targets, attrs
    refs = resolve_members(lab.members)
    missing = sorted({n for r in refs for n in r.drivers} - set(layout.drivers))
    if missing:
        raise LakeError(
            f"the features store lacks driver(s) {', '.join(missing)} that the reference "
            "models need; ingest them into a new lake"
        )
    attrs = {
        r.name: {
            "source": "carbonsink reference process models",
            "description": r.description,
            "land_model": r.land.name,
            "ocean_model": r.ocean.name,
            "parameters": {"land": r.land.parameters(), "ocean": r.ocean.parameters()},
        }
        for r in refs
    }
    return refs, [], attrs


def run_labels(settings: Settings, client: Client) -> LabelsReport:
    """Write labels for every ingested month up to ``settings.labels.end``.

    Raises
    ------
    carbonsink.errors.CarbonsinkError
        Bad input, with a one-line message; the lake is then unchanged.
    """
    t0 = time.perf_counter()
    lake = Lake(settings.lake, settings.lake_storage)
    features, layout = open_published_features(lake)
    end = parse_month(settings.labels.end, what="labels end month")
    refs, targets, attrs = _member_specs(settings, layout)
    months = [m for m in ingested_months(features.store, layout) if m <= end]
    if targets:
        available = set(targets[0].months)
        for t in targets[1:]:
            available &= set(t.months)
        months = [m for m in months if m in available]
    if not months:
        raise ConfigError(
            f"no ingested month up to {end} to label; ingest earlier months or move --labels-end"
        )
    flayout = FluxLayout(layout.grid, layout.tiling, layout.time_axis)
    run_id = new_run_id()
    with StoreTransaction(lake, STORE, run_id) as tx:
        session = tx.session()
        if tx.created:
            flayout.create(session.store, "labels")
        else:
            have = FluxLayout.from_attrs(read_attrs(session.store))
            if have.grid != flayout.grid or have.tiling != flayout.tiling:
                raise LakeError(
                    "the labels store is on another grid or tiling than the features store; "
                    "use a new lake"
                )
        existing = set(members(session.store))
        for name, a in attrs.items():
            if name in existing:
                if member_attrs(session.store, name) != _jsonable(a):
                    raise LakeError(
                        f"member {name!r} already exists in the labels store with other "
                        "settings; import under another --member name"
                    )
            else:
                flayout.add_member(session.store, name, a)
        if session.has_uncommitted_changes:  # a fork needs a clean session
            session.commit("members", metadata=snapshot_metadata(run=run_id, stage="members"))

        session = tx.session()
        fork = session.fork()
        land = read_static(features.store, "land_fraction")
        land_f = client.scatter(land, broadcast=True)
        futures = []
        if refs:
            states = [client.submit(prepare_member, features, r, land_f) for r in refs]
            for m in months:
                futures.append(
                    client.submit(
                        reference_month, fork, features, refs, states,
                        layout.month_index(m), str(m), land_f, pure=False,
                    )
                )  # fmt: skip
            what = f"reference models ({', '.join(r.name for r in refs)})"
        else:
            mvf = settings.ingest.min_valid_fraction
            regridders = client.scatter(
                [t.regridder(layout.grid, mvf) for t in targets], broadcast=True
            )
            for m in months:
                futures.append(
                    client.submit(
                        import_month, fork, targets, regridders, settings.labels.member,
                        layout.month_index(m), str(m), land_f, pure=False,
                    )
                )  # fmt: skip
            what = f"import {settings.labels.member}"
        merge_forks_into(client, session, futures, f"labels: {what}")
        for name in attrs:
            write_member_flags(session.store, flayout, name, months)
        session.commit(
            f"labels {months[0]}..{months[-1]}",
            metadata=snapshot_metadata(run=run_id, stage="labels", members=list(attrs)),
        )
        tip = tx.publish()
    return LabelsReport(
        store=lake.store_location(STORE).url,
        members=list(attrs),
        months=months,
        snapshot=tip,
        seconds=time.perf_counter() - t0,
    )


def _jsonable(a: dict) -> dict:
    return snapshot_metadata(**a)


def describe(report: LabelsReport) -> list[str]:
    """Lines summarising a labels run for the terminal."""
    return [
        f"labelled {len(report.months)} month(s) {report.months[0]}..{report.months[-1]} for "
        f"{', '.join(report.members)} into {report.store} in {report.seconds:.1f} s "
        f"(snapshot {report.snapshot[:12]})"
    ]


def command(
    lake: LakeOpt = None,
    labels_end: Annotated[
        str | None,
        setting(
            "--labels-end",
            path="labels.end",
            help="Last labelled month, YYYY-MM (newer months stay unlabelled).",
        ),
    ] = None,
    members: Annotated[
        str | None,
        setting(
            "--members",
            path="labels.members",
            help="Comma-separated reference members (default: all).",
        ),
    ] = None,
    nbp: Annotated[
        str | None, setting("--nbp", path="labels.nbp", help="Import a TRENDY S2 nbp file instead.")
    ] = None,
    fgco2: Annotated[
        str | None,
        setting("--fgco2", path="labels.fgco2", help="Import a GOBM / data-product fgco2 file."),
    ] = None,
    member: Annotated[
        str | None,
        setting("--member", path="labels.member", help="Member name for imported files."),
    ] = None,
    dask_address: DaskAddressOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write training labels (land and ocean CO2 fluxes) to the lake's `labels` store.

    By default the reference process models (a light-use-efficiency land model and a
    bulk-flux ocean model, three parameter sets) run over the ingested features on Dask.
    With --nbp/--fgco2, a TRENDY DGVM and/or GOBM file is imported as one member instead:

    \b
        carbonsink labels --nbp CLASSIC_S2_nbp.nc --fgco2 NorESM_fgco2.nc --member CLASSIC+NorESM
    """
    from cluster.dask import dask_client

    s = settings(
        config,
        lake=lake,
        labels={"end": labels_end, "members": split(members), "nbp": nbp, "fgco2": fgco2,
                "member": member},
        dask={"address": dask_address},
    )  # fmt: skip
    with dask_client(s.dask) as client:
        report = run_labels(s, client)
    for line in describe(report):
        echo(line)
    echo(f"labels: {report.store}")
