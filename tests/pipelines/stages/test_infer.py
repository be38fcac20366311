"""carbonsink infer through a real local Ray cluster and Serve application (tiny grid)."""

import hashlib
import shutil
import threading

import numpy as np
import pandas as pd
import pytest
import torch
import zarr

from carbonsink.errors import ConfigError
from carbonsink.lake.features_store import open_published_features, read_static
from carbonsink.lake.flux_store import ENSEMBLE_MEDIAN as MEDIAN
from carbonsink.lake.flux_store import ENSEMBLE_SPREAD as SPREAD
from carbonsink.lake.flux_store import FLUXES, member_months, members, read_flux
from carbonsink.lake.lake import Lake
from carbonsink.lake.sinkmap import sinkmap_layout
from pipelines.stages.infer import run_infer
from tests.tiny_lake import direct, settings

pytestmark = pytest.mark.integration
WINDOW = {"start": "2016-01", "end": "2016-03"}


@pytest.fixture(scope="module")
def infer_lake(trained, lake, tmp_path_factory):
    """A copy of the trained lake, so that inference runs never touch the shared one."""
    root = tmp_path_factory.mktemp("infer") / "lake"
    shutil.copytree(lake, root)
    return root


def serve_settings(lake, ray_cluster, **serve):
    return settings(
        lake,
        **WINDOW,
        serve={
            "http_port": ray_cluster["http_port"],
            "in_flight": 8,
            "max_json_cells": 200,
            **serve,
        },
    )


def sinkmap(lake):
    return Lake(str(lake)).open_repo("sinkmap").readonly_session("main").store


def mapped_rows(lake):
    """Time indices of the window (the store's time axis is much longer)."""
    layout = sinkmap_layout(open_published_features(Lake(str(lake)))[1])
    first, last = (layout.month_index(pd.Period(WINDOW[k], "M")) for k in ("start", "end"))
    return slice(first, last + 1)


@pytest.fixture(scope="module")
def mapped(infer_lake, ray_cluster):
    return run_infer(serve_settings(infer_lake, ray_cluster))


def test_infer_maps_the_window_like_direct_inference(mapped, infer_lake):
    store = sinkmap(infer_lake)
    names = [m for m in members(store) if m not in (MEDIAN, SPREAD)]
    assert names == ["ref-dry", "ref-moderate", "ref-warm"]
    assert mapped.keys == 3 * 3 * 9 and mapped.retried == 0
    assert sum(mapped.batch_sizes.values()) == mapped.keys  # requests by their batch size
    features, flayout = open_published_features(Lake(str(infer_lake)))
    layout = sinkmap_layout(flayout)
    for month in pd.period_range("2016-01", "2016-03", freq="M"):
        index = layout.month_index(month)
        for m in names:
            got = np.stack([read_flux(store, m, f, index) for f in FLUXES])
            want = direct(infer_lake, m, month)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-13)
        stack = np.stack([np.stack([read_flux(store, m, f, index) for f in FLUXES]) for m in names])
        median = np.stack([read_flux(store, MEDIAN, f, index) for f in FLUXES])
        spread = np.stack([read_flux(store, SPREAD, f, index) for f in FLUXES])
        np.testing.assert_allclose(median, np.median(stack, axis=0), rtol=1e-6)
        np.testing.assert_allclose(spread, np.std(stack, axis=0, ddof=1), rtol=1e-4, atol=1e-16)
    lf = read_static(features.store, "land_fraction")
    assert np.isfinite(median[0][lf > 0]).all() and np.isnan(median[0][lf == 0]).all()
    for name in [*names, MEDIAN, SPREAD]:
        assert [str(p) for p in member_months(store, layout, name)] == mapped.months
    a = zarr.open_array(store, path=f"{MEDIAN}/land_flux", mode="r")
    assert a.attrs["units"] == "kg m-2 s-1" and a.attrs["positive"] == "down"
    assert a.chunks == (1, 15, 30)  # one tile per chunk: tiles never share a chunk


def test_a_replica_killed_mid_run_changes_nothing(mapped, infer_lake, ray_cluster):
    import ray

    store = sinkmap(infer_lake)
    # Only the mapped months: the time axis spans two centuries of one-tile chunks, and
    # reading all of it took 90 s.
    rows = mapped_rows(infer_lake)
    before = {
        (m, f): np.asarray(zarr.open_array(store, path=f"{m}/{f}", mode="r")[rows])
        for m in members(store)
        for f in FLUXES
    }
    killed = threading.Event()
    victims = []

    def replicas():
        return {
            (a["name"], a["namespace"])
            for a in ray.util.list_named_actors(all_namespaces=True)
            if "SERVE_REPLICA" in a["name"] and "emulator" in a["name"]
        }

    def kill(done, total):
        if done >= total // 4 and not killed.is_set():
            killed.set()
            name, namespace = sorted(replicas())[0]
            victims.append(name)
            ray.kill(ray.get_actor(name, namespace=namespace))

    # Two replicas, one killed: the other serves the rest of the run while Serve replaces
    # the dead one. A shorter window than the first run: the failure, not the tiles, is
    # what is tested.
    s = serve_settings(
        infer_lake, ray_cluster, num_replicas=2, num_cpus=0.5, request_timeout_s=10.0
    )
    report = run_infer(s.with_window(s.start, "2016-02"), progress=kill)
    # Requests lost with the dead replica were re-routed by Serve or sent again by infer.
    assert killed.is_set() and len(victims) == 1 and not {n for n, _ in replicas()} & set(victims)
    assert report.keys == 2 * 3 * 9
    after = sinkmap(infer_lake)
    for (m, f), values in before.items():
        got = np.asarray(zarr.open_array(after, path=f"{m}/{f}", mode="r")[rows])
        # Byte for byte (padded batches): nothing lost, nothing written twice differently.
        assert hashlib.sha256(got.tobytes()).digest() == hashlib.sha256(values.tobytes()).digest()


def test_infer_refuses_a_window_outside_the_features(infer_lake, ray_cluster):
    repo = Lake(str(infer_lake)).open_repo("sinkmap")
    tip = repo.lookup_branch("main") if repo is not None else None
    s = settings(infer_lake, start="2030-01", end="2030-02")
    with pytest.raises(ConfigError, match="features lack 2 month"):
        run_infer(s)
    repo = Lake(str(infer_lake)).open_repo("sinkmap")
    assert (repo.lookup_branch("main") if repo is not None else None) == tip


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_replica_maps_like_the_cpu(mapped, infer_lake, ray_cluster):
    """A replica with a GPU (bf16 autocast) gives the CPU map within bf16 precision."""
    store = sinkmap(infer_lake)
    rows = mapped_rows(infer_lake)
    cpu = np.asarray(zarr.open_array(store, path=f"{MEDIAN}/land_flux", mode="r")[rows])
    s = serve_settings(infer_lake, ray_cluster, num_gpus=1, num_replicas=1)
    s = s.with_window(s.start, "2016-01")
    run_infer(s)
    gpu = np.asarray(
        zarr.open_array(sinkmap(infer_lake), path=f"{MEDIAN}/land_flux", mode="r")[rows]
    )
    ok = np.isfinite(cpu)
    scale = np.abs(cpu[ok]).max()
    assert np.array_equal(ok, np.isfinite(gpu))
    assert np.abs(gpu[ok] - cpu[ok]).max() / scale < 0.05  # bf16 keeps 8 bits of mantissa
