"""``carbonsink run``: the whole chain on embedded defaults.

Today the chain is sample data (unless a source is given) then ingest; later stages
(train, infer, budget, report) join here as they land.
"""

from __future__ import annotations

from pathlib import Path

import zarr
from distributed import Client

from carbonsink.config import Settings
from carbonsink.sample.store import SampleSpec
from carbonsink.sources.arco import zarr_store
from carbonsink.storage import StorageOptions, parse_location
from pipelines.ingest import describe, run_ingest
from pipelines.progress import console
from pipelines.sample_data import run_sample_data, spec_from_settings

SAMPLE_NAME = "sample-era5.zarr"


def _sample_is_current(url: str, spec: SampleSpec) -> bool:
    """Whether ``url`` already holds a complete sample store made from ``spec``."""
    try:
        root = zarr.open_group(zarr_store(parse_location(url), StorageOptions()), mode="r")
    except Exception:
        return False
    attrs = dict(root.attrs)
    return (
        attrs.get("carbonsink_sample") == spec.root_attrs()["carbonsink_sample"]
        and attrs.get("carbonsink_sample_complete") is True
    )


def run_chain(settings: Settings, out: str, client: Client) -> list[tuple[str, str]]:
    """Run sample data (if needed) and ingest; return ``(label, path)`` of the outputs."""
    out_dir = Path(out).expanduser().absolute()
    outputs: list[tuple[str, str]] = []
    updates: dict = {}
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
            console.print(f"sample data: {sample.steps} steps in {sample.seconds:.1f} s")
        updates["source"] = url
        updates.setdefault("start", settings.start or settings.sample.start)
        updates.setdefault("end", settings.end or settings.sample.end)
        outputs.append(("sample data", url))
    if settings.lake == Settings.model_fields["lake"].default:
        updates["lake"] = str(out_dir / "lake")
    run_settings = settings.model_copy(update=updates)
    report = run_ingest(run_settings, client)
    for line in describe(report):
        console.print(line)
    outputs.append(("lake", report.lake))
    outputs.append(("features", report.store))
    return outputs
