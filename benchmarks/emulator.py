"""Emulator throughput: training and inference cells per second, against the process model.

The peer of an emulator is the model it replaces: the same run times the reference process
models (numpy, one member, one month on the 0.25 deg grid) on the same machine. Inference
runs the production path (global field, 180 x 360 tiles with halos, channels-last); training
runs the production step (labelled batch plus the mean-teacher batch) on 32 x 32 tiles.

    python benchmarks/emulator.py [--device cuda] [--hidden 32]

Results: ``benchmarks/results/emulator-<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from carbonsink.emulator.base import EmulatorMetadata
from carbonsink.emulator.cnn import CnnEmulator, TileCNN
from carbonsink.emulator.inputs import INPUT_DRIVERS, Baseline, input_channels
from carbonsink.emulator.tiles import predict_global
from carbonsink.emulator.train import TrainConfig, TrainingSet, train_tiles
from carbonsink.grid import ModelGrid
from carbonsink.memory import keep_freed_memory
from carbonsink.process import REFERENCE_MEMBERS, MonthInputs

RESULTS = Path(__file__).parent / "results"


def best_of(fn, repeat: int = 3) -> float:
    """Fastest of ``repeat`` timed calls, seconds (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return min(times)


def synthetic_month(grid: ModelGrid) -> MonthInputs:
    rng = np.random.default_rng(0)
    shape = grid.shape

    def f(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, shape)

    fields = {
        "rsds": f(0, 350), "t2m": f(250, 305), "stl1": f(250, 305), "vpd": f(0, 3000),
        "swvl1": f(0.05, 0.45), "lai_hv": f(0, 5), "lai_lv": f(0, 3), "sst": f(271, 303),
        "siconc": f(0, 1), "msl": f(98000, 103000), "wind_speed": f(1, 12),
        "wind_speed_squared": f(1, 150),
    }  # fmt: skip
    return MonthInputs(fields, fields, f(0, 1), 420.0, 7)


def main() -> None:
    """Run the benchmark and write its JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--resolution", type=float, default=0.25)
    args = ap.parse_args()
    device = torch.device(args.device)
    grid = ModelGrid(args.resolution)
    cells = grid.shape[0] * grid.shape[1]

    member = REFERENCE_MEMBERS["ref-moderate"]
    month = synthetic_month(grid)
    clim = {k: np.stack([v] * 12) for k, v in month.drivers.items()}
    state = member.prepare(clim, month.land_fraction)

    channels = input_channels(INPUT_DRIVERS)
    meta = EmulatorMetadata(
        member="bench", variant="mean-teacher", grid_resolution=grid.resolution,
        channels=channels, normalisation={c: (0.0, 1.0) for c in channels},
        target_scale={"land_flux": 1.0, "ocean_flux": 1.0}, halo=TileCNN.halo,
        architecture={
            "in_channels": len(channels), "hidden": args.hidden, "out_channels": 2,
            "baseline": True,
        },
    )  # fmt: skip
    torch.manual_seed(0)
    baseline = Baseline(np.zeros((12, 2, *grid.shape), np.float32))
    emu = CnnEmulator.build(meta, device, baseline)
    x = np.random.default_rng(0).normal(size=(len(channels), *grid.shape)).astype(np.float32)
    tile = (min(180, grid.shape[0]), min(360, grid.shape[1]))

    n, p = 512, 32
    rng = np.random.default_rng(1)
    data = TrainingSet(
        rng.normal(size=(n, len(channels), p + 4, p + 4)).astype(np.float32),
        rng.normal(size=(n, 2, p, p)).astype(np.float32),
        rng.normal(size=(n // 2, len(channels), p + 4, p + 4)).astype(np.float32),
        np.ones((n // 2, 2, p, p), bool),
    )

    def train() -> float:
        torch.manual_seed(0)
        module = TileCNN(len(channels), args.hidden, baseline=True)
        config = TrainConfig(epochs=2, clean_channels=2)
        return train_tiles(module, data, config, device).cells_per_second

    def timings() -> tuple[float, float, float]:
        """Process model and inference seconds per global month, training cells/s."""
        t_process = best_of(lambda: member.fluxes(month, state))
        t_infer = best_of(lambda: predict_global(emu.predict_numpy, x, emu.halo, tile, batch=8))
        return t_process, t_infer, train()

    train()  # warm-up: the first training in a process pays one-off set-up costs
    default = timings()
    # The same work once glibc keeps freed memory for reuse, as the command's process, Serve
    # replicas and Dask workers run (carbonsink.memory): the peer is the default heap above.
    kept = keep_freed_memory()
    t_process, t_infer_kept, train_kept = timings()
    t_process_default, t_infer, train_default = default

    out = {
        "machine": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "grid": args.resolution,
        "hidden": args.hidden,
        "process_model_cells_per_s": cells / t_process,
        "emulator_inference_cells_per_s": cells / t_infer_kept,
        "emulator_inference_s_per_global_month": t_infer_kept,
        "emulator_inference_default_heap_cells_per_s": cells / t_infer,
        "process_model_s_per_global_month": t_process,
        "process_model_default_heap_s_per_global_month": t_process_default,
        "training_cells_per_s": train_kept,
        "training_default_heap_cells_per_s": train_default,
        "freed_memory_kept": kept,
        "torch": torch.__version__,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"emulator-{device.type}.json").write_text(json.dumps(out, indent=2))
    print(
        f"{device}: process model {out['process_model_cells_per_s']:,.0f} cells/s "
        f"({t_process:.2f} s per global month; {t_process_default:.2f} s with the default "
        "heap); emulator inference "
        f"{out['emulator_inference_cells_per_s']:,.0f} cells/s ({t_infer_kept:.2f} s; "
        f"{t_infer:.2f} s with the default heap); training {train_kept:,.0f} cells/s "
        f"({train_default:,.0f} with the default heap)"
    )


if __name__ == "__main__":
    main()
