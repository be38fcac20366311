"""The ``carbonsink`` command line.

Every option can also come from the environment (the variable is shown in ``--help``) or
from a YAML file given with ``--config``; flags win over the environment, which wins over
the file, which wins over the defaults.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.exceptions import TyperException

from carbonsink import __version__
from carbonsink.errors import CarbonsinkError, Interrupted, brief, storage_problem

if TYPE_CHECKING:
    from carbonsink.config import Settings

HELP = """\
carbonsink maps last month's land and ocean CO2 sinks and closes the global carbon budget:
Dask turns ERA5 into monthly climate drivers, Ray Serve runs CNN emulators of vegetation and
ocean models over them, and the budget EFOS + ELUC = GATM + SOCEAN + SLAND + BIM follows.

Examples (each command's --help has its own):

\b
    # the whole chain on synthetic sample data (a demonstration, not ERA5)
    carbonsink run --out output
    # your own ERA5 from the Copernicus data store (docs/use-your-own-data.md)
    carbonsink ingest --source 'era5/*.nc' --lake lake --start 2015-01 --end 2024-12
    carbonsink labels --lake lake
    carbonsink train --lake lake
    carbonsink infer --lake lake --start 2019-01 --end 2024-12
    carbonsink budget --lake lake
    carbonsink report --lake lake

Every option can also come from a CARBONSINK_* variable (shown in each --help) or a YAML
file (--config). Exit codes: 0 done, 2 bad input or a problem to fix (one line says which),
1 unexpected, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

app = typer.Typer(
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", envvar="CARBONSINK_CONFIG", help="YAML settings file."),
]
DaskAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--dask-address",
        envvar="CARBONSINK_DASK__ADDRESS",
        help="Dask scheduler to use, e.g. tcp://10.0.0.5:8786 (default: a local cluster).",
    ),
]
NoaaMonthlyOpt = Annotated[
    str | None,
    typer.Option(
        "--noaa-monthly",
        envvar="CARBONSINK_BUDGET__NOAA_MONTHLY",
        help="A current NOAA co2_mm_gl.csv for the 12-month GATM (default: the packaged one).",
    ),
]
StartOpt = Annotated[
    str | None, typer.Option("--start", envvar="CARBONSINK_START", help="First month, YYYY-MM.")
]
EndOpt = Annotated[
    str | None, typer.Option("--end", envvar="CARBONSINK_END", help="Last month, YYYY-MM.")
]


def _settings(config: Path | None, **overrides: Any) -> Settings:
    from carbonsink.config import load_settings, unknown_variables

    for name in unknown_variables():
        typer.echo(
            f"warning: {name} is not a carbonsink setting and is ignored "
            "(docs/configuration.md lists them)",
            err=True,
        )
    return load_settings(config, **overrides)


def _echo(line: str) -> None:
    typer.echo(line)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True)
    ] = False,
) -> None:
    if version:
        _echo(f"carbonsink {__version__}")
        raise typer.Exit()


@app.command("sample-data")
def sample_data(
    out: Annotated[str, typer.Option("--out", help="Where to write the Zarr store (path or URL).")],
    # The sample's window is the `sample` section's (CARBONSINK_SAMPLE__START/END, read by
    # the settings), not the window of the commands that read a source (CARBONSINK_START).
    start: Annotated[
        str | None,
        typer.Option("--start", help="First month, YYYY-MM (or CARBONSINK_SAMPLE__START)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Last month, YYYY-MM (or CARBONSINK_SAMPLE__END)."),
    ] = None,
    resolution: Annotated[
        float | None, typer.Option("--resolution", help="Grid spacing in degrees (ERA5: 0.25).")
    ] = None,
    step: Annotated[
        str | None, typer.Option("--step", help="Time step: 1h, 6h, 1D or 1MS (monthly).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the random parts.")] = None,
    era5t_months: Annotated[
        int | None, typer.Option("--era5t-months", help="Newest months flagged as ERA5T.")
    ] = None,
    zarr_format: Annotated[
        int | None, typer.Option("--zarr-format", help="2 (as ARCO-ERA5) or 3.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing store.")
    ] = False,
    dask_address: DaskAddressOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write synthetic ERA5-like data in exactly the ARCO-ERA5 layout.

    The fields are physically plausible (seasons, land/ocean contrast from the real land
    mask, a diurnal cycle, ENSO with warm phases in 2015/16 and 2023/24, droughts and heat
    waves) and deterministic by seed. Example:

    \b
        carbonsink sample-data --out era5.zarr --start 2020-01 --end 2020-12 --step 1D
    """
    from cluster.dask import dask_client
    from pipelines.stages.sample_data import run_sample_data, spec_from_settings

    s = _settings(
        config,
        sample={
            "start": start,
            "end": end,
            "resolution": resolution,
            "step": step,
            "seed": seed,
            "era5t_months": era5t_months,
            "zarr_format": zarr_format,
        },
        dask={"address": dask_address},
    )
    spec = spec_from_settings(s.sample)
    with dask_client(s.dask) as client:
        report = run_sample_data(spec, out, client, overwrite=overwrite)
    _echo(
        f"wrote {report.steps} time steps ({spec.window}, step {spec.step}, "
        f"{spec.resolution} deg) in {report.seconds:.1f} s"
    )
    _echo(f"sample data: {report.url}")


@app.command()
def ingest(
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            envvar="CARBONSINK_SOURCE",
            help="ERA5 source: an ARCO-ERA5-layout Zarr store (file://, s3://, gs://, memory://) "
            "or CDS GRIB/NetCDF files (a path or a glob).",
        ),
    ] = None,
    lake: Annotated[
        str | None, typer.Option("--lake", envvar="CARBONSINK_LAKE", help="Root URL of the lake.")
    ] = None,
    start: StartOpt = None,
    end: EndOpt = None,
    grid: Annotated[
        float | None,
        typer.Option(
            "--grid",
            envvar="CARBONSINK_GRID__RESOLUTION",
            help="Model grid spacing in degrees: any divisor of 180 (default 0.25; 0.5 and 1 "
            "are common). The emulator tiles (grid.tile_lat, grid.tile_lon) must fit it.",
        ),
    ] = None,
    baseline_start: Annotated[
        str | None, typer.Option("--baseline-start", help="First month of the climatology.")
    ] = None,
    baseline_end: Annotated[
        str | None, typer.Option("--baseline-end", help="Last month of the climatology.")
    ] = None,
    drivers: Annotated[
        str | None, typer.Option("--drivers", help="Comma-separated driver names (default: all).")
    ] = None,
    source_endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--source-endpoint-url",
            envvar="CARBONSINK_SOURCE_STORAGE__ENDPOINT_URL",
            help="S3-compatible endpoint of the source.",
        ),
    ] = None,
    anonymous: Annotated[
        bool | None,
        typer.Option(
            "--anonymous/--no-anonymous",
            help="Read the source without credentials (public buckets).",
        ),
    ] = None,
    lake_endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--lake-endpoint-url",
            envvar="CARBONSINK_LAKE_STORAGE__ENDPOINT_URL",
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
    from pipelines.stages.ingest import describe, run_ingest

    s = _settings(
        config,
        source=source,
        lake=lake,
        start=start,
        end=end,
        grid={"resolution": grid},
        ingest={
            "baseline_start": baseline_start,
            "baseline_end": baseline_end,
            "drivers": drivers.split(",") if drivers else None,
        },
        source_storage={"endpoint_url": source_endpoint_url, "anonymous": anonymous},
        lake_storage={"endpoint_url": lake_endpoint_url},
        dask={"address": dask_address},
    )
    with dask_client(s.dask) as client:
        report = run_ingest(s, client)
    for line in describe(report):
        _echo(line)
    _echo(f"features: {report.store}")


LakeOpt = Annotated[
    str | None, typer.Option("--lake", envvar="CARBONSINK_LAKE", help="Root URL of the lake.")
]

HoldoutStartOpt = Annotated[
    str | None,
    typer.Option(
        "--holdout-start",
        envvar="CARBONSINK_EMULATOR__HOLDOUT_START",
        help="First held-out month (never trained on; scored by evaluate).",
    ),
]
HoldoutEndOpt = Annotated[
    str | None,
    typer.Option(
        "--holdout-end", envvar="CARBONSINK_EMULATOR__HOLDOUT_END", help="Last held-out month."
    ),
]


@app.command()
def labels(
    lake: LakeOpt = None,
    labels_end: Annotated[
        str | None,
        typer.Option(
            "--labels-end",
            envvar="CARBONSINK_LABELS__END",
            help="Last labelled month, YYYY-MM (newer months stay unlabelled).",
        ),
    ] = None,
    members: Annotated[
        str | None,
        typer.Option("--members", help="Comma-separated reference members (default: all)."),
    ] = None,
    nbp: Annotated[
        str | None, typer.Option("--nbp", help="Import a TRENDY S2 nbp file instead.")
    ] = None,
    fgco2: Annotated[
        str | None, typer.Option("--fgco2", help="Import a GOBM / data-product fgco2 file.")
    ] = None,
    member: Annotated[
        str | None, typer.Option("--member", help="Member name for imported files.")
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
    from pipelines.stages.labels import describe, run_labels

    s = _settings(
        config,
        lake=lake,
        labels={
            "end": labels_end,
            "members": members.split(",") if members else None,
            "nbp": nbp,
            "fgco2": fgco2,
            "member": member,
        },
        dask={"address": dask_address},
    )
    with dask_client(s.dask) as client:
        report = run_labels(s, client)
    for line in describe(report):
        _echo(line)
    _echo(f"labels: {report.store}")


@app.command()
def train(
    lake: LakeOpt = None,
    members: Annotated[
        str | None,
        typer.Option("--members", help="Comma-separated members to train (default: all)."),
    ] = None,
    holdout_start: HoldoutStartOpt = None,
    holdout_end: HoldoutEndOpt = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Training epochs.")] = None,
    crops_per_month: Annotated[
        int | None, typer.Option("--crops-per-month", help="Tiles sampled per month.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda[:N].")] = None,
    compare_supervised: Annotated[
        bool | None,
        typer.Option(
            "--compare-supervised/--no-compare-supervised",
            help="Also train supervised-only baselines for the skill report.",
        ),
    ] = None,
    dask_address: DaskAddressOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Train one CNN emulator per member (semi-supervised) into the lake's `models` store.

    Tiles of the labelled months outside the held-out window are the supervised data; the
    months with drivers but no labels feed a mean-teacher consistency loss. Runs on the GPU
    when there is one. Run `carbonsink labels` first.
    """
    from cluster.dask import dask_client
    from pipelines.stages.train import run_train

    s = _settings(
        config,
        lake=lake,
        emulator={
            "members": members.split(",") if members else None,
            "holdout_start": holdout_start,
            "holdout_end": holdout_end,
            "epochs": epochs,
            "crops_per_month": crops_per_month,
            "seed": seed,
            "device": device,
            "compare_supervised": compare_supervised,
        },
        dask={"address": dask_address},
    )
    with dask_client(s.dask) as client:
        report = run_train(s, client)
    for line in report.lines:
        _echo(line)
    _echo(f"trained {len(report.checkpoints)} emulator(s) in {report.seconds:.0f} s")
    _echo(f"models: {report.store}")


@app.command()
def evaluate(
    lake: LakeOpt = None,
    holdout_start: HoldoutStartOpt = None,
    holdout_end: HoldoutEndOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Skill report of the trained emulators on the held-out months.

    Relative error of the global annual land and ocean totals and per-cell monthly R2, per
    member, for the ensemble median and for the supervised-only baselines; written to
    LAKE/reports/skill-<run>/ (skill.json, skill.md, map.png, scatter.png).
    """
    from pipelines.stages.evaluate import run_evaluate

    s = _settings(
        config,
        lake=lake,
        emulator={"holdout_start": holdout_start, "holdout_end": holdout_end},
    )
    report = run_evaluate(s)
    for line in report.lines:
        _echo(line)
    _echo(f"evaluated in {report.seconds:.0f} s")
    for f in report.files:
        _echo(f"report: {f}")


RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        envvar="CARBONSINK_RAY__ADDRESS",
        help="Ray cluster to use, e.g. ray://head:10001 or auto (default: a local Ray).",
    ),
]
WithReferenceOpt = Annotated[
    bool | None,
    typer.Option(
        "--with-reference/--without-reference",
        envvar="CARBONSINK_SERVE__WITH_REFERENCE",
        help="Map the reference members too when the lake has imported TRENDY/GOBM members "
        "(by default those alone are the ensemble).",
    ),
]
VariantOpt = Annotated[
    str | None,
    typer.Option(
        "--variant",
        envvar="CARBONSINK_SERVE__VARIANT",
        help="Emulators to use: mean-teacher (default) or supervised.",
    ),
]


@app.command()
def infer(
    lake: LakeOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    ray_address: RayAddressOpt = None,
    variant: VariantOpt = None,
    with_reference: WithReferenceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Map a window of months at the model grid through the emulator's Ray Serve app.

    Every tile of every member and month is streamed through the application (batched on
    the GPU when replicas have one), written to the lake's sinkmap store with the
    ensemble median and spread, checked, and published in one transaction. Example:

    \b
        carbonsink infer --lake output/lake --start 2024-01 --end 2024-12
    """
    from pipelines.stages.infer import run_infer

    s = _settings(
        config, lake=lake, start=start, end=end, ray={"address": ray_address},
        serve={"variant": variant, "with_reference": with_reference},
    )  # fmt: skip
    report = run_infer(s)
    for line in report.lines:
        _echo(line)
    _echo(f"sink map: {report.store}")


@app.command()
def backfill(
    source: Annotated[
        str | None,
        typer.Option("--source", envvar="CARBONSINK_SOURCE", help="ERA5 source (as for ingest)."),
    ] = None,
    lake: LakeOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    partition_months: Annotated[
        int | None,
        typer.Option(
            "--partition-months",
            envvar="CARBONSINK_PARTITION_MONTHS",
            help="Months per unit of work (default 12: calendar years).",
        ),
    ] = None,
    tile_bands: Annotated[
        int | None,
        typer.Option(
            "--tile-bands",
            envvar="CARBONSINK_TILE_BANDS",
            help="Bands of tile rows a partition is mapped in, one unit each (default 3).",
        ),
    ] = None,
    dask_address: DaskAddressOpt = None,
    ray_address: RayAddressOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Ingest and map a long window with the lake's emulators, resumably; then the budget.

    The window is planned as units, recorded in the lake before any work: an ingest unit
    per partition of months, then per partition a map unit per band of tile rows and a
    publish unit. Each unit commits on its own and is marked done when it has; readers see
    a partition's months when its publish unit has run. Killed and started again with the
    same arguments, it resumes after the done units (carbonsink status shows the plan). One
    driver per lake at a time. The lake needs trained emulators (carbonsink labels + train,
    or a first carbonsink run). Example:

    \b
        carbonsink backfill --source era5.zarr --lake s3://bucket/carbonsink \\
            --start 2015-01 --end 2024-12
    """
    from cluster.dask import dask_client
    from pipelines.flows.backfill import run_backfill

    s = _settings(
        config, source=source, lake=lake, start=start, end=end,
        partition_months=partition_months, tile_bands=tile_bands,
        dask={"address": dask_address}, ray={"address": ray_address},
    )  # fmt: skip
    with dask_client(s.dask) as client:
        report = run_backfill(s, client)
    _echo(
        f"backfill plan {report.plan}: {len(report.partitions)} partition(s); "
        f"{report.done_before} unit(s) done before, {report.units_run} run now, in "
        f"{report.seconds:.0f} s"
    )
    for label, path in report.outputs:
        _echo(f"{label + ':':14s}{path}")


@app.command()
def status(lake: LakeOpt = None, config: ConfigOpt = None) -> None:
    """Show the lake's recorded plans (backfills), their progress, and who holds the lake.

    Example:

    \b
        carbonsink status --lake s3://bucket/carbonsink
    """
    from pipelines.lake.status import status_lines

    for line in status_lines(_settings(config, lake=lake)):
        _echo(line)


@app.command()
def compact(
    lake: LakeOpt = None,
    keep_days: Annotated[
        float,
        typer.Option(
            "--keep-days",
            envvar="CARBONSINK_COMPACT_KEEP_DAYS",
            help="History newer than this many days is kept.",
        ),
    ] = 30.0,
    config: ConfigOpt = None,
) -> None:
    """Drop the lake's history older than --keep-days and delete what only it used.

    Snapshots and run tags older than that go; every branch's tip (main, an unfinished
    backfill's) stays, and so do objects younger than an hour. Holds the lake's run lock.

    Example:

    \b
        carbonsink compact --lake s3://bucket/carbonsink --keep-days 30
    """
    from carbonsink.lake.lake import Lake
    from pipelines.lake.compact import run_compact

    s = _settings(config, lake=lake)
    done = run_compact(Lake(s.lake, s.lake_storage), keep_days)
    total = sum(c.bytes for c in done)
    _echo(f"compacted {len(done)} store(s) of {s.lake}: {total / 1e9:.3f} GB freed")


@app.command()
def nrt(
    source: Annotated[
        str | None,
        typer.Option("--source", envvar="CARBONSINK_SOURCE", help="ERA5 source (as for ingest)."),
    ] = None,
    lake: LakeOpt = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--end",
            envvar="CARBONSINK_END",
            help="Newest month to treat as complete, YYYY-MM (default: the source's newest).",
        ),
    ] = None,
    noaa_monthly: NoaaMonthlyOpt = None,
    dask_address: DaskAddressOpt = None,
    ray_address: RayAddressOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Map the source's newest complete months and update this year's budget.

    The 12 months ending with the newest complete month of the source (from ARCO-ERA5's
    valid_time_stop_era5t) are brought into the lake: months not yet ingested, and ERA5T
    months the source now holds as final ERA5, are ingested and mapped; then the budget
    is rebuilt, whose 12-month table ends with the near-real-time budget. A run with nothing
    new does nothing, so it can run daily from a scheduler. Example:

    \b
        carbonsink nrt --source gs://bucket/era5.zarr --lake s3://bucket/carbonsink \\
            --noaa-monthly co2_mm_gl.csv
    """
    from cluster.dask import dask_client
    from pipelines.flows.nrt import run_nrt

    s = _settings(
        config, source=source, lake=lake, end=end, budget={"noaa_monthly": noaa_monthly},
        dask={"address": dask_address}, ray={"address": ray_address},
    )  # fmt: skip
    with dask_client(s.dask) as client:
        report = run_nrt(s, client)
    p = report.plan
    _echo(
        f"nrt {p.window}: ingested {len(p.ingest)}, mapped {len(p.infer)} month(s) in "
        f"{report.seconds:.0f} s"
    )
    for label, path in report.outputs:
        _echo(f"{label + ':':14s}{path}")


@app.command()
def budget(
    lake: LakeOpt = None,
    gcb: Annotated[
        str | None,
        typer.Option(
            "--gcb",
            envvar="CARBONSINK_BUDGET__GCB",
            help="GCB release name (GCB2025v1.0, GCB2024v1.0), workbook .xlsx or "
            "<release>_global_carbon_budget.csv (default: the newest packaged).",
        ),
    ] = None,
    reference_start: Annotated[
        int | None,
        typer.Option(
            "--reference-start",
            envvar="CARBONSINK_BUDGET__REFERENCE_START",
            help="First year of the bias-adjustment window.",
        ),
    ] = None,
    reference_end: Annotated[
        int | None,
        typer.Option(
            "--reference-end",
            envvar="CARBONSINK_BUDGET__REFERENCE_END",
            help="Last year of the bias-adjustment window.",
        ),
    ] = None,
    statistic: Annotated[
        str | None,
        typer.Option("--statistic", help="GCB per-model statistic to match: median or mean."),
    ] = None,
    extension: Annotated[
        str | None,
        typer.Option("--extension", help="EFOS/ELUC after the release: persistence or trend."),
    ] = None,
    emissions: Annotated[
        str | None,
        typer.Option("--emissions", help="CSV of year,EFOS,ELUC (GtC/yr) overriding the release."),
    ] = None,
    noaa_monthly: NoaaMonthlyOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Build the global carbon budget from the lake's sink map.

    SLAND and SOCEAN from the emulated map (adjusted to the GCB release over the reference
    window), GATM from NOAA, EFOS and ELUC from the release, BIM as the residual, with 1-sigma
    uncertainties. Tables go to the lake (published in one transaction) and are exported as
    Parquet and CSV. Example:

    \b
        carbonsink budget --lake output/lake --reference-start 2019 --reference-end 2022
    """
    from pipelines.stages.budget import run_budget

    s = _settings(
        config, lake=lake,
        budget={"gcb": gcb, "reference_start": reference_start, "reference_end": reference_end,
                "statistic": statistic, "extension": extension, "emissions": emissions,
                "noaa_monthly": noaa_monthly},
    )  # fmt: skip
    report = run_budget(s)
    for line in report.lines:
        _echo(line)
    _echo(f"tables: {report.store}")
    for path in report.exports:
        _echo(f"export: {path}")


@app.command()
def report(lake: LakeOpt = None, config: ConfigOpt = None) -> None:
    """Draw the figures and the one-page HTML report of the lake's published budget.

    The sink anomaly map of the newest year, the budget as stacked bars, the GATM history
    and the regional anomalies, with the tables and their provenance. Example:

    \b
        carbonsink report --lake output/lake
    """
    from pipelines.stages.report import run_report

    out = run_report(_settings(config, lake=lake))
    for path in out.files:
        _echo(f"report: {path}")


@app.command()
def export(
    lake: LakeOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    out: Annotated[str, typer.Option("--out", help="File (NetCDF) or store path/URL (Zarr).")] = "",
    fmt: Annotated[
        str, typer.Option("--format", help="netcdf or zarr (plain Zarr v3).")
    ] = "netcdf",
    config: ConfigOpt = None,
) -> None:
    """Export a window of the sink map (members, median, spread) as NetCDF or Zarr v3.

    Example:

    \b
        carbonsink export --lake output/lake --start 2024-01 --end 2024-12 --out sinks-2024.nc
    """
    from pipelines.stages.export import run_export

    if not out:
        raise typer.BadParameter("pass --out PATH", param_hint="--out")
    report = run_export(_settings(config, lake=lake, start=start, end=end), out, fmt)
    _echo(
        f"exported {report.months} month(s) of {', '.join(report.members)} in "
        f"{report.seconds:.1f} s"
    )
    _echo(f"export: {report.path}")


@app.command()
def serve(
    lake: LakeOpt = None,
    ray_address: RayAddressOpt = None,
    variant: VariantOpt = None,
    with_reference: WithReferenceOpt = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            envvar="CARBONSINK_SERVE__HTTP_HOST",
            help="HTTP address (default 127.0.0.1: this host only).",
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", envvar="CARBONSINK_SERVE__HTTP_PORT", help="HTTP port (default 8000)."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Run the emulator's Serve application and its HTTP route until stopped.

    GET /flux?month=YYYY-MM&bbox=W,S,E,N[&member=M][&format=json|netcdf] maps a box on
    demand, at http://127.0.0.1:8000 by default (--host, --port). The local Ray it starts
    listens on 127.0.0.1 only. Stop it with Ctrl-C or SIGTERM (kill PID): both shut the
    application and Ray down and exit 0. Example:

    \b
        carbonsink serve --lake output/lake --port 8000
        curl 'http://127.0.0.1:8000/flux?month=2024-06&bbox=-75,-15,-45,5'
    """
    from pipelines.stages.infer import run_serve

    s = _settings(
        config, lake=lake, ray={"address": ray_address},
        serve={"variant": variant, "with_reference": with_reference, "http_host": host,
               "http_port": port},
    )  # fmt: skip
    run_serve(s, _echo)


@app.command()
def run(
    out: Annotated[
        str,
        typer.Option(
            "--out", envvar="CARBONSINK_OUT", help="Folder for the sample data and the lake."
        ),
    ] = "output",
    source: Annotated[
        str | None,
        typer.Option("--source", help="ERA5 source to use instead of generated sample data."),
    ] = None,
    start: StartOpt = None,
    end: EndOpt = None,
    dask_address: DaskAddressOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run the whole chain on embedded defaults and print where the outputs are.

    With no --source, sample ERA5-like data (settings section `sample`, by default
    2015-01..2024-12 monthly at 0.25 deg) is generated once into OUT and reused; it is
    ingested into the lake at OUT/lake on the model grid, labelled by the reference models
    and emulated (when the lake has no labels or models yet), mapped through Ray Serve from
    the budget's reference window on (months already mapped are skipped), and turned into
    the budget, its tables, figures and report.
    """
    from cluster.dask import dask_client
    from pipelines.flows.run import run_chain

    s = _settings(config, source=source, start=start, end=end, dask={"address": dask_address})
    with dask_client(s.dask) as client:
        outputs = run_chain(s, out, client)
    for label, path in outputs:
        _echo(f"{label + ':':14s}{path}")


def _stop(signum: int, _frame: object) -> None:
    """Turn SIGINT and SIGTERM into :class:`Interrupted`, once.

    The clean-up that follows (abandoning a run's branch) is not cut short by a second one.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    # What the engines log while they are torn down mid-work (a scatter cut short, a peer
    # gone) is noise next to the one line that says what happened.
    logging.disable(logging.CRITICAL)
    raise Interrupted(signum)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors and the exit code that says what happened.

    0 done; 2 bad input or a problem the user must fix (the message says which); 1 an
    unexpected failure; 130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM (what Kubernetes
    sends on eviction). An interrupted or refused command leaves the lake as it was.
    """
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _run(argv)
    finally:  # main() called in-process (tests, notebooks) leaves the handlers as it found them
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if argv is not None:  # in-process; a command line's process ends here anyway
            logging.disable(logging.NOTSET)


def _run(argv: list[str] | None) -> None:
    try:
        code = app(args=argv, standalone_mode=False)
    except CarbonsinkError as exc:
        if os.environ.get("CARBONSINK_DEBUG"):  # the chain of causes behind the one line
            traceback.print_exception(exc)
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (Interrupted, KeyboardInterrupt) as exc:
        _interrupted(exc.name if isinstance(exc, Interrupted) else "SIGINT")
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except TyperException as exc:  # usage errors: bad option values, unknown commands
        ctx = getattr(exc, "ctx", None)
        cmd = ctx.command_path if ctx is not None else "carbonsink"
        text = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.echo(f"error: {' '.join(text.split())} (see {cmd} --help)", err=True)
        sys.exit(2)
    except Exception as exc:
        if os.environ.get("CARBONSINK_DEBUG"):
            raise
        problem = storage_problem(exc, "the storage")
        if problem is not None:  # read-only, full: a one-line cause, not "unexpected"
            typer.echo(f"error: {problem}", err=True)
            sys.exit(2)
        typer.echo(
            f"error: unexpected {brief(exc, 300)} (set CARBONSINK_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(1)
    if code == 130:  # typer caught a KeyboardInterrupt itself (before our handler ran)
        _interrupted("SIGINT")
    if isinstance(code, int) and code:
        sys.exit(code)


def _interrupted(name: str) -> NoReturn:
    typer.echo(
        f"interrupted by {name}: the interrupted step published nothing (its run branch is "
        "gone); published work is kept",
        err=True,
    )
    sys.exit(143 if name == "SIGTERM" else 130)


if __name__ == "__main__":  # pragma: no cover
    main()
