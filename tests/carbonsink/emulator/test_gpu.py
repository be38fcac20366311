"""The CUDA path: bf16 autocast inference and training on a GPU (skipped without one)."""

import numpy as np
import pytest
import torch

from carbonsink.emulator.cnn import CnnEmulator, TileCNN, pick_device
from carbonsink.emulator.train import TrainConfig, TrainingSet, train_tiles
from tests.carbonsink.emulator.test_cnn_checkpoint import metadata

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_gpu_inference_matches_cpu_within_bf16_precision():
    assert pick_device().type == "cuda"
    chans = [f"c{i}_anom" for i in range(6)]
    torch.manual_seed(0)
    module = TileCNN(len(chans), 16)
    cpu = CnnEmulator(module, metadata(chans, hidden=16), torch.device("cpu"))
    x = torch.randn(4, len(chans), 36, 36)
    ref = cpu.predict(x)
    gpu = CnnEmulator(TileCNN(len(chans), 16), metadata(chans, hidden=16), torch.device("cuda"))
    gpu.module.load_state_dict(cpu.module.state_dict())
    out = gpu.predict(x).cpu()
    assert out.shape == ref.shape
    scale = ref.abs().max()
    assert float((out - ref).abs().max() / scale) < 0.05  # bf16 has 8 bits of mantissa


def test_gpu_training_step_runs_and_learns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3, 12, 12)).astype(np.float32)
    y = np.stack([x[:, 0, 2:-2, 2:-2], x[:, 1, 2:-2, 2:-2] ** 2], 1).astype(np.float32)
    data = TrainingSet(x, y, x[:16], np.ones((16, 2, 8, 8), bool))
    r = train_tiles(TileCNN(3, 16), data, TrainConfig(epochs=20, batch_size=16, learning_rate=1e-2),
                    torch.device("cuda"))  # fmt: skip
    assert r.history[-1]["supervised_loss"] < 0.5 * r.history[0]["supervised_loss"]
