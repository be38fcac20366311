"""``carbonsink sample-data``: a synthetic store in the ARCO-ERA5 layout, written with Dask."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from distributed import Client

from carbonsink.errors import ConfigError
from carbonsink.sample.store import SampleSpec, create_template, sample_land_fraction, write_block
from carbonsink.storage import StorageOptions, parse_location
from carbonsink.timeutil import MonthWindow
from pipelines.options import (
    ConfigOpt,
    DaskAddressOpt,
    echo,
    setting,
    settings,
)
from pipelines.progress import progress_bar, wait_with_progress
from pipelines.settings import SampleSettings


@dataclass
class SampleReport:
    """What ``sample-data`` wrote."""

    url: str
    spec: SampleSpec
    steps: int
    seconds: float


def spec_from_settings(s: SampleSettings) -> SampleSpec:
    """The sample spec of a settings section."""
    return SampleSpec(
        MonthWindow.parse(s.start, s.end),
        resolution=s.resolution,
        step=s.step,
        seed=s.seed,
        era5t_months=s.era5t_months,
        zarr_format=s.zarr_format,
    )


def run_sample_data(
    spec: SampleSpec,
    url: str,
    client: Client | None,
    *,
    storage: StorageOptions | None = None,
    overwrite: bool = False,
) -> SampleReport:
    """Write the template, then every block of time steps on the cluster.

    ``memory://`` stores live in one process, so they are written in-process (no client).
    """
    t0 = time.perf_counter()
    loc = parse_location(url)
    create_template(loc.url, spec, storage, overwrite=overwrite)
    blocks = spec.block_slices()
    if client is None or loc.scheme == "memory":
        land = sample_land_fraction(spec)
        with progress_bar() as bar:
            task = bar.add_task("sample data", total=len(blocks))
            steps = 0
            for b in blocks:
                steps += write_block(loc.url, spec, b, land, storage)
                bar.advance(task)
    else:
        land_f = client.submit(sample_land_fraction, spec, pure=False)
        futures = [
            client.submit(write_block, loc.url, spec, b, land_f, storage, pure=False)
            for b in blocks
        ]
        steps = sum(wait_with_progress(client, futures, "sample data"))
    return SampleReport(loc.url, spec, steps, time.perf_counter() - t0)


def command(
    out: Annotated[
        str | None,
        setting("--out", path="sample.out", help="Where to write the Zarr store (path or URL)."),
    ] = None,
    start: Annotated[
        str | None, setting("--start", path="sample.start", help="First month, YYYY-MM.")
    ] = None,
    end: Annotated[
        str | None, setting("--end", path="sample.end", help="Last month, YYYY-MM.")
    ] = None,
    resolution: Annotated[
        float | None,
        setting(
            "--resolution", path="sample.resolution", help="Grid spacing in degrees (ERA5: 0.25)."
        ),
    ] = None,
    step: Annotated[
        str | None,
        setting("--step", path="sample.step", help="Time step: 1h, 6h, 1D or 1MS (monthly)."),
    ] = None,
    seed: Annotated[
        int | None, setting("--seed", path="sample.seed", help="Seed of the random parts.")
    ] = None,
    era5t_months: Annotated[
        int | None,
        setting(
            "--era5t-months", path="sample.era5t_months", help="Newest months flagged as ERA5T."
        ),
    ] = None,
    zarr_format: Annotated[
        int | None,
        setting("--zarr-format", path="sample.zarr_format", help="2 (as ARCO-ERA5) or 3."),
    ] = None,
    overwrite: Annotated[
        bool | None,
        setting(
            "--overwrite/--no-overwrite", path="sample.overwrite", help="Replace an existing store."
        ),
    ] = None,
    dask_address: DaskAddressOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write synthetic ERA5-like data in exactly the ARCO-ERA5 layout.

    The fields are physically plausible (seasons, land/ocean contrast from the real land
    mask, a diurnal cycle, ENSO with warm phases in 2015/16 and 2023/24, droughts and heat
    waves) and deterministic by seed. The window is the sample's own (CARBONSINK_SAMPLE__START,
    ...), not the window of the commands that read a source. Example:

    \b
        carbonsink sample-data --out era5.zarr --start 2020-01 --end 2020-12 --step 1D
    """
    from cluster.dask import dask_client

    s = settings(
        config,
        sample={
            "out": out, "start": start, "end": end, "resolution": resolution, "step": step,
            "seed": seed, "era5t_months": era5t_months, "zarr_format": zarr_format,
            "overwrite": overwrite,
        },
        dask={"address": dask_address},
    )  # fmt: skip
    if not s.sample.out:
        raise ConfigError("sample-data needs --out PATH (or CARBONSINK_SAMPLE__OUT)")
    spec = spec_from_settings(s.sample)
    with dask_client(s.dask) as client:
        report = run_sample_data(spec, s.sample.out, client, overwrite=s.sample.overwrite)
    echo(
        f"wrote {report.steps} time steps ({spec.window}, step {spec.step}, "
        f"{spec.resolution} deg) in {report.seconds:.1f} s"
    )
    echo(f"sample data: {report.url}")
