"""Peak memory per worker against the length of a backfill: 12 months against 120.

Claim under test: a backfill works one unit (a year) at a time and streams tiles, so the
peak memory of each Dask worker, each Ray Serve replica and the driver does not grow with
the window. The limit it is compared with is the 12-month run's own peak, measured in the
same run on the same lake: memory that grew with the window would be about ten times it
for 120 months; bounded memory stays near it (the ratio is printed and recorded).

Measured: resident set size (RSS) of every process a backfill starts, sampled every 0.1 s
with psutil, during ``carbonsink backfill`` of 2020 (12 months) and of 2011-2020 (120
months) on copies of one lake: monthly sample data at ``--resolution`` (4 deg by default),
tiny emulators trained on 2011-2012. Each backfill runs as its own command, as a user
runs it, so the driver, its Dask workers and its Ray processes start fresh in both runs.
Besides each run's peak, the peak within every unit of the long run is recorded (unit
boundaries from the plan's "done" times): memory held for the window would climb unit by
unit; bounded memory levels off.

    python benchmarks/memory.py [--resolution 4]

Results: ``benchmarks/results/memory.json``; ``docs/reliability.md`` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil
import yaml

from carbonsink.sample.store import SampleSpec, create_template, sample_land_fraction, write_block
from carbonsink.timeutil import MonthWindow
from pipelines.settings import DaskSettings, Settings, load_settings

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
    """RSS (MiB) of a process and its descendants, by role, sampled every 0.1 s."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peaks: dict[str, dict[int, float]] = defaultdict(dict)
        #: (time, role, largest RSS of any one process of the role) per sample
        self.series: list[tuple[float, str, float]] = []
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
        if "pipelines.cli" in cmd:
            return "driver"
        return None

    def _run(self) -> None:
        try:
            root = psutil.Process(self.root)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            now: dict[str, float] = {}
            for p in procs:
                r = self.role(p)
                try:
                    rss = p.memory_info().rss / 2**20 if r else 0.0
                except psutil.NoSuchProcess:
                    continue
                if r is not None:
                    self.peaks[r][p.pid] = max(self.peaks[r].get(p.pid, 0.0), rss)
                    now[r] = max(now.get(r, 0.0), rss)
            t = time.time()
            self.series += [(t, r, v) for r, v in now.items()]
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

    def per_unit(self, ends: list[tuple[str, float]]) -> list[dict[str, Any]]:
        """The peak of each role within each unit (``ends``: unit id and done time, sorted)."""
        out, start = [], 0.0
        for unit, end in ends:
            peaks: dict[str, float] = {}
            for t, r, v in self.series:
                if start < t <= end:
                    peaks[r] = max(peaks.get(r, 0.0), v)
            out.append({"unit": unit, **{r: round(v, 1) for r, v in sorted(peaks.items())}})
            start = end
        return out


def trend(per_unit: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Per stage (ingest; map and publish) and role: peak over the first and last 2 years."""
    out: dict[str, dict[str, list[float]]] = {}
    for stage in ("ingest", "map"):
        rows = [u for u in per_unit if (u["unit"].endswith("/ingest")) == (stage == "ingest")]
        years = sorted({u["unit"][:4] for u in rows})
        first, last = set(years[:2]), set(years[-2:])
        roles = sorted({k for u in rows for k in u if k != "unit"})
        out[stage] = {
            r: [
                max((u.get(r, 0.0) for u in rows if u["unit"][:4] in part), default=0.0)
                for part in (first, last)
            ]
            for r in roles
        }
    return out


def backfill(s: Settings, config: Path) -> tuple[Sampler, float, int, list[tuple[str, float]]]:
    """``carbonsink backfill`` of ``s`` as a command; its sampler, seconds, units, unit ends."""
    from carbonsink.lake.lake import Lake
    from carbonsink.lake.plan_store import read_plans

    config.write_text(yaml.safe_dump(s.model_dump(mode="json", exclude_none=True)))
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pipelines.cli", "backfill", "--config", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    with Sampler(proc.pid) as sampler:
        if proc.wait() != 0:
            raise SystemExit(f"backfill failed with exit code {proc.returncode}")
    seconds = time.perf_counter() - t0
    plans, _ = read_plans(Lake(s.lake))
    done = plans[-1].done
    ends = sorted(((u, float(r["at"])) for u, r in done.items()), key=lambda x: x[1])
    return sampler, seconds, len(done), ends


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=float, default=4.0)
    args = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("CARBONSINK_PROGRESS", "0")
    from cluster.dask import dask_client
    from pipelines.stages.ingest import run_ingest
    from pipelines.stages.labels import run_labels
    from pipelines.stages.train import run_train

    DATA.mkdir(parents=True, exist_ok=True)
    source = sample(DATA / f"monthly-{args.resolution:g}deg.zarr", args.resolution)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    results: dict[str, Any] = {"resolution_deg": args.resolution, "runs": {}}
    base = DATA / "lake"
    if not (base / "models").exists():
        shutil.rmtree(base, ignore_errors=True)
        s = settings(base, source, args.resolution, port, start="2011-01", end="2012-12")
        with dask_client(DaskSettings(n_workers=2, threads_per_worker=1)) as client:
            run_ingest(s, client)
            run_labels(s, client)
            run_train(s, client)
    for label, start in (("12 months", "2020-01"), ("120 months", "2011-01")):
        lake = DATA / f"lake-{label.split()[0]}"
        shutil.rmtree(lake, ignore_errors=True)
        shutil.copytree(base, lake)
        s = settings(
            lake, source, args.resolution, port, start=start, end="2020-12",
            dask={"n_workers": 2, "threads_per_worker": 1}, ray={"num_cpus": 2},
        )  # fmt: skip
        sampler, seconds, units, ends = backfill(s, DATA / "settings.yaml")
        results["runs"][label] = {
            "seconds": round(seconds, 1),
            "units": units,
            "peak_rss_mib": sampler.summary(),
            "peak_rss_mib_per_unit": sampler.per_unit(ends),
        }
        print(label, json.dumps({k: v for k, v in results["runs"][label].items()
                                 if k != "peak_rss_mib_per_unit"}))  # fmt: skip
        shutil.rmtree(lake, ignore_errors=True)
    short, long = (results["runs"][k]["peak_rss_mib"] for k in ("12 months", "120 months"))
    results["ratio_120_over_12"] = {
        k: round(long[k] / short[k], 3) for k in short if k in long and short[k]
    }
    print("peak RSS ratio, 120 over 12 months:", results["ratio_120_over_12"])
    results["trend_120"] = trend(results["runs"]["120 months"]["peak_rss_mib_per_unit"])
    print("120 months, first against last two partitions:", json.dumps(results["trend_120"]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
