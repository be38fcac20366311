"""The ``Emulator`` contract, run over every implementation: the CNN and a tiny fake.

Whatever emulates a member, the mapper, the Serve replicas, evaluation and checkpoints rely
on the same things: tiles with a halo in, tile interiors out at the declared scale; tiles
predicted alone equal tiles predicted in a batch (so batching never changes a map); numpy
and torch give the same; ``prepare`` appends the baseline and normalises; ``state`` is
plain arrays.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from carbonsink.emulator.base import Emulator, EmulatorMetadata, MonthlyBaseline
from carbonsink.emulator.inputs import normalise
from carbonsink.emulator.tiles import pad_global, predict_global
from tests.carbonsink.emulator.test_cnn_checkpoint import fake_emulator, metadata


@dataclass
class BoxMeanEmulator:
    """A tiny emulator: each flux is a scaled mean of the inputs over the halo's box."""

    metadata: EmulatorMetadata
    baseline: MonthlyBaseline | None = None

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def halo(self) -> int:
        return self.metadata.halo

    def prepare(self, raw: np.ndarray, calendar_month: int) -> np.ndarray:
        parts = [raw] + ([self.baseline.month(calendar_month)] if self.baseline else [])
        return normalise(np.concatenate(parts), self.metadata.channels, self.metadata.normalisation)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        h, k = self.halo, len(self.metadata.outputs)
        box = torch.nn.functional.avg_pool2d(features.float(), 2 * h + 1, stride=1)
        scale = torch.tensor([self.metadata.target_scale[o] for o in self.metadata.outputs])
        return box[:, :k] * scale.view(1, -1, 1, 1)

    def predict_numpy(self, features: np.ndarray) -> np.ndarray:
        return self.predict(torch.from_numpy(np.ascontiguousarray(features))).numpy()

    def state(self) -> dict[str, Any]:
        return {}


def box_mean() -> BoxMeanEmulator:
    return BoxMeanEmulator(metadata(["t2m_anom", "sst_anom", "co2"]))


IMPLEMENTATIONS = {"cnn": fake_emulator, "box-mean": box_mean}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def emulator(request) -> Emulator:
    emu: Emulator = IMPLEMENTATIONS[request.param]()
    return emu


def inputs(emu: Emulator, batch: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    c, halo = len(emu.metadata.channels), emu.halo
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(size=(batch, c, h + 2 * halo, w + 2 * halo)).astype("f4"))


def test_tiles_with_a_halo_in_tile_interiors_out(emulator):
    y = emulator.predict(inputs(emulator, 3, 6, 8))
    assert tuple(y.shape) == (3, len(emulator.metadata.outputs), 6, 8)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()


def test_a_tile_alone_equals_the_tile_in_a_batch(emulator):
    x = inputs(emulator, 5, 6, 8, seed=1)
    together = emulator.predict(x)
    for i in range(5):
        alone = emulator.predict(x[i : i + 1])
        torch.testing.assert_close(alone[0], together[i], rtol=1e-5, atol=1e-12)


def test_numpy_and_torch_agree(emulator):
    x = inputs(emulator, 2, 4, 4, seed=2)
    np.testing.assert_allclose(
        emulator.predict_numpy(x.numpy()), emulator.predict(x).numpy(), rtol=1e-6
    )


def test_tiles_join_into_the_global_prediction_without_seams(emulator):
    c, halo = len(emulator.metadata.channels), emulator.halo
    x = np.random.default_rng(3).normal(size=(c, 12, 24)).astype("f4")
    whole = emulator.predict_numpy(pad_global(x, halo)[None])[0]
    tiled = predict_global(emulator.predict_numpy, x, halo, (6, 8), batch=2)
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-12)


def test_prepare_gives_the_declared_channels(emulator):
    raw_channels = len(emulator.metadata.channels) - (
        len(emulator.metadata.outputs) if emulator.baseline is not None else 0
    )
    raw = np.random.default_rng(4).normal(size=(raw_channels, 18, 36)).astype("f4")
    prepared = emulator.prepare(raw, 7)
    assert prepared.shape == (len(emulator.metadata.channels), 18, 36)


def test_state_is_plain_arrays(emulator):
    assert all(isinstance(v, np.ndarray) for v in emulator.state().values())
    assert emulator.halo == emulator.metadata.halo
