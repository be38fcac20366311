"""``carbonsink sample-data``: a synthetic store in the ARCO-ERA5 layout, written with Dask."""

from __future__ import annotations

import time
from dataclasses import dataclass

from distributed import Client

from carbonsink.config import SampleSettings
from carbonsink.sample.store import SampleSpec, create_template, sample_land_fraction, write_block
from carbonsink.storage import StorageOptions, parse_location
from carbonsink.timeutil import MonthWindow
from pipelines.progress import progress_bar, wait_with_progress


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
