"""``carbonsink run``: the whole chain on embedded defaults.

Sample data (unless a source is given) -> ingest -> labels and train (when the lake has
none) -> infer (the months from the budget's reference window on that are not mapped yet)
-> budget -> report. Each stage is its own transaction, so a run that dies keeps what the
finished stages published, and a second run skips the work already done: it ingests only
months the lake lacks, holds from another source or from ERA5T data now final (every month
when the sample was regenerated), and maps only those and the months not mapped yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import zarr
from distributed import Client

from carbonsink.emulator.checkpoint import list_checkpoints
from carbonsink.lake.lake import Lake
from carbonsink.lake.sinkmap import mapped_months, months_to_map
from carbonsink.sample.store import SampleSpec
from carbonsink.sources.arco import SAMPLE_ATTR, zarr_store
from carbonsink.storage import StorageOptions, parse_location
from carbonsink.timeutil import MonthWindow, parse_month
from pipelines.options import (
    ConfigOpt,
    DaskAddressOpt,
    EndOpt,
    SourceOpt,
    StartOpt,
    outputs,
    setting,
    settings,
)
from pipelines.progress import console
from pipelines.settings import Settings
from pipelines.stages.infer import run_infer
from pipelines.stages.ingest import describe, months_to_ingest, run_ingest
from pipelines.stages.labels import describe as describe_labels
from pipelines.stages.labels import run_labels
from pipelines.stages.report import budget_and_report
from pipelines.stages.sample_data import run_sample_data, spec_from_settings
from pipelines.stages.train import run_train

SAMPLE_NAME = "sample-era5.zarr"


def _sample_is_current(url: str, spec: SampleSpec) -> bool:
    """Whether ``url`` already holds a complete sample store made from ``spec``."""
    try:
        root = zarr.open_group(zarr_store(parse_location(url), StorageOptions()), mode="r")
    except Exception:
        return False
    attrs = dict(root.attrs)
    return (
        attrs.get(SAMPLE_ATTR) == spec.root_attrs()[SAMPLE_ATTR]
        and attrs.get("carbonsink_sample_complete") is True
    )


def run_chain(settings: Settings, out: str, client: Client) -> list[tuple[str, str]]:
    """Run sample data (if needed) and ingest; return ``(label, path)`` of the outputs."""
    out_dir = Path(out).expanduser().absolute()
    outputs: list[tuple[str, str]] = []
    updates: dict = {}
    fresh_sample = False
    if settings.source is None:
        spec = spec_from_settings(settings.sample)
        url = str(out_dir / SAMPLE_NAME)
        if _sample_is_current(url, spec):
            console.print(f"reusing sample data at {url}")
        else:
            sample = run_sample_data(spec, url, client, overwrite=True)
            store = zarr_store(parse_location(url), StorageOptions(), read_only=False)
            # Marked complete only after every block is written: a killed run regenerates.
            zarr.open_group(store, mode="r+").attrs["carbonsink_sample_complete"] = True
            zarr.consolidate_metadata(store)
            fresh_sample = True
            console.print(f"sample data: {sample.steps} steps in {sample.seconds:.1f} s")
        updates["source"] = url
        updates.setdefault("start", settings.start or settings.sample.start)
        updates.setdefault("end", settings.end or settings.sample.end)
        outputs.append(("sample data", url))
    if settings.lake == Settings.model_fields["lake"].default:
        updates["lake"] = str(out_dir / "lake")
    run_settings = settings.model_copy(update=updates)
    window = run_settings.window()
    # A regenerated sample may differ under the same URL: only then is every month redone.
    todo = list(window.months) if fresh_sample else months_to_ingest(run_settings)
    lake = Lake(run_settings.lake, run_settings.lake_storage)
    if todo:
        # One contiguous ingest: months inside the span that were current are redone too.
        report = run_ingest(run_settings.with_window(min(todo), max(todo)), client)
        for line in describe(report):
            console.print(line)
    else:
        console.print(f"the features already hold {window} from {run_settings.source}")
    outputs.append(("lake", lake.url))
    outputs.append(("features", lake.store_location("features").url))
    outputs.extend(_emulate_and_budget(run_settings, client, set(todo)))
    return outputs


def _emulate_and_budget(
    settings: Settings, client: Client, ingested: set[pd.Period]
) -> list[tuple[str, str]]:
    """Labels and models when missing, the sink map, the budget and its report."""
    lake = Lake(settings.lake, settings.lake_storage)
    if lake.open_repo("labels") is None:
        for line in describe_labels(run_labels(settings, client)):
            console.print(line)
    models = lake.open_repo("models")
    if models is None or not any(
        v == settings.serve.variant
        for v, _ in list_checkpoints(models.readonly_session("main").store)
    ):
        # The supervised-only comparison is for the skill report (carbonsink evaluate),
        # not for the map: skip it and halve the training time.
        quick = settings.model_copy(
            update={"emulator": settings.emulator.model_copy(update={"compare_supervised": False})}
        )
        for line in run_train(quick, client).lines:
            console.print(line)
    assert settings.start is not None and settings.end is not None
    first = max(
        parse_month(settings.start), pd.Period(f"{settings.budget.reference_start}-01", "M")
    )
    window = [m for m in MonthWindow(first, parse_month(settings.end)).months]
    todo = months_to_map(window, mapped_months(lake), ingested)
    if todo:
        for line in run_infer(settings.with_window(todo[0], todo[-1])).lines:
            console.print(line)
    else:
        console.print(f"the sink map already holds {window[0]}..{window[-1]}")
    return budget_and_report(settings)


def command(
    out: Annotated[
        str | None,
        setting(
            "--out", path="out", help="Folder for the sample data and the lake (default output)."
        ),
    ] = None,
    source: SourceOpt = None,
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

    s = settings(
        config, out=out, source=source, start=start, end=end, dask={"address": dask_address}
    )
    with dask_client(s.dask) as client:
        outputs(run_chain(s, s.out, client))
