"""The Serve application on a real local Ray: per-member deployments and the HTTP route.

``tests/pipelines/stages/test_infer.py`` maps windows through the default (multiplexed) layout;
here the application runs one deployment per member, is asked for tiles directly through
its handles, and answers boxes over HTTP.
"""

import json
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from carbonsink.emulator.tiles import TileKey
from carbonsink.lake.flux_store import FLUXES, ensemble_median
from cluster.serve_app import (
    APP_NAME,
    EMULATOR,
    Routes,
    TileRequest,
    build_app,
    plan_deployments,
    wait_ready,
)
from tests.tiny_lake import direct, settings

pytestmark = pytest.mark.integration
MEMBERS = ["ref-dry", "ref-moderate", "ref-warm"]
MONTH = pd.Period("2016-02", freq="M")


@pytest.fixture(scope="module")
def app(trained, lake, ray_cluster):
    """The application deployed one deployment per member; its plan and routes."""
    from ray import serve

    serve_settings = {"layout": "per-member", "num_cpus": 0.5, "num_replicas": 1, "in_flight": 8,
                      "http_port": ray_cluster["http_port"], "max_json_cells": 200}  # fmt: skip
    s = settings(lake, serve=serve_settings)
    storage = s.lake_storage.model_dump()
    plan = plan_deployments(s.lake, storage, s.serve)
    serve.run(build_app(s.lake, storage, s.serve, plan), name=APP_NAME)
    routes = Routes.of_app(plan)
    info = wait_ready(routes)
    yield plan, routes, info
    serve.delete(APP_NAME)


def test_per_member_layout_has_one_deployment_per_member(app, lake):
    plan, routes, info = app
    assert plan == {f"{EMULATOR}-{m}": [m] for m in MEMBERS}
    assert info["members"] == MEMBERS and len(info["replicas"]) == 3
    for m in MEMBERS:
        assert routes.handle(m).describe.remote().result()["members"] == [m]
    # multiplexed: one deployment serves the whole ensemble (here the reference members)
    assert plan_deployments(str(lake), {}, settings(lake).serve) == {EMULATOR: MEMBERS}


def test_tiles_from_each_member_deployment_equal_direct_inference(app, lake):
    _, routes, info = app
    th, tw = info["tile"]
    per_row = 360 // 4 // tw
    for m in MEMBERS:
        want = direct(lake, m, MONTH)
        keys = [TileKey(m, str(MONTH), i) for i in range(info["tiles_per_month"])]
        results = [routes.handle(m).map_tile.remote(TileRequest(k)) for k in keys]
        for key, response in zip(keys, results, strict=True):
            r = response.result()
            assert r.status == "ok" and r.key == key and r.fork is None
            i, j = (key.index // per_row) * th, (key.index % per_row) * tw
            np.testing.assert_allclose(
                r.flux, want[:, i : i + th, j : j + tw], rtol=1e-5, atol=1e-13, equal_nan=True
            )


def get(port, query):
    """GET /flux on the Serve HTTP proxy: (status, body bytes)."""
    url = f"http://127.0.0.1:{port}/flux?{query}"
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_http_route_answers_boxes_and_refuses_bad_requests(app, lake, ray_cluster):
    port = ray_cluster["http_port"]
    status, body = get(port, f"month={MONTH}&bbox=-60,-20,-20,20")
    assert status == 200
    got = json.loads(body)
    median = ensemble_median([direct(lake, m, MONTH) for m in MEMBERS])
    rows, cols = slice(17, 28), slice(30, 40)  # the 4 deg cells the box touches
    assert len(got["lat"]) == 11 and len(got["lon"]) == 10 and got["lat"][0] == -20.0
    for k, f in enumerate(FLUXES):
        have = np.array([[np.nan if v is None else v for v in row] for row in got[f]])
        np.testing.assert_allclose(have, median[k, rows, cols], rtol=1e-5, atol=1e-14,
                                   equal_nan=True)  # fmt: skip
    status, body = get(port, f"month={MONTH}&bbox=-60,-20,-20,20&member=ref-dry&format=netcdf")
    assert status == 200 and body[:4] == b"\x89HDF"
    for query, code, text in [
        ("bbox=-60,-20,-20,20", 400, "month=YYYY-MM"),
        ("month=2024-13&bbox=-60,-20,-20,20", 400, "'2024-13' is not a valid month"),
        ("month=2016-1&bbox=-60,-20,-20,20", 400, "write it as YYYY-MM"),
        (f"month={MONTH}&bbox=-60,-20", 400, "bbox=W,S,E,N"),
        (f"month={MONTH}&bbox=10,0,-10,5", 400, "W < E"),
        (f"month={MONTH}&bbox=-60,-20,-20,20&member=nope", 400, "member must be one of"),
        (f"month={MONTH}&bbox=-60,-20,-20,20&format=csv", 400, "json or netcdf"),
        (f"month={MONTH}&bbox=-60,-20,-20,20&colour=red", 400, "unknown parameter"),
        ("month=2030-01&bbox=-60,-20,-20,20", 404, "not in the lake's features"),
        (f"month={MONTH}&bbox=-180,-90,180,90", 413, "ask for format=netcdf"),
    ]:
        status, body = get(port, query)
        assert status == code and text in json.loads(body)["error"], (query, body)


def test_a_redeploy_onto_another_lake_reconfigures_the_live_replicas(
    trained, lake, ray_cluster, tmp_path
):
    """Only ``user_config`` differs (the lake): Serve calls ``reconfigure`` on the running
    replicas, which load the other lake's emulators; new resources still get new replicas."""
    import shutil

    from cluster.serve_app import deploy

    other = tmp_path / "lake"
    shutil.copytree(lake, other)
    serve_settings = {"num_replicas": 1, "http_port": ray_cluster["http_port"]}

    def deploy_on(root, **extra):
        s = settings(root, serve={**serve_settings, **extra})
        return deploy(s.lake, s.lake_storage.model_dump(), s.serve)

    _, first = deploy_on(lake)
    routes, second = deploy_on(other)
    assert second["replicas"] == first["replicas"]  # the same process, reconfigured
    assert (first["lake"], second["lake"]) == (str(lake), str(other))
    member = MEMBERS[0]
    r = routes.handle(member).map_tile.remote(TileRequest(TileKey(member, str(MONTH), 4)))
    th, tw = second["tile"]
    i, j = (4 // (360 // 4 // tw)) * th, (4 % (360 // 4 // tw)) * tw
    np.testing.assert_allclose(
        r.result().flux, direct(other, member, MONTH)[:, i : i + th, j : j + tw],
        rtol=1e-5, atol=1e-13, equal_nan=True,
    )  # fmt: skip
    _, third = deploy_on(other, num_cpus=0.5)  # a resource change replaces the replica
    assert not set(third["replicas"]) & set(second["replicas"])
