"""The emulator contract: a module over tiles with halos, plus the metadata that binds it.

``predict(features[B, C, H + 2h, W + 2h]) -> flux[B, K, H, W]`` (``docs/design.md``): a tile
with a halo of ``h`` cells on every side goes in, the tile's fluxes come out, so tiles
predicted independently join without seams. Inputs are normalised channels
(:mod:`carbonsink.emulator.inputs`): features of the month, then the member's baseline
climatology for the calendar month; outputs are in kg C m-2 s-1 per m2 of cell.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from carbonsink.errors import CarbonsinkError

#: Version of the checkpoint layout; loading refuses other versions.
CHECKPOINT_FORMAT = 3
OUTPUTS = ("land_flux", "ocean_flux")


class EmulatorError(CarbonsinkError):
    """A checkpoint that does not fit the data or the code."""


@dataclass
class EmulatorMetadata:
    """Everything needed to use a trained emulator correctly, stored as JSON with it.

    Attributes
    ----------
    member
        The emulated process model (ensemble member).
    variant
        ``mean-teacher`` (semi-supervised) or ``supervised``.
    grid_resolution
        Model grid, degrees; kernels are tied to the cell size.
    channels
        Input channel names, in order.
    normalisation
        Channel -> (mean, std) applied to inputs.
    target_scale
        Output -> scale (kg C m-2 s-1) the network's outputs are multiplied by.
    halo
        Cells of context on each side of a tile.
    architecture
        Constructor arguments of the network.
    training
        Windows, seed, hyper-parameters, losses.
    metrics
        Skill figures (filled by ``carbonsink evaluate``).
    code_version
        carbonsink version that trained it.
    """

    member: str
    variant: str
    grid_resolution: float
    channels: list[str]
    normalisation: dict[str, tuple[float, float]]
    target_scale: dict[str, float]
    halo: int
    architecture: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    code_version: str = ""
    format: int = CHECKPOINT_FORMAT
    outputs: tuple[str, ...] = OUTPUTS

    @property
    def drivers(self) -> list[str]:
        """Feature-store drivers the inputs come from."""
        suffixes = ("_anom", "_clim", "_annual")
        names = [c.rsplit("_", 1)[0] for c in self.channels if c.endswith(suffixes)]
        return list(dict.fromkeys(names))

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> EmulatorMetadata:
        """Parse JSON text (or an already parsed dict)."""
        d = json.loads(text) if isinstance(text, str) else dict(text)
        if d.get("format") != CHECKPOINT_FORMAT:
            raise EmulatorError(
                f"checkpoint format {d.get('format')} is not {CHECKPOINT_FORMAT}; retrain with "
                "this carbonsink version"
            )
        d["normalisation"] = {k: tuple(v) for k, v in d["normalisation"].items()}
        d["outputs"] = tuple(d.get("outputs", OUTPUTS))
        return cls(**d)


class MonthlyBaseline(Protocol):
    """A member's flux climatology, by calendar month (``carbonsink.emulator.inputs``)."""

    fields: np.ndarray

    def month(self, calendar_month: int) -> np.ndarray:
        """The baseline channels of a calendar month (1-12), ``[K, lat, lon]``."""
        ...


class Emulator(Protocol):
    """A trained emulator, as the mapper, the Serve replicas, evaluation and checkpoints use it.

    ``carbonsink.emulator.cnn.CnnEmulator`` implements it; the contract tests in
    ``tests/carbonsink/emulator/test_contract.py`` run over every implementation.
    """

    metadata: EmulatorMetadata

    @property
    def baseline(self) -> MonthlyBaseline | None:
        """The member's climatology when the network takes it as input channels, else None."""
        ...

    @property
    def device(self) -> torch.device:
        """Where ``predict`` runs."""
        ...

    @property
    def halo(self) -> int:
        """Cells of context each side of a tile."""
        ...

    def prepare(self, raw: np.ndarray, calendar_month: int) -> np.ndarray:
        """Normalised inputs ``[C, lat, lon]`` from the raw feature channels of a month."""
        ...

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Fluxes of tiles: ``[B, C, H + 2h, W + 2h] -> [B, K, H, W]``, kg C m-2 s-1."""
        ...

    def predict_numpy(self, features: np.ndarray) -> np.ndarray:
        """:meth:`predict` on numpy arrays."""
        ...

    def state(self) -> dict[str, Any]:
        """Weights as numpy arrays (what a checkpoint stores)."""
        ...
