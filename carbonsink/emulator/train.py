"""Semi-supervised training of a tile emulator: supervised loss plus a mean teacher.

Labels exist up to the process models' last year; the newest months have drivers but no
labels. The mean teacher (Tarvainen & Valpola 2017, NeurIPS, arXiv:1703.01780) uses them: a
teacher network, the exponential moving average of the student's weights, predicts on the
unlabelled tiles under one random perturbation of the inputs, and the student is pulled
towards that prediction under another. The consistency weight ramps up over the first 40 %
of the steps (Laine & Aila 2017, ICLR, arXiv:1610.02242). A consistency weight of 0 gives
the supervised-only baseline, trained identically, for the comparison the skill report
makes. Training is deterministic for a seed on the CPU.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run."""

    epochs: int = 8
    batch_size: int = 32
    learning_rate: float = 2e-3
    consistency_weight: float = 0.2
    ema_decay: float = 0.99
    input_noise: float = 0.1
    seed: int = 0
    #: Trailing input channels left unperturbed: a baseline the output is added to would
    #: otherwise pass the noise straight into the prediction.
    clean_channels: int = 0
    #: Tiles of Gaussian noise drawn once per run; a perturbation adds randomly chosen,
    #: randomly signed tiles of this bank. Drawing fresh noise for every batch took 15 % of
    #: a CPU training step (measured); 256 tiles against ~3,500 per epoch keep the pairs of
    #: tile and noise from repeating.
    noise_bank: int = 256


@dataclass
class TrainingSet:
    """Normalised tiles for one member.

    Attributes
    ----------
    x
        Labelled inputs ``[N, C, P + 2h, P + 2h]``.
    y
        Scaled targets ``[N, K, P, P]``, NaN where missing (outside a domain).
    x_unlabelled
        Inputs of months without labels ``[M, C, P + 2h, P + 2h]`` (M may be 0).
    mask_unlabelled
        Where each output is defined on the unlabelled tiles ``[M, K, P, P]``.
    """

    x: np.ndarray
    y: np.ndarray
    x_unlabelled: np.ndarray
    mask_unlabelled: np.ndarray


@dataclass
class TrainResult:
    """The trained (teacher) network and the loss history."""

    module: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    cells_per_second: float = 0.0


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the cells where ``mask`` holds."""
    n = mask.sum().clamp(min=1)
    return (((pred - target) ** 2) * mask).sum() / n


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def ramp(step: int, total: int, fraction: float = 0.4) -> float:
    """Sigmoid ramp-up ``exp(-5 (1 - t)^2)`` over the first ``fraction`` of training."""
    t = min(1.0, step / max(1.0, fraction * total))
    return math.exp(-5.0 * (1.0 - t) ** 2)


@torch.no_grad()
def _ema(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    for pt, ps in zip(teacher.parameters(), student.parameters(), strict=True):
        pt.mul_(decay).add_(ps.detach(), alpha=1.0 - decay)


def train_tiles(
    module: nn.Module,
    data: TrainingSet,
    config: TrainConfig,
    device: torch.device,
    progress: Callable[[int, int, float], None] | None = None,
) -> TrainResult:
    """Train ``module`` in place and return its mean teacher.

    Parameters
    ----------
    module
        The student network (initialised).
    data
        Labelled and unlabelled tiles.
    config
        Hyper-parameters.
    device
        CPU or CUDA; CUDA trains under bf16 autocast.
    progress
        Called as ``progress(step, total_steps, loss)``.
    """
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_filling = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    torch.use_deterministic_algorithms(device.type == "cpu" or was_deterministic)
    # Deterministic mode also fills every new tensor with NaN to expose reads of
    # uninitialised memory: a debugging aid that cost 12 % of a CPU step here (measured).
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        return _train(module, data, config, device, progress, gen, t0)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.utils.deterministic.fill_uninitialized_memory = was_filling  # type: ignore[attr-defined]


def _train(
    module: nn.Module,
    data: TrainingSet,
    config: TrainConfig,
    device: torch.device,
    progress: Callable[[int, int, float], None] | None,
    gen: torch.Generator,
    t0: float,
) -> TrainResult:
    module = module.to(device).to(memory_format=torch.channels_last).train()  # type: ignore[call-overload]
    teacher = copy.deepcopy(module).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    x = torch.from_numpy(data.x)
    y = torch.from_numpy(np.nan_to_num(data.y, nan=0.0))
    ymask = torch.from_numpy(np.isfinite(data.y).astype(np.float32))
    xu = torch.from_numpy(data.x_unlabelled)
    mu = torch.from_numpy(data.mask_unlabelled.astype(np.float32))
    use_u = config.consistency_weight > 0 and len(xu) > 0
    n = len(x)
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    total = steps_per_epoch * config.epochs
    opt = torch.optim.AdamW(module.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    warm = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warm))
    autocast = device.type == "cuda"
    history: list[dict[str, float]] = []
    step = 0

    bank = torch.randn((config.noise_bank, *x.shape[1:]), generator=gen) * config.input_noise
    if config.clean_channels:
        bank[:, -config.clean_channels :] = 0.0

    def noisy(t: torch.Tensor) -> torch.Tensor:
        rows = torch.randint(len(bank), (len(t),), generator=gen)
        sign = torch.randint(2, (len(t), 1, 1, 1), generator=gen).float() * 2 - 1
        out = torch.addcmul(t, bank[rows], sign).to(device, non_blocking=True)
        return out.contiguous(memory_format=torch.channels_last)

    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=gen)
        sup_sum = cons_sum = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            xb = noisy(x[idx])
            yb, mb = y[idx].to(device), ymask[idx].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                sup = masked_mse(module(xb).float(), yb, mb)
                loss = sup
                cons = torch.zeros((), device=device)
                if use_u:
                    uidx = torch.randint(len(xu), (max(1, config.batch_size // 2),), generator=gen)
                    xub, mub = xu[uidx], mu[uidx].to(device)
                    with torch.no_grad():
                        target = teacher(noisy(xub)).float()
                    cons = masked_mse(module(noisy(xub)).float(), target, mub)
                    loss = sup + config.consistency_weight * ramp(step, total) * cons
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            _ema(teacher, module, config.ema_decay)
            step += 1
            sup_sum += sup.detach().item()
            cons_sum += cons.detach().item()
            if progress is not None:
                progress(step, total, sup.detach().item())
        history.append(
            {
                "epoch": epoch + 1,
                "supervised_loss": sup_sum / steps_per_epoch,
                "consistency_loss": cons_sum / steps_per_epoch,
            }
        )
    seconds = time.perf_counter() - t0
    cells = total * config.batch_size * (1 + int(use_u)) * data.y.shape[-1] * data.y.shape[-2]
    return TrainResult(teacher.eval(), history, seconds, cells / seconds)
