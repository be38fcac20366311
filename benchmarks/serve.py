"""Tiles per second through Ray Serve against bare torch, batch sizes, and a month's map.

Peer: the same :class:`~carbonsink.emulator.mapper.TileMapper` work (read the tile with its
halo from the lake, one forward pass per member and batch, crop, mask) called in-process
in batches of ``serve.max_batch_size``, on the same device, in the same run. The Serve path
sends one request per tile key with ``serve.in_flight`` outstanding, so it adds request
routing, batching, serialisation of the answers and the event loop. Then the whole of
``carbonsink infer`` for one month (writes, fork merge, ensemble, checks) is timed.

Needs a trained lake (``make run`` then ``carbonsink labels``, ``train``):

    python benchmarks/serve.py --lake output/lake [--month 2024-06] [--num-gpus 1]

Results: ``benchmarks/results/serve-<device>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path

import pandas as pd
import torch

from carbonsink.config import load_settings
from carbonsink.emulator.cnn import pick_device
from carbonsink.emulator.mapper import TileMapper
from carbonsink.lake.lake import Lake

RESULTS = Path(__file__).parent / "results"


async def through_serve(handle, keys, in_flight: int) -> float:
    """Seconds to map ``keys`` through the emulator deployment (answers returned)."""
    from cluster.serve_app import TileRequest

    sem = asyncio.Semaphore(in_flight)

    async def one(key):
        async with sem:
            r = await handle.map_tile.remote(TileRequest(key))
            assert r.status == "ok", r.status

    t = time.perf_counter()
    await asyncio.gather(*(one(k) for k in keys))
    return time.perf_counter() - t


def main() -> None:
    """Run the benchmark and write its JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lake", default="output/lake")
    ap.add_argument("--month", default="2024-06")
    ap.add_argument("--num-gpus", type=float, default=0.0)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import serve

    from cluster.serve_app import APP_NAME, EMULATOR, build_app, wait_ready
    from pipelines.infer import run_infer

    month = pd.Period(args.month, freq="M")
    device = pick_device("cuda" if args.num_gpus > 0 else "cpu")
    s = load_settings(
        None, lake=args.lake, start=args.month, end=args.month,
        serve={"num_gpus": args.num_gpus, "max_batch_size": args.batch,
               "max_ongoing_requests": 2 * args.batch, "in_flight": 4 * args.batch},
    )  # fmt: skip
    lake = Lake(s.lake, s.lake_storage)

    # Bare torch: the same mapper work in-process, batches of the same size.
    mapper = TileMapper.open(lake, s.serve.variant, device=device)
    keys = mapper.keys([month])
    mapper.predict(keys[: args.batch])  # warm-up: reads the month, initialises torch
    t = time.perf_counter()
    for k in range(0, len(keys), args.batch):
        mapper.predict(keys[k : k + args.batch])
    bare = time.perf_counter() - t
    del mapper

    ray.init(include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": 0})
        serve.run(build_app(lake.url, s.lake_storage.model_dump(), s.serve), name=APP_NAME)
        handle = serve.get_deployment_handle(EMULATOR, app_name=APP_NAME)
        info = wait_ready(handle)
        asyncio.run(through_serve(handle, keys[: args.batch], s.serve.in_flight))  # warm-up
        served = asyncio.run(through_serve(handle, keys, s.serve.in_flight))
        batches = handle.describe.remote().result()["batch_sizes"]
        report = run_infer(s)
    finally:
        serve.shutdown()
        ray.shutdown()
    cells = len(keys) * info["tile"][0] * info["tile"][1]
    out = {
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "grid": info["resolution"],
        "tile": info["tile"],
        "tiles": len(keys),
        "batch": args.batch,
        "bare_tiles_per_s": len(keys) / bare,
        "serve_tiles_per_s": len(keys) / served,
        "serve_over_bare": bare / served,
        "serve_cells_per_s": cells / served,
        "batch_sizes_seen": batches,
        "infer_one_month_s": report.seconds,
        "infer_lines": report.lines,
        "ray": ray.__version__,
        "torch": torch.__version__,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"serve-{device.type}.json").write_text(json.dumps(out, indent=2))
    print(
        f"{device}: bare {out['bare_tiles_per_s']:.2f} tiles/s, Serve "
        f"{out['serve_tiles_per_s']:.2f} tiles/s ({100 * out['serve_over_bare']:.0f} % of bare), "
        f"batch sizes {batches}; carbonsink infer of {args.month}: {report.seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
