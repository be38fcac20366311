"""Fixtures of the pipeline tests: a tiny (4 deg) lake, ingested, labelled and trained once."""

import pytest

from carbonsink.config import load_settings
from pipelines.ingest import run_ingest
from pipelines.labels import run_labels
from pipelines.train import run_train

GRID = {"resolution": 4.0, "tile_lat": 9, "tile_lon": 18, "chunk_tiles": 1}
TINY = {
    "crop": 8,
    "crops_per_month": 6,
    "epochs": 2,
    "batch_size": 16,
    "hidden": 8,
    "holdout_start": "2016-01",
    "holdout_end": "2016-06",
}


def settings(lake, **kw):
    base = {
        "lake": str(lake),
        "grid": GRID,
        "ingest": {"baseline_start": "2015-01", "baseline_end": "2015-12"},
        "labels": {"end": "2016-06"},
        "emulator": TINY,
    }
    for k, v in kw.items():
        base[k] = {**base[k], **v} if isinstance(v, dict) and k in base else v
    return load_settings(None, **base)


@pytest.fixture(scope="session")
def lake(dask_client, monthly_store, tmp_path_factory):
    root = tmp_path_factory.mktemp("emulator") / "lake"
    run_ingest(settings(root, source=monthly_store, start="2015-01", end="2016-12"), dask_client)
    return root


@pytest.fixture(scope="session")
def trained(lake, dask_client):
    labels = run_labels(settings(lake), dask_client)
    train = run_train(settings(lake), dask_client)
    return labels, train
