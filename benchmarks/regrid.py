"""Regridding speed: ERA5's 721 x 1440 grid to the 0.25, 0.5 and 1 degree model grids.

Compares, in one run and on the same 48 hourly fields (float32, realistic 2 m temperature
from the sample climate):

- ours: :class:`carbonsink.regrid.ConservativeRegridder`, one thread and all cores;
- the best pip-installable peer: xarray-regrid's conservative method (0.4.x);
- the floor: one numpy pass that reads the same bytes once (``x.sum()``).

Each figure is the best of ``--repeat`` runs (wall time). Usage::

    python benchmarks/regrid.py [--steps 48] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from carbonsink.grid import ModelGrid, point_grid_bounds
from carbonsink.landmask import land_fraction
from carbonsink.regrid import ConservativeRegridder
from carbonsink.sample.climate import SampleClimate

RESULTS = Path(__file__).parent / "results"


def era5_fields(steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``steps`` hourly 2 m temperature fields on ERA5's grid (sample climate, seed 0)."""
    lat = np.linspace(90, -90, 721)
    lon = np.arange(1440) * 0.25
    land = land_fraction(point_grid_bounds(lat, clip=(-90, 90)), point_grid_bounds(lon))
    climate = SampleClimate(lat, lon, land, seed=0)
    stamps = pd.date_range("2020-07-01", periods=steps, freq="h")
    x = np.stack(
        [climate.fields(t, "instant", ("2m_temperature",))["2m_temperature"] for t in stamps]
    )
    return lat, lon, x.astype(np.float32)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=48)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path, default=RESULTS / "regrid.json")
    args = p.parse_args()
    import xarray_regrid  # noqa: F401  (registers the .regrid accessor)

    cores = os.cpu_count() or 1
    lat, lon, x = era5_fields(args.steps)
    mb = x.nbytes / 1e6
    da = xr.DataArray(
        x, dims=("time", "latitude", "longitude"), coords={"latitude": lat, "longitude": lon}
    )
    floor = best_of(lambda: x.sum(), args.repeat)
    rows = []
    for res in (0.25, 0.5, 1.0):
        grid = ModelGrid(res)
        r = ConservativeRegridder.from_points(lat, lon, grid)
        r.apply(x[:1])  # compile outside the timing
        buf = r.apply(x)  # a result buffer, reused: the floor allocates nothing either
        ours_1 = best_of(lambda r=r, buf=buf: r.apply(x, out=buf), args.repeat)
        ours_n = best_of(lambda r=r, buf=buf: r.apply(x, threads=cores, out=buf), args.repeat)
        ours_alloc = best_of(lambda r=r: r.apply(x, threads=cores), args.repeat)
        target = xr.Dataset(coords={"latitude": grid.lat, "longitude": grid.lon})
        peer_out = None

        def peer(target: xr.Dataset = target) -> None:
            nonlocal peer_out
            peer_out = da.regrid.conservative(target, latitude_coord="latitude").values

        peer_t = best_of(peer, max(1, args.repeat - 1))
        ours_out = r.apply(x)
        theirs = np.asarray(peer_out)
        band = np.abs(grid.lat) < 85
        agree = float(
            np.nanmax(np.abs(ours_out[:, band] - theirs[:, band]) / np.abs(theirs[:, band]))
        )
        rows.append(
            {
                "target_deg": res,
                "ours_1_thread_s": ours_1,
                f"ours_{cores}_threads_s": ours_n,
                f"ours_{cores}_threads_new_output_s": ours_alloc,
                "xarray_regrid_s": peer_t,
                "floor_s": floor,
                "speedup_vs_xarray_regrid": peer_t / ours_alloc,
                "ours_over_floor": ours_n / floor,
                "ours_1_thread_over_floor": ours_1 / floor,
                "max_rel_diff_vs_xarray_regrid_abs_lat_lt_85": agree,
            }
        )
    info = {
        "benchmark": "regrid",
        "steps": args.steps,
        "input_MB": mb,
        "cores": cores,
        "machine": f"{platform.processor() or platform.machine()}, {cores} cores",
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(info, indent=2))
    print(
        f"{args.steps} fields of 721 x 1440 float32 ({mb:.0f} MB), {cores} cores; "
        f"best of {args.repeat}"
    )
    print(f"floor (one numpy pass, x.sum()): {floor * 1e3:.0f} ms")
    print(
        "| target | ours, 1 thread | ours, all cores | ours, all cores, new output | "
        "xarray-regrid | vs xarray-regrid | vs floor |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        n = row[f"ours_{cores}_threads_s"]
        a = row[f"ours_{cores}_threads_new_output_s"]
        print(
            f"| {row['target_deg']} deg | {row['ours_1_thread_s'] * 1e3:.0f} ms | "
            f"{n * 1e3:.0f} ms | "
            f"{a * 1e3:.0f} ms | {row['xarray_regrid_s'] * 1e3:.0f} ms | "
            f"{row['xarray_regrid_s'] / a:.0f}x faster | {row['ours_over_floor']:.1f}x |"
        )


if __name__ == "__main__":
    main()
