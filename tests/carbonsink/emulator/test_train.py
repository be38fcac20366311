"""A tiny training run on a known pointwise function; determinism; the mean teacher."""

import numpy as np
import torch

from carbonsink.emulator.cnn import TileCNN
from carbonsink.emulator.train import TrainConfig, TrainingSet, masked_mse, ramp, train_tiles


def toy(n, seed, p=6, c=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, p + 4, p + 4)).astype(np.float32)
    core = x[:, :, 2:-2, 2:-2]
    y = np.stack([np.tanh(core[:, 0]) * core[:, 1], core[:, 2] ** 2 - 1], axis=1)
    y[:, 1, :2] = np.nan  # "land" rows of the ocean output are undefined
    return x, y.astype(np.float32)


def data(n=96, unlabelled=32):
    x, y = toy(n, 0)
    xu, _ = toy(unlabelled, 1)
    return TrainingSet(x, y, xu, np.ones((unlabelled, 2, 6, 6), bool))


def evaluate(module, n=64):
    x, y = toy(n, 2)
    with torch.no_grad():
        pred = module(torch.from_numpy(x)).numpy()
    ok = np.isfinite(y)
    return float(np.mean((pred[ok] - y[ok]) ** 2) / np.var(y[ok]))


def test_tiny_training_run_learns_and_is_deterministic():
    cfg = TrainConfig(epochs=30, batch_size=16, learning_rate=1e-2, consistency_weight=1.0)
    before = evaluate(TileCNN(3, 16))
    torch.manual_seed(0)
    a = train_tiles(TileCNN(3, 16), data(), cfg, torch.device("cpu"))
    torch.manual_seed(0)
    b = train_tiles(TileCNN(3, 16), data(), cfg, torch.device("cpu"))
    for pa, pb in zip(a.module.parameters(), b.module.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    after = evaluate(a.module)
    assert after < 0.5 * before and after < 0.5
    assert a.history[-1]["consistency_loss"] > 0
    assert a.history[-1]["supervised_loss"] < a.history[0]["supervised_loss"]
    assert a.cells_per_second > 0


def test_supervised_only_has_no_consistency_term():
    cfg = TrainConfig(epochs=2, batch_size=16, consistency_weight=0.0)
    r = train_tiles(TileCNN(3, 8), data(), cfg, torch.device("cpu"))
    assert all(h["consistency_loss"] == 0 for h in r.history)


def test_masked_loss_and_ramp():
    pred = torch.tensor([1.0, 2.0, 3.0])
    target = torch.tensor([1.0, 0.0, 0.0])
    mask = torch.tensor([1.0, 1.0, 0.0])
    assert float(masked_mse(pred, target, mask)) == 2.0
    assert ramp(0, 100) < 0.01 and ramp(40, 100) == 1.0 and ramp(100, 100) == 1.0
