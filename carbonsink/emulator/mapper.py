"""Map tiles of the sink map: a tile key in, the tile's fluxes out, written to the lake.

The unit of work of ``carbonsink infer`` is a :class:`~carbonsink.emulator.tiles.TileKey`
(member, month, tile index). A :class:`TileMapper` reads that tile's inputs with their halo
straight from the ``features`` store (only the blocks the tile needs, with the same rules
across the date line and the poles as a global prediction), adds the member's baseline,
runs the member's emulator on a batch of tiles at once, masks each flux outside its domain,
and writes each tile's region of the ``sinkmap`` store. The Ray Serve replicas
(``cluster/serve_app.py``) are thin wrappers around one of these; tests and the reference
comparison use it in-process.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import icechunk
import numpy as np
import pandas as pd
import torch
import zarr

from carbonsink.co2 import co2_for
from carbonsink.emulator.base import Emulator, EmulatorError
from carbonsink.emulator.checkpoint import list_checkpoints, load_checkpoint
from carbonsink.emulator.inputs import StaticFields, feature_channels, normalise
from carbonsink.emulator.tiles import TileKey, read_with_halo, tile_keys, tile_origin
from carbonsink.errors import LakeError
from carbonsink.lake.features_store import FeaturesLayout, open_published_features
from carbonsink.lake.flux_store import FLUXES, ensemble, imported_members
from carbonsink.lake.lake import Lake

#: Months of driver fields a mapper keeps (160 MB each at 0.25 deg for 13 drivers).
MONTHS_CACHED = 2


def _models_store(lake: Lake) -> icechunk.IcechunkStore:
    repo = lake.open_repo("models")
    if repo is None:
        raise LakeError(f"the lake {lake.url} has no models store; run carbonsink train first")
    return repo.readonly_session("main").store


def published_members(lake: Lake, variant: str, *, with_reference: bool = False) -> list[str]:
    """The ensemble: members with a published emulator of ``variant``, sorted.

    Where the lake's labels hold imported TRENDY / GOBM members, those alone, unless
    ``with_reference`` (:func:`carbonsink.lake.flux_store.ensemble`).

    Raises
    ------
    LakeError
        No models store, or no emulator of ``variant``.
    """
    found = [m for v, m in list_checkpoints(_models_store(lake)) if v == variant]
    if not found:
        raise LakeError(
            f"the models store has no {variant} emulator; run carbonsink train or pick another "
            "variant"
        )
    labels = lake.open_repo("labels")
    imported = imported_members(labels.readonly_session("main").store) if labels else []
    return ensemble(found, imported, with_reference=with_reference)


def load_emulators(
    lake: Lake,
    variant: str,
    layout: FeaturesLayout,
    members: Sequence[str] | None = None,
    device: torch.device | None = None,
) -> dict[str, Emulator]:
    """The published emulators of one variant, by member, checked against the features.

    ``members`` default to the ensemble (:func:`published_members`).

    Raises
    ------
    LakeError
        No models store, or no emulator of ``variant`` (for the requested members).
    """
    store = _models_store(lake)
    found = [m for v, m in list_checkpoints(store) if v == variant]
    chosen = list(members) if members else published_members(lake, variant)
    missing = [m for m in chosen if m not in found]
    if not chosen or missing:
        raise LakeError(
            f"the models store has no {variant} emulator for {', '.join(missing) or 'any member'}"
            f" (it has {', '.join(found) or 'none'}); run carbonsink train or pick another variant"
        )
    return {
        m: load_checkpoint(
            store, m, variant, grid=layout.grid, drivers=layout.drivers, device=device
        )
        for m in chosen
    }


class TileMapper:
    """Reads, predicts and writes tiles for a set of member emulators.

    Parameters
    ----------
    features
        A read-only session of the published ``features`` store.
    layout
        Its layout (grid, tiling, time axis).
    emulators
        One emulator per member; they must read the same feature channels.
    """

    def __init__(
        self,
        features: icechunk.Session,
        layout: FeaturesLayout,
        emulators: dict[str, Emulator],
    ) -> None:
        if not emulators:
            raise EmulatorError("a tile mapper needs at least one emulator")
        channels = {tuple(feature_channels(e.metadata.channels)) for e in emulators.values()}
        if len(channels) > 1:
            raise EmulatorError(
                "the emulators read different inputs; retrain them together (carbonsink train)"
            )
        self.features = features
        self.layout = layout
        self.emulators = emulators
        self.channels = list(channels.pop())
        self.halo = max(e.halo for e in emulators.values())
        drivers = sorted({d for e in emulators.values() for d in e.metadata.drivers})
        self.statics = StaticFields.from_store(features.store, layout.grid, drivers)
        #: When set, every forward pass runs on exactly this many tiles (zeros pad the rest):
        #: the kernels then never depend on how many requests a batch happened to gather,
        #: so a tile's bytes are the same in every run (resumed backfills rely on it).
        self.pass_size: int | None = None
        self._arrays: dict[str, Any] = {}
        self._months: OrderedDict[pd.Period, dict[str, np.ndarray]] = OrderedDict()

    @classmethod
    def open(
        cls,
        lake: Lake,
        variant: str,
        members: Sequence[str] | None = None,
        device: torch.device | None = None,
    ) -> TileMapper:
        """Open the lake's published features and the emulators of ``variant``."""
        features, layout = open_published_features(lake)
        return cls(features, layout, load_emulators(lake, variant, layout, members, device))

    @property
    def tile(self) -> tuple[int, int]:
        """Tile size (rows, cols)."""
        return self.layout.tiling.nlat, self.layout.tiling.nlon

    @property
    def tiles_per_month(self) -> int:
        """Tiles that cover the grid."""
        (ny, nx), (th, tw) = self.layout.grid.shape, self.tile
        return (ny // th) * (nx // tw)

    @property
    def members(self) -> list[str]:
        """Members, sorted."""
        return sorted(self.emulators)

    def keys(self, months: Iterable[pd.Period]) -> list[TileKey]:
        """Every tile key of ``months``, month by month (neighbouring keys share reads)."""
        return tile_keys(months, self.members, range(self.tiles_per_month))

    def origin(self, key: TileKey) -> tuple[int, int]:
        """Top-left corner of a key's tile."""
        return tile_origin(self.layout.grid.shape, self.tile, key.index)

    def _array(self, path: str) -> Any:
        if path not in self._arrays:
            self._arrays[path] = zarr.open_array(self.features.store, path=path, mode="r")
        return self._arrays[path]

    def _with_halo(self, key: TileKey, read: Any) -> np.ndarray:
        (i, j), (th, tw) = self.origin(key), self.tile
        return read_with_halo(read, self.layout.grid.shape, i, j, th, tw, self.halo)

    def month_fields(self, month: pd.Period) -> dict[str, np.ndarray]:
        """The month's driver channels over the grid, read once and kept for a few months.

        Keys arrive month by month, and a month's tiles share every chunk they read: reading
        whole chunks once per month instead of a tile's blocks per tile cut the reads of a
        batch of 4 deg tiles from seconds to milliseconds.
        """
        if month not in self._months:
            index = self.layout.month_index(month)
            fields = {}
            for c in self.channels:
                if c.endswith(("_anom", "_clim")):
                    # Anomalies are stored per month, climatologies per calendar month.
                    t = index if c.endswith("_anom") else month.month - 1
                    fields[c] = np.asarray(self._array(c)[t])
            self._months[month] = fields
            while len(self._months) > MONTHS_CACHED:
                self._months.popitem(last=False)
        self._months.move_to_end(month)
        return self._months[month]

    def raw_inputs(self, key: TileKey) -> np.ndarray:
        """Raw feature channels of a tile with its halo, ``[C, th + 2h, tw + 2h]``."""
        month = pd.Period(key.month, freq="M")
        th, tw = self.tile
        fields = self.month_fields(month)
        out = []
        for c in self.channels:
            if c in fields:
                f = fields[c]
                out.append(self._with_halo(key, lambda r, q, _f=f: _f[r, q]))
            elif c == "co2":
                side = (th + 2 * self.halo, tw + 2 * self.halo)
                out.append(np.full(side, co2_for([month]).ppm[0], dtype=np.float32))
            else:
                f = self.statics.fields[c]
                out.append(self._with_halo(key, lambda r, q, _f=f: _f[r, q]))
        return np.stack(out).astype(np.float32)

    def inputs(self, key: TileKey) -> np.ndarray:
        """Normalised inputs of a tile for its member's emulator (baseline appended)."""
        emu = self._emulator(key)
        parts = [self.raw_inputs(key)]
        if emu.baseline is not None:
            base = emu.baseline.month(pd.Period(key.month, freq="M").month)
            parts.append(self._with_halo(key, lambda r, q: base[:, r, q]))
        return normalise(np.concatenate(parts), emu.metadata.channels, emu.metadata.normalisation)

    def _emulator(self, key: TileKey) -> Emulator:
        try:
            return self.emulators[key.member]
        except KeyError as exc:
            raise EmulatorError(
                f"no emulator for member {key.member!r} (serving {', '.join(self.members)})"
            ) from exc

    def predict(self, keys: Sequence[TileKey]) -> list[np.ndarray]:
        """Fluxes ``[K, th, tw]`` (kg C m-2 s-1, NaN off-domain) of each key, in order.

        Keys of one member run as one batch through its emulator.
        """
        by_member: dict[str, list[int]] = defaultdict(list)
        for n, key in enumerate(keys):
            by_member[key.member].append(n)
        out: list[np.ndarray | None] = [None] * len(keys)
        lf = self.statics.fields["land_fraction"]
        th, tw = self.tile
        for idx in by_member.values():
            emu = self._emulator(keys[idx[0]])
            x = np.stack([self.inputs(keys[n]) for n in idx])
            y = self._forward(emu, x)
            for n, block in zip(idx, y, strict=True):
                i, j = self.origin(keys[n])
                frac = lf[i : i + th, j : j + tw]
                block[0][frac <= 0] = np.nan
                block[1][frac >= 1] = np.nan
                out[n] = block
        return [b for b in out if b is not None]

    def _forward(self, emu: Emulator, x: np.ndarray) -> np.ndarray:
        """``emu`` over ``x``, in passes of exactly ``pass_size`` tiles when that is set."""
        size = self.pass_size
        if not size:
            return emu.predict_numpy(x)
        out = []
        for start in range(0, len(x), size):
            part = x[start : start + size]
            padded = np.zeros((size, *x.shape[1:]), dtype=x.dtype)
            padded[: len(part)] = part
            out.append(emu.predict_numpy(padded)[: len(part)])
        return np.concatenate(out)

    def write(self, store: icechunk.IcechunkStore, key: TileKey, block: np.ndarray) -> None:
        """Write a tile's fluxes into its region of a sink-map store (its own chunks)."""
        index = self.layout.month_index(pd.Period(key.month, freq="M"))
        (i, j), (th, tw) = self.origin(key), self.tile
        for k, name in enumerate(FLUXES):
            a = zarr.open_array(store, path=f"{key.member}/{name}", mode="r+")
            a[index, i : i + th, j : j + tw] = block[k]
