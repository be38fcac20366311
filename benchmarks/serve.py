"""Tiles per second through Ray Serve against bare torch, batch sizes, and a month's map.

Peer: the same :class:`~carbonsink.emulator.mapper.TileMapper` work (read the tile with its
halo from the lake, one forward pass per member and batch, crop, mask) called in-process
in batches of ``serve.max_batch_size``, on the same device, in the same run. The Serve path
sends one request per tile key with ``serve.in_flight`` outstanding, so it adds request
routing, batching, serialisation of the answers and the event loop. Then the whole of
``carbonsink infer`` for one month (writes, fork merge, ensemble, checks) is timed.

Layouts: the multiplexed deployment (one replica serves every member) against one
deployment per member, with the same total CPUs reserved (``--cpus``; each of the
per-member replicas gets a third).

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

from carbonsink.emulator.cnn import pick_device
from carbonsink.emulator.mapper import TileMapper
from carbonsink.lake.lake import Lake
from carbonsink.memory import keep_freed_memory
from pipelines.settings import load_settings

RESULTS = Path(__file__).parent / "results"


async def through_serve(routes, keys, in_flight: int) -> float:
    """Seconds to map ``keys`` through the emulator deployment(s) (answers returned)."""
    from cluster.serve_app import TileRequest

    sem = asyncio.Semaphore(in_flight)

    async def one(key):
        async with sem:
            r = await routes.handle(key.member).map_tile.remote(TileRequest(key))
            assert r.status == "ok", r.status

    t = time.perf_counter()
    await asyncio.gather(*(one(k) for k in keys))
    return time.perf_counter() - t


def main() -> None:
    """Run the benchmark and write its JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lake", default="output/lake")
    ap.add_argument("--month", default="2024-06", help="first month mapped")
    ap.add_argument("--months", type=int, default=3, help="months timed (16 tiles x members)")
    ap.add_argument("--num-gpus", type=float, default=0.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--cpus", type=float, default=1.0, help="CPUs reserved for the emulators")
    args = ap.parse_args()
    # The bare-torch peer runs with the heap setting Serve's replicas use.
    keep_freed_memory()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import serve

    from cluster.ray import start_local
    from cluster.serve_app import APP_NAME, Routes, build_app, plan_deployments, wait_ready
    from pipelines.stages.infer import run_infer

    month = pd.Period(args.month, freq="M")
    device = pick_device("cuda" if args.num_gpus > 0 else "cpu")
    s = load_settings(
        None, lake=args.lake, start=args.month, end=args.month,
        serve={"num_gpus": args.num_gpus, "max_batch_size": args.batch, "num_cpus": args.cpus,
               "max_ongoing_requests": 2 * args.batch, "in_flight": 4 * args.batch},
    )  # fmt: skip
    storage = s.lake_storage.model_dump()
    lake = Lake(s.lake, s.lake_storage)

    # Bare torch: the same mapper work in-process, batches of the same size.
    mapper = TileMapper.open(lake, s.serve.variant, device=device)
    keys = mapper.keys(pd.period_range(month, periods=args.months, freq="M"))
    mapper.predict(keys[: args.batch])  # warm-up: reads the month, initialises torch
    t = time.perf_counter()
    for k in range(0, len(keys), args.batch):
        mapper.predict(keys[k : k + args.batch])
    bare = time.perf_counter() - t
    mapper_members = mapper.members
    del mapper

    start_local(None)
    layouts = {}
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": 0})
        # (name, layout, replicas per deployment): the multiplexed layout once with one
        # replica, once with as many replicas as there are members, so that processes and
        # reserved CPUs match the per-member layout.
        nm = len(mapper_members)
        # The default fixes the tiles per forward pass (byte-identical re-runs); "unfixed"
        # measures what that costs.
        configs = [
            ("per-member", "per-member", 1, True),
            ("multiplexed", "multiplexed", 1, True),
            ("multiplexed, unfixed passes", "multiplexed", 1, False),
            (f"multiplexed x{nm}", "multiplexed", nm, True),
        ]
        for name, layout, replicas, pad in configs:
            # processes sharing args.cpus in the per-member and x{nm} layouts
            n = 1 if name.startswith("multiplexed") and replicas == 1 else nm
            ss = s.serve.model_copy(
                update={
                    "layout": layout,
                    "num_cpus": args.cpus / n,
                    "num_replicas": replicas,
                    "fixed_passes": pad,
                }
            )
            plan = plan_deployments(lake.url, storage, ss)
            serve.run(build_app(lake.url, storage, ss, plan), name=APP_NAME)
            routes = Routes.of_app(plan)
            info = wait_ready(routes)
            # warm-up: every replica loads its weights and reads the first month
            first = [k for k in keys if k.month == keys[0].month]
            asyncio.run(through_serve(routes, first[:: max(1, len(first) // (8 * n))], 64))
            served = asyncio.run(through_serve(routes, keys, ss.in_flight))
            layouts[name] = {
                "deployments": len(plan),
                "replicas": len(plan) * replicas,
                "cpus_per_replica": ss.num_cpus,
                "tiles_per_s": len(keys) / served,
                "over_bare": bare / served,
                "batch_sizes_seen": asyncio.run(routes.describe())["batch_sizes"],
            }
            serve.delete(APP_NAME)
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
        "cpus": args.cpus,
        "bare_tiles_per_s": len(keys) / bare,
        "serve_tiles_per_s": layouts["multiplexed"]["tiles_per_s"],
        "serve_over_bare": layouts["multiplexed"]["over_bare"],
        "serve_cells_per_s": cells * layouts["multiplexed"]["tiles_per_s"] / len(keys),
        "batch_sizes_seen": layouts["multiplexed"]["batch_sizes_seen"],
        "layouts": layouts,
        "infer_one_month_s": report.seconds,
        "infer_lines": report.lines,
        "ray": ray.__version__,
        "torch": torch.__version__,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"serve-{device.type}.json").write_text(json.dumps(out, indent=2))
    print(f"{device}: bare torch {out['bare_tiles_per_s']:.2f} tiles/s")
    for layout, r in layouts.items():
        print(
            f"  Serve, {layout} ({r['deployments']} deployment(s), {r['replicas']} replica(s), "
            f"{r['cpus_per_replica']:.2f} CPU each): {r['tiles_per_s']:.2f} tiles/s "
            f"({100 * r['over_bare']:.0f} % of bare), "
            f"batch sizes {r['batch_sizes_seen']}"
        )
    print(f"carbonsink infer of {args.month}: {report.seconds:.1f} s")


if __name__ == "__main__":
    main()
