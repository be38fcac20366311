"""Peak memory per worker against the length of a backfill: 12 months against 120.

Claim under test: a backfill works one unit (a year) at a time and streams tiles, so the
peak memory of each Dask worker, each Ray Serve replica and the driver does not grow with
the window. The limit it is compared with is the 12-month run's own peak, measured in the
same run on the same lake: memory that grew with the window would be about ten times it
for 120 months; bounded memory stays near it (the ratio is printed and recorded).

Measured: resident set size (RSS) of every process the benchmark starts, sampled every
0.1 s with psutil, during ``run_backfill`` of 2020 (12 months) and of 2011-2020 (120 months)
on copies of one lake: monthly sample data at ``--resolution`` (4 deg by default), tiny
emulators trained on 2011-2012.

    python benchmarks/memory.py [--resolution 4]

Results: ``benchmarks/results/memory.json``; ``docs/reliability.md`` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil

from carbonsink.config import DaskSettings, Settings, load_settings
from carbonsink.sample.store import SampleSpec, create_template, sample_land_fraction, write_block
from carbonsink.timeutil import MonthWindow

DATA = Path(__file__).parent / ".data" / "memory"
RESULTS = Path(__file__).parent / "results"
TINY = {
    "crop": 8, "crops_per_month": 6, "epochs": 2, "batch_size": 16, "hidden": 8,
    "holdout_start": "2012-07", "holdout_end": "2012-12", "compare_supervised": False,
}  # fmt: skip


def sample(path: Path, resolution: float) -> str:
    """Monthly ERA5-like data for 2011-2020 (written once, then reused)."""
    spec = SampleSpec(
        MonthWindow.parse("2011-01", "2020-12"), resolution=resolution, step="1MS", seed=0
    )
    if not path.exists():
        create_template(str(path), spec, overwrite=True)
        land = sample_land_fraction(spec)
        for block in spec.block_slices():
            write_block(str(path), spec, block, land)
    return str(path)


def settings(lake: Path, source: str, resolution: float, port: int, **kw: Any) -> Settings:
    """The benchmark's settings: a coarse grid and tiny emulators."""
    return load_settings(
        None,
        lake=str(lake),
        source=source,
        grid={"resolution": resolution, "tile_lat": 9, "tile_lon": 18, "chunk_tiles": 1},
        ingest={"baseline_start": "2011-01", "baseline_end": "2011-12"},
        labels={"end": "2012-12"},
        emulator=TINY,
        budget={"reference_start": 2020, "reference_end": 2020},
        serve={"http_port": port, "in_flight": 16},
        **kw,
    )


class Sampler:
    """Peak RSS (MiB) of this process and every descendant, by role, sampled every 0.1 s."""

    def __init__(self) -> None:
        self.peaks: dict[str, dict[int, float]] = defaultdict(dict)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def role(p: psutil.Process) -> str | None:
        try:
            cmd = " ".join(p.cmdline())
            name = p.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        if "ServeReplica" in cmd or "ServeReplica" in name:
            return "serve replica (emulator)" if "emulator" in cmd + name else "serve (other)"
        if "spawn_main" in cmd:
            return "dask worker"
        return None

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            rows = [("driver", me)]
            for p in me.children(recursive=True):
                r = self.role(p)
                if r is not None:
                    rows.append((r, p))
            for role, p in rows:
                try:
                    rss = p.memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    continue
                self.peaks[role][p.pid] = max(self.peaks[role].get(p.pid, 0.0), rss)
            time.sleep(0.1)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        """The largest peak of any one process in each role (MiB)."""
        return {role: round(max(p.values()), 1) for role, p in sorted(self.peaks.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=float, default=4.0)
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("CARBONSINK_PROGRESS", "0")
    import ray
    from ray import serve

    from cluster.dask import dask_client
    from pipelines.backfill import run_backfill
    from pipelines.ingest import run_ingest
    from pipelines.labels import run_labels
    from pipelines.train import run_train

    DATA.mkdir(parents=True, exist_ok=True)
    source = sample(DATA / f"monthly-{args.resolution:g}deg.zarr", args.resolution)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    results: dict[str, Any] = {"resolution_deg": args.resolution, "runs": {}}
    with dask_client(DaskSettings(n_workers=2, threads_per_worker=1)) as client:
        base = DATA / "lake"
        if not (base / "models").exists():
            shutil.rmtree(base, ignore_errors=True)
            s = settings(base, source, args.resolution, port, start="2011-01", end="2012-12")
            run_ingest(s, client)
            run_labels(s, client)
            run_train(s, client)
        for label, start in (("12 months", "2020-01"), ("120 months", "2011-01")):
            lake = DATA / f"lake-{label.split()[0]}"
            shutil.rmtree(lake, ignore_errors=True)
            shutil.copytree(base, lake)
            s = settings(lake, source, args.resolution, port, start=start, end="2020-12")
            t0 = time.perf_counter()
            with Sampler() as sampler:
                report = run_backfill(s, client)
            results["runs"][label] = {
                "seconds": round(time.perf_counter() - t0, 1),
                "units": report.units_run,
                "peak_rss_mib": sampler.summary(),
            }
            print(label, json.dumps(results["runs"][label]))
            shutil.rmtree(lake, ignore_errors=True)
    serve.shutdown()
    ray.shutdown()
    short, long = (results["runs"][k]["peak_rss_mib"] for k in ("12 months", "120 months"))
    results["ratio_120_over_12"] = {
        k: round(long[k] / short[k], 3) for k in short if k in long and short[k]
    }
    print("peak RSS ratio, 120 over 12 months:", results["ratio_120_over_12"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
