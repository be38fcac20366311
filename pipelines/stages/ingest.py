"""``carbonsink ingest``: ERA5 (ARCO-ERA5 layout or CDS files) to the lake's ``features``.

A run validates everything it can before it touches the lake (source metadata, units,
coordinates, time axis, window, lake compatibility), then:

1. on a branch of its own: parts of each month of the window are aggregated in parallel
   on Dask workers, and one task per month finishes it (means, regridding, checks) and
   writes its regions into a forked Icechunk session; the forks are merged in a tree on
   the cluster and committed on the run branch;
2. the climatology: if the store has one, it is kept; if the baseline is complete only
   now, it is computed from the stored drivers; anomalies are then written for every
   month that lacks them, one task per (calendar month, driver);
3. ``main`` is moved to the run branch's tip only if nobody else moved it meanwhile.

A run that fails at any point leaves ``main`` as it was (and removes a store or lake it
created itself).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated

import icechunk
import numpy as np
import pandas as pd
import xarray as xr
import zarr
from distributed import Client

from carbonsink import __version__
from carbonsink.aggregate import MonthAccumulator
from carbonsink.drivers import Driver, required_variables, resolve_drivers
from carbonsink.errors import ConfigError, LakeError
from carbonsink.features import (
    SourceReader,
    accumulate_part,
    anomaly_of,
    check_driver_field,
    climatology_of,
    finalize_month,
    land_mask_for,
    plan_months,
)
from carbonsink.grid import ModelGrid, point_grid_bounds
from carbonsink.lake.features_store import (
    FeaturesLayout,
    era5t_months,
    ingested_months,
    month_sources,
    read_attrs,
    read_layout,
    record_sources,
    set_attrs,
    snapshot_metadata,
    write_flags,
    write_region,
)
from carbonsink.lake.lake import Lake
from carbonsink.landmask import land_fraction
from carbonsink.regrid import ConservativeRegridder
from carbonsink.sources import open_source
from carbonsink.sources.common import final_months
from carbonsink.timeutil import MonthWindow
from pipelines.lake.transaction import StoreTransaction, new_run_id
from pipelines.options import (
    ConfigOpt,
    DaskAddressOpt,
    EndOpt,
    LakeOpt,
    SourceOpt,
    StartOpt,
    echo,
    setting,
    settings,
    split,
)
from pipelines.progress import merge_forks_into
from pipelines.settings import Settings

STORE = "features"


@dataclass
class IngestReport:
    """What an ingest published."""

    lake: str
    store: str
    window: MonthWindow
    months: list[pd.Period]
    era5t_months: list[pd.Period]
    snapshot: str
    climatology: str | None
    anomaly_months: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def ingest_month(
    fork: icechunk.ForkSession,
    parts: list[MonthAccumulator],
    land: np.ndarray | None,
    regridder: ConservativeRegridder,
    drivers: list[Driver],
    index: int,
    label: str,
) -> icechunk.ForkSession:
    """Finish one month on a worker: means, regrid, checks, and its regions of the store.

    Parameters
    ----------
    fork
        Forked session to write into; returned carrying the writes.
    parts
        The month's partial sums (:func:`carbonsink.features.accumulate_part`).
    land
        The source's land-sea mask, for land-domain drivers.
    regridder
        Source grid to model grid.
    drivers
        Drivers in the order of the parts' sums.
    index
        The month's position on the store's time axis.
    label
        The month, for messages.
    """
    fields = regridder.apply(finalize_month(parts, land))
    for driver, field_ in zip(drivers, fields, strict=True):
        check_driver_field(driver, label, field_)
    for driver, field_ in zip(drivers, fields, strict=True):
        write_region(fork, driver.name, index, field_)
    return fork


def climatology_and_anomalies(
    fork: icechunk.ForkSession,
    source: icechunk.Session,
    driver: Driver,
    calendar_month: int,
    baseline: list[int],
    targets: list[int],
) -> icechunk.ForkSession:
    """One driver, one calendar month: climatology (if ``baseline``) and anomalies.

    Reads each needed month of the driver once: the baseline years to average (when the
    climatology is computed now) and the ``targets`` to write anomalies for.

    Parameters
    ----------
    fork
        Forked session to write into.
    source
        Read-only session of the run branch (drivers, and an existing climatology).
    driver
        The driver.
    calendar_month
        1-12.
    baseline
        Store indices of the baseline months of this calendar month; empty to use the
        stored climatology.
    targets
        Store indices of the months that get anomalies.
    """
    arr = zarr.open_array(source.store, path=driver.name, mode="r")
    wanted = sorted(set(baseline) | set(targets))
    stack = np.asarray(arr.get_orthogonal_selection((np.asarray(wanted), slice(None), slice(None))))
    rows = {index: stack[i] for i, index in enumerate(wanted)}
    if baseline:
        clim = climatology_of(np.stack([rows[i] for i in baseline]), nan_allowed=driver.nan_allowed)
        write_region(fork, f"{driver.name}_clim", calendar_month - 1, clim)
    else:
        clim_arr = zarr.open_array(source.store, path=f"{driver.name}_clim", mode="r")
        clim = np.asarray(clim_arr[calendar_month - 1])
    for index in targets:
        write_region(fork, f"{driver.name}_anom", index, anomaly_of(rows[index], clim))
    return fork


def run_ingest(settings: Settings, client: Client) -> IngestReport:
    """Ingest ``settings.start``..``settings.end`` from ``settings.source`` into the lake.

    Raises
    ------
    carbonsink.errors.CarbonsinkError
        Bad input, with a one-line message; the lake is then unchanged.
    """
    t0 = time.perf_counter()
    if not settings.source:
        raise ConfigError("no source: pass --source URL (an ARCO-ERA5 Zarr store or CDS files)")
    window = settings.window()
    grid = ModelGrid(settings.grid.resolution)
    tiling = grid.tiling(settings.grid.tile_lat, settings.grid.tile_lon, settings.grid.chunk_tiles)
    baseline = settings.ingest.baseline
    lake = Lake(settings.lake, settings.lake_storage)
    repo = lake.open_repo(STORE) if lake.info() is not None else None

    # What the store already is decides the drivers and the climatology baseline.
    store_attrs: dict = {}
    if repo is not None:
        main_store = repo.readonly_session("main").store
        layout = read_layout(main_store)
        store_attrs = read_attrs(main_store)
        requested = settings.ingest.drivers
        if requested is not None and tuple(requested) != layout.drivers:
            raise LakeError(
                f"the lake's features store holds drivers {', '.join(layout.drivers)}; an ingest "
                "writes all of them: drop --drivers or use another lake"
            )
        layout.check_compatible(FeaturesLayout(grid, tiling, layout.drivers))
        drivers = resolve_drivers(layout.drivers)
        stored_baseline = store_attrs.get("climatology_baseline")
        if stored_baseline and stored_baseline != str(baseline):
            raise LakeError(
                f"the lake's climatology is over {stored_baseline}, not {baseline}; pass "
                f"--baseline-start/--baseline-end for {stored_baseline} or use another lake"
            )
    else:
        drivers = resolve_drivers(settings.ingest.drivers)
        layout = FeaturesLayout(grid, tiling, tuple(d.name for d in drivers))
    for month in (window.start, window.end, baseline.start, baseline.end):
        layout.month_index(month)  # raises if the store's time axis cannot hold it

    source = open_source(settings.source, settings.source_storage)
    selection = source.select(required_variables(drivers), window)
    regridder = ConservativeRegridder.from_points(
        selection.latitude,
        selection.longitude,
        grid,
        min_valid_fraction=settings.ingest.min_valid_fraction,
    )
    lsm: xr.DataArray | np.ndarray | None = None
    if any(d.domain == "land" for d in drivers) and selection.land_sea_mask is None:
        # No land-sea mask in the source: derive one from the 1 km mask on the source cells.
        lsm = client.submit(
            land_fraction,
            point_grid_bounds(selection.latitude, clip=(-90.0, 90.0)),
            point_grid_bounds(selection.longitude),
        ).result()
    lsm = land_mask_for(selection, drivers, lsm)
    plans = plan_months(selection, drivers)

    run_id = new_run_id()
    notes: list[str] = []
    with StoreTransaction(lake, STORE, run_id) as tx:
        repo, branch = tx.repo, tx.branch
        if tx.created:
            land = client.submit(land_fraction, grid.lat_bounds, grid.lon_bounds).result()
            session = repo.writable_session(branch)
            layout.create(session.store, land)
            session.commit("template", metadata=snapshot_metadata(run=run_id, stage="template"))

        # 1. Monthly drivers of the window: parts of each month aggregate in parallel,
        # one task per month finishes it and writes its regions into a fork.
        months = list(window.months)
        session = repo.writable_session(branch)
        fork = session.fork()
        reader = client.scatter(SourceReader.of(selection), broadcast=True)
        land_f = client.scatter(None if lsm is None else np.asarray(lsm), broadcast=True)
        regridder_f = client.scatter(regridder, broadcast=True)
        shape = (selection.latitude.size, selection.longitude.size)
        futures = []
        for plan in plans:
            parts = [
                client.submit(accumulate_part, reader, r, drivers, shape, pure=False)
                for r in plan.parts
            ]
            futures.append(
                client.submit(
                    ingest_month, fork, parts, land_f, regridder_f, drivers,
                    layout.month_index(plan.month), str(plan.month), pure=False,
                )
            )  # fmt: skip
        merge_forks_into(client, session, futures, f"drivers {window}")
        write_flags(session.store, layout, months, selection.era5t_months)
        record_sources(
            session.store, months, str(selection.attrs["source_url"]),
            product=selection.attrs.get("source_product", ""),
            synthetic=selection.attrs.get("source_synthetic") == "true",
        )  # fmt: skip
        session.commit(
            f"drivers {window}",
            metadata=snapshot_metadata(
                run=run_id, stage="drivers", window=str(window), **selection.attrs
            ),
        )

        # 2. Climatology (computed once, when the baseline is complete) and anomalies: one
        # task per (calendar month, driver) reads each month it needs once.
        session = repo.writable_session(branch)
        have = ingested_months(session.store, layout)
        clim_baseline = read_attrs(session.store).get("climatology_baseline")
        compute_clim = clim_baseline is None and bool(baseline.months.isin(have).all())
        if compute_clim:
            anomaly_months = list(have)
        elif clim_baseline is not None:
            anomaly_months = months
        else:
            anomaly_months = []
            missing = baseline.months.difference(have)
            notes.append(
                f"anomalies wait for the climatology baseline {baseline}: "
                f"{len(missing)} month(s) not ingested yet (first {missing[0]})"
            )
        if anomaly_months:
            written = repo.readonly_session(branch)
            fork = session.fork()
            futures = []
            for cm in range(1, 13):
                base_idx = [layout.month_index(m) for m in baseline.months if m.month == cm]
                targets = [layout.month_index(m) for m in anomaly_months if m.month == cm]
                if not targets and not compute_clim:
                    continue
                for d in drivers:
                    futures.append(
                        client.submit(
                            climatology_and_anomalies, fork, written, d, cm,
                            base_idx if compute_clim else [], targets, pure=False,
                        )
                    )  # fmt: skip
            stage = f"climatology {baseline} and anomalies" if compute_clim else "anomalies"
            merge_forks_into(client, session, futures, stage)
            if compute_clim:
                set_attrs(session.store, climatology_baseline=str(baseline))
                clim_baseline = str(baseline)
            session.commit(
                f"{stage}: {len(anomaly_months)} month(s)",
                metadata=snapshot_metadata(run=run_id, stage=stage),
            )

        # 3. Publish atomically: main moves only if nobody moved it since we branched.
        tip = tx.publish()
    return IngestReport(
        lake=lake.url,
        store=lake.store_location(STORE).url,
        window=window,
        months=months,
        era5t_months=list(selection.era5t_months),
        snapshot=tip,
        climatology=clim_baseline,
        anomaly_months=len(anomaly_months),
        seconds=time.perf_counter() - t0,
        notes=notes,
    )


def months_to_ingest(settings: Settings) -> list[pd.Period]:
    """Months of the window that an ingest of ``settings.source`` would change.

    Those the published features lack, those last ingested from another source, and those
    ingested from preliminary ERA5T data that the source now holds as final. Re-ingesting
    any other month rewrites the same bytes as new chunks, so the lake only grows.
    """
    window = settings.window()
    lake = Lake(settings.lake, settings.lake_storage)
    repo = lake.open_repo(STORE) if lake.info() is not None else None
    if repo is None or not settings.source:
        return list(window.months)
    store = repo.readonly_session("main").store
    layout = read_layout(store)
    ingested = set(ingested_months(store, layout))
    preliminary = set(era5t_months(store, layout))
    source = open_source(settings.source, settings.source_storage)
    final = final_months(source.available())
    origin = month_sources(repo)
    stale = set(stale_months(window.months, ingested, preliminary, final))
    return [m for m in window.months if m in stale or origin.get(m) != source.url]


def stale_months(
    months: Iterable[pd.Period],
    ingested: set[pd.Period],
    preliminary: set[pd.Period],
    final: pd.Period | None,
) -> list[pd.Period]:
    """Of ``months``: those not ingested, and those ingested from ERA5T that are now final.

    ``preliminary`` are the months ingested from ERA5T; ``final`` is the source's newest
    complete month of final ERA5 (None if none).
    """
    return [
        m
        for m in months
        if m not in ingested or (m in preliminary and final is not None and m <= final)
    ]


def describe(report: IngestReport) -> list[str]:
    """Lines summarising an ingest for the terminal."""
    lines = [
        f"ingested {len(report.months)} month(s) {report.window} into {report.store} "
        f"in {report.seconds:.1f} s (snapshot {report.snapshot[:12]}, carbonsink {__version__})",
    ]
    if report.era5t_months:
        lines.append(
            "months with preliminary ERA5T data: " + ", ".join(str(m) for m in report.era5t_months)
        )
    if report.climatology:
        lines.append(
            f"climatology over {report.climatology}; anomalies written for "
            f"{report.anomaly_months} month(s)"
        )
    lines += report.notes
    return lines


def command(
    source: SourceOpt = None,
    lake: LakeOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    grid: Annotated[
        float | None,
        setting(
            "--grid",
            path="grid.resolution",
            help="Model grid spacing in degrees: any divisor of 180 (default 0.25; 0.5 and 1 "
            "are common). The emulator tiles (grid.tile_lat, grid.tile_lon) must fit it.",
        ),
    ] = None,
    baseline_start: Annotated[
        str | None,
        setting(
            "--baseline-start", path="ingest.baseline_start", help="First month of the climatology."
        ),
    ] = None,
    baseline_end: Annotated[
        str | None,
        setting(
            "--baseline-end", path="ingest.baseline_end", help="Last month of the climatology."
        ),
    ] = None,
    drivers: Annotated[
        str | None,
        setting(
            "--drivers", path="ingest.drivers", help="Comma-separated driver names (default: all)."
        ),
    ] = None,
    source_endpoint_url: Annotated[
        str | None,
        setting(
            "--source-endpoint-url",
            path="source_storage.endpoint_url",
            help="S3-compatible endpoint of the source.",
        ),
    ] = None,
    anonymous: Annotated[
        bool | None,
        setting(
            "--anonymous/--no-anonymous",
            path="source_storage.anonymous",
            help="Read the source without credentials (public buckets).",
        ),
    ] = None,
    lake_endpoint_url: Annotated[
        str | None,
        setting(
            "--lake-endpoint-url",
            path="lake_storage.endpoint_url",
            help="S3-compatible endpoint of the lake.",
        ),
    ] = None,
    dask_address: DaskAddressOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Ingest ERA5 into the lake: monthly drivers on the model grid, with Dask.

    Reads ARCO-ERA5-layout Zarr stores and Copernicus data store downloads (GRIB, new or
    legacy NetCDF) of the hourly reanalysis, the daily statistics (daily mean), the
    monthly averaged reanalysis or the monthly means by hour of day; the product is
    recognised from the files, and its accumulations (precipitation, radiation) are read
    by its own period. Fields are averaged to months on their own grid, regridded
    conservatively to the model grid, and written to the lake's `features` store with
    derived drivers (VPD, wind speed) and anomalies against a climatology. Re-ingesting a
    month rewrites identical bytes; a failed run publishes nothing. Example:

    \b
        carbonsink ingest --anonymous --lake s3://my-bucket/lake \\
            --source gs://gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3 \\
            --start 2024-01 --end 2024-12
    """
    from cluster.dask import dask_client

    s = settings(
        config,
        source=source,
        lake=lake,
        start=start,
        end=end,
        grid={"resolution": grid},
        ingest={
            "baseline_start": baseline_start,
            "baseline_end": baseline_end,
            "drivers": split(drivers),
        },
        source_storage={"endpoint_url": source_endpoint_url, "anonymous": anonymous},
        lake_storage={"endpoint_url": lake_endpoint_url},
        dask={"address": dask_address},
    )
    with dask_client(s.dask) as client:
        report = run_ingest(s, client)
    for line in describe(report):
        echo(line)
    echo(f"features: {report.store}")
