"""carbonsink infer through a real local Ray cluster and Serve application (tiny grid)."""

import json
import shutil
import threading
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
import torch
import zarr

from carbonsink.emulator.checkpoint import load_checkpoint
from carbonsink.emulator.inputs import StaticFields, feature_channels, month_channels
from carbonsink.emulator.tiles import predict_global
from carbonsink.errors import ConfigError
from carbonsink.lake.features_store import open_published_features, read_static
from carbonsink.lake.flux_store import FLUXES, labelled_months, members, read_flux
from carbonsink.lake.lake import Lake
from pipelines.infer import MEDIAN, SPREAD, run_infer, sinkmap_layout
from tests.pipelines.conftest import settings

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


def direct(lake, member, month):
    """In-process inference of the same checkpoint over the whole globe."""
    lk = Lake(str(lake))
    features, layout = open_published_features(lk)
    models = lk.open_repo("models").readonly_session("main").store
    emu = load_checkpoint(models, member, "mean-teacher")
    statics = StaticFields.from_store(features.store, layout.grid, emu.metadata.drivers)
    raw = month_channels(
        features.store, feature_channels(emu.metadata.channels), layout.month_index(month), month,
        statics,
    )  # fmt: skip
    tile = (layout.tiling.nlat, layout.tiling.nlon)
    pred = predict_global(emu.predict_numpy, emu.prepare(raw, month.month), emu.halo, tile)
    lf = statics.fields["land_fraction"]
    pred[0][lf <= 0] = np.nan
    pred[1][lf >= 1] = np.nan
    return pred


def sinkmap(lake):
    return Lake(str(lake)).open_repo("sinkmap").readonly_session("main").store


@pytest.fixture(scope="module")
def mapped(infer_lake, ray_cluster):
    return run_infer(serve_settings(infer_lake, ray_cluster))


def test_infer_maps_the_window_like_direct_inference(mapped, infer_lake):
    store = sinkmap(infer_lake)
    names = [m for m in members(store) if m not in (MEDIAN, SPREAD)]
    assert names == ["ref-dry", "ref-moderate", "ref-warm"]
    assert mapped.keys == 3 * 3 * 25 and mapped.retried == 0
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
        assert [str(p) for p in labelled_months(store, layout, name)] == mapped.months
    a = zarr.open_array(store, path=f"{MEDIAN}/land_flux", mode="r")
    assert a.attrs["units"] == "kg m-2 s-1" and a.attrs["positive"] == "down"
    assert a.chunks == (1, 9, 18)  # one tile per chunk: tiles never share a chunk


def test_a_replica_killed_mid_run_changes_nothing(mapped, infer_lake, ray_cluster):
    import ray

    store = sinkmap(infer_lake)
    before = {
        (m, f): np.asarray(zarr.open_array(store, path=f"{m}/{f}", mode="r")[:])
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
            for name, namespace in replicas():
                victims.append(name)
                ray.kill(ray.get_actor(name, namespace=namespace))

    # A shorter window than the first run: the restart, not the tiles, is what is tested.
    s = serve_settings(infer_lake, ray_cluster).model_copy(update={"end": "2016-02"})
    report = run_infer(s, progress=kill)
    # The rest of the run was served by a new replica; requests lost with the old one were
    # either re-routed by Serve or sent again by infer (report.retried).
    assert killed.is_set() and victims and not {n for n, _ in replicas()} & set(victims)
    assert report.keys == 150
    after = sinkmap(infer_lake)
    for (m, f), values in before.items():
        got = np.asarray(zarr.open_array(after, path=f"{m}/{f}", mode="r")[:])
        np.testing.assert_allclose(got, values, rtol=1e-6, atol=1e-14, equal_nan=True)


def test_infer_refuses_a_window_outside_the_features(infer_lake, ray_cluster):
    repo = Lake(str(infer_lake)).open_repo("sinkmap")
    tip = repo.lookup_branch("main") if repo is not None else None
    s = settings(infer_lake, start="2030-01", end="2030-02")
    with pytest.raises(ConfigError, match="features lack 2 month"):
        run_infer(s)
    repo = Lake(str(infer_lake)).open_repo("sinkmap")
    assert (repo.lookup_branch("main") if repo is not None else None) == tip


def get(port, query):
    """GET /flux on the Serve HTTP proxy: (status, body bytes)."""
    url = f"http://127.0.0.1:{port}/flux?{query}"
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_http_route_answers_boxes_and_refuses_bad_requests(mapped, infer_lake, ray_cluster):
    port = ray_cluster["http_port"]
    status, body = get(port, "month=2016-02&bbox=-60,-20,-20,20")
    assert status == 200
    got = json.loads(body)
    store = sinkmap(infer_lake)
    index = sinkmap_layout(open_published_features(Lake(str(infer_lake)))[1]).month_index(
        pd.Period("2016-02", freq="M")
    )
    rows, cols = slice(17, 28), slice(30, 40)  # the 4 deg cells the box touches
    assert len(got["lat"]) == 11 and len(got["lon"]) == 10 and got["lat"][0] == -20.0
    for f in FLUXES:
        want = read_flux(store, MEDIAN, f, index)[rows, cols]
        have = np.array([[np.nan if v is None else v for v in row] for row in got[f]])
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-14, equal_nan=True)
    status, body = get(port, "month=2016-02&bbox=-60,-20,-20,20&member=ref-dry&format=netcdf")
    assert status == 200 and body[:4] == b"\x89HDF"
    for query, code, text in [
        ("bbox=-60,-20,-20,20", 400, "month=YYYY-MM"),
        ("month=2016-02&bbox=-60,-20", 400, "bbox=W,S,E,N"),
        ("month=2016-02&bbox=10,0,-10,5", 400, "W < E"),
        ("month=2016-02&bbox=-60,-20,-20,20&member=nope", 400, "member must be one of"),
        ("month=2016-02&bbox=-60,-20,-20,20&format=csv", 400, "json or netcdf"),
        ("month=2016-02&bbox=-60,-20,-20,20&colour=red", 400, "unknown parameter"),
        ("month=2030-01&bbox=-60,-20,-20,20", 404, "not in the lake's features"),
        ("month=2016-02&bbox=-180,-90,180,90", 413, "ask for format=netcdf"),
    ]:
        status, body = get(port, query)
        assert status == code and text in json.loads(body)["error"], (query, body)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_replica_maps_like_the_cpu(mapped, infer_lake, ray_cluster):
    """A replica with a GPU (bf16 autocast) gives the CPU map within bf16 precision."""
    store = sinkmap(infer_lake)
    cpu = np.asarray(zarr.open_array(store, path=f"{MEDIAN}/land_flux", mode="r")[:])
    s = serve_settings(infer_lake, ray_cluster, num_gpus=1).model_copy(update={"end": "2016-01"})
    run_infer(s)
    gpu = np.asarray(zarr.open_array(sinkmap(infer_lake), path=f"{MEDIAN}/land_flux", mode="r")[:])
    ok = np.isfinite(cpu)
    scale = np.abs(cpu[ok]).max()
    assert np.array_equal(ok, np.isfinite(gpu))
    assert np.abs(gpu[ok] - cpu[ok]).max() / scale < 0.05  # bf16 keeps 8 bits of mantissa
