"""Emulator checkpoints in the lake's ``models`` store: Zarr arrays and JSON, no pickle.

Each checkpoint is a group ``<variant>/<member>`` holding one array per tensor of the
network's state (``weights/<name>``), the member's baseline climatology (``baseline``,
``[12, K, lat, lon]``, chunked by month and region so a tile reads only its part) and the
:class:`EmulatorMetadata` as JSON attributes.
Nothing is unpickled on load, so a checkpoint from an untrusted lake cannot run code; and
the models store is an Icechunk repository, so checkpoints are published atomically like
every other store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import icechunk
import numpy as np
import torch
import zarr

from carbonsink.emulator.base import Emulator, EmulatorError, EmulatorMetadata
from carbonsink.emulator.cnn import CnnEmulator
from carbonsink.emulator.inputs import Baseline
from carbonsink.grid import ModelGrid
from carbonsink.lake.features_store import CODEC

#: Rows and columns of a baseline chunk: a few chunks per 0.25 deg month.
BASELINE_CHUNK = 360


def checkpoint_path(member: str, variant: str) -> str:
    """Group path of a checkpoint in the models store."""
    return f"{variant}/{member}"


def save_checkpoint(store: icechunk.IcechunkStore, emulator: Emulator) -> str:
    """Write (or overwrite) an emulator's checkpoint; returns its group path."""
    meta = emulator.metadata
    path = checkpoint_path(meta.member, meta.variant)
    root = zarr.open_group(store, mode="a", zarr_format=3)
    parent = root.require_group(meta.variant)
    if meta.member in parent:
        del parent[meta.member]
    g = parent.create_group(meta.member)
    w = g.create_group("weights")
    for name, value in emulator.state().items():
        arr = np.ascontiguousarray(value)
        a = w.create_array(
            name, shape=arr.shape, dtype=arr.dtype, chunks=arr.shape if arr.ndim else "auto"
        )
        a[...] = arr
    if emulator.baseline is not None:
        b = emulator.baseline.fields
        chunks = (1, b.shape[1], min(b.shape[2], BASELINE_CHUNK), min(b.shape[3], BASELINE_CHUNK))
        a = g.create_array("baseline", shape=b.shape, dtype=b.dtype, chunks=chunks,
                           fill_value=np.nan, compressors=CODEC)  # fmt: skip
        a[...] = b
    g.attrs["metadata"] = json_dict(meta)
    return path


def json_dict(meta: EmulatorMetadata) -> dict:
    """Metadata as a JSON-compatible dict."""
    return dict(json_safe(json.loads(meta.to_json())))


def json_safe(value: Any) -> Any:
    """A copy with NaN and infinities as None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def update_metrics(store: icechunk.IcechunkStore, member: str, variant: str, metrics: dict) -> None:
    """Replace the ``metrics`` of a stored checkpoint."""
    g = zarr.open_group(store, path=checkpoint_path(member, variant), mode="r+")
    meta = dict(g.attrs["metadata"])  # type: ignore[arg-type]
    meta["metrics"] = json_safe(metrics)
    g.attrs["metadata"] = meta


def list_checkpoints(store: icechunk.IcechunkStore) -> list[tuple[str, str]]:
    """``(variant, member)`` of every checkpoint, sorted."""
    root = zarr.open_group(store, mode="r")
    return sorted((v, m) for v, vg in root.groups() for m, _ in vg.groups())


def load_checkpoint(
    store: icechunk.IcechunkStore,
    member: str,
    variant: str = "mean-teacher",
    *,
    grid: ModelGrid | None = None,
    drivers: Sequence[str] | None = None,
    device: torch.device | None = None,
) -> Emulator:
    """Load a checkpoint, checking that it fits the data it will be applied to.

    Parameters
    ----------
    grid
        The model grid of the features; a checkpoint for another grid is refused.
    drivers
        Drivers the features store holds; a checkpoint needing others is refused.

    Raises
    ------
    EmulatorError
        Missing checkpoint, another grid or driver set, or weights that do not fit.
    """
    path = checkpoint_path(member, variant)
    try:
        g = zarr.open_group(store, path=path, mode="r")
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError) as exc:
        raise EmulatorError(
            f"no {variant} emulator for member {member!r} in the models store; run carbonsink "
            "train first"
        ) from exc
    meta = EmulatorMetadata.from_json(dict(g.attrs["metadata"]))  # type: ignore[arg-type]
    if grid is not None and abs(meta.grid_resolution - grid.resolution) > 1e-9:
        raise EmulatorError(
            f"the {member} emulator was trained on the {meta.grid_resolution} deg grid, the "
            f"features are on {grid.resolution} deg; train emulators for this grid"
        )
    if drivers is not None:
        missing = [d for d in meta.drivers if d not in drivers]
        if missing:
            raise EmulatorError(
                f"the {member} emulator needs driver(s) {', '.join(missing)} that the features "
                "store lacks; ingest them or train on this driver set"
            )
    baseline = None
    if "baseline" in g:
        stored = g["baseline"]
        assert isinstance(stored, zarr.Array)
        baseline = Baseline(np.asarray(stored[...]))
    try:
        emulator = CnnEmulator.build(meta, device, baseline)
    except (TypeError, ValueError) as exc:
        raise EmulatorError(
            f"the {member} checkpoint's architecture does not fit this code ({exc}); retrain it"
        ) from exc
    weights = g["weights"]
    assert isinstance(weights, zarr.Group)
    state = {name: torch.from_numpy(np.asarray(a[...])) for name, a in weights.arrays()}
    try:
        emulator.module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise EmulatorError(
            f"the {member} checkpoint's weights do not fit its architecture ({str(exc)[:120]}); "
            "retrain it"
        ) from exc
    emulator.module.eval()
    return emulator
