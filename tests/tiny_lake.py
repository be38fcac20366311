"""Settings of the tiny (4 deg) lake that pipeline and cluster tests share."""

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from carbonsink.emulator.checkpoint import load_checkpoint
from carbonsink.emulator.inputs import StaticFields, feature_channels, month_channels
from carbonsink.emulator.tiles import predict_global
from carbonsink.lake.features_store import open_published_features, read_layout
from carbonsink.lake.lake import Lake
from pipelines.settings import Settings, load_settings

GRID = {"resolution": 4.0, "tile_lat": 15, "tile_lon": 30, "chunk_tiles": 1}
#: The tiny lake's grid, baseline and reference window as environment variables, as a
#: user's shell (or a Kubernetes ConfigMap) would set them for the command line.
TINY_ENV = {
    "CARBONSINK_GRID__RESOLUTION": "4",
    "CARBONSINK_GRID__TILE_LAT": "15",
    "CARBONSINK_GRID__TILE_LON": "30",
    "CARBONSINK_INGEST__BASELINE_START": "2015-01",
    "CARBONSINK_INGEST__BASELINE_END": "2015-12",
    "CARBONSINK_BUDGET__REFERENCE_START": "2016",
    "CARBONSINK_BUDGET__REFERENCE_END": "2016",
}
TINY = {
    "crop": 8,
    "crops_per_month": 6,
    "epochs": 2,
    "batch_size": 16,
    "hidden": 8,
    "holdout_start": "2016-01",
    "holdout_end": "2016-06",
}


def settings(lake: Any, **kw: Any) -> Settings:
    """Settings of the tiny lake at ``lake``; ``kw`` sections are merged into the defaults."""
    base: dict[str, Any] = {
        "lake": str(lake),
        "grid": GRID,
        "ingest": {"baseline_start": "2015-01", "baseline_end": "2015-12"},
        "labels": {"end": "2016-06"},
        "emulator": TINY,
    }
    for k, v in kw.items():
        base[k] = {**base[k], **v} if isinstance(v, dict) and k in base else v
    return load_settings(None, **base)


@lru_cache(maxsize=4)
def _statics(lake: str, snapshot: str, drivers: tuple[str, ...]) -> StaticFields:
    """The static channels of a features snapshot: the same for every member and month, and
    a read of every chunk of the climatology, so read once."""
    features = Lake(lake).open_repo("features").readonly_session(snapshot_id=snapshot)  # type: ignore[union-attr]
    return StaticFields.from_store(features.store, read_layout(features.store).grid, drivers)


def direct(lake: Any, member: str, month: pd.Period, variant: str = "mean-teacher") -> np.ndarray:
    """In-process inference of a member's checkpoint over the whole globe, domain-masked."""
    lk = Lake(str(lake))
    features, layout = open_published_features(lk)
    models = lk.open_repo("models").readonly_session("main").store  # type: ignore[union-attr]
    emu = load_checkpoint(models, member, variant)
    statics = _statics(str(lake), features.snapshot_id, tuple(emu.metadata.drivers))
    raw = month_channels(
        features.store, feature_channels(emu.metadata.channels), layout.month_index(month), month,
        statics,
    )  # fmt: skip
    tile = (layout.tiling.nlat, layout.tiling.nlon)
    pred = predict_global(emu.predict_numpy, emu.prepare(raw, month.month), emu.halo, tile)
    lf = statics.fields["land_fraction"]
    pred[0][lf <= 0] = np.nan
    pred[1][lf >= 1] = np.nan
    return pred
