"""Shared fixtures: small sample stores, a real Dask LocalCluster, a real S3 API server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Tests never talk to real clouds: dummy credentials, no instance metadata lookups.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("CARBONSINK_PROGRESS", "0")

from carbonsink.memory import keep_freed_memory
from tests.helpers import free_port, make_sample

# The session trains and runs emulators in-process, as the command's process does.
keep_freed_memory()

# Hypothesis profiles: `ci` (CI=true) is derandomised, so a CI run is reproducible and a
# failure shows again on a rerun; `dev` (the default elsewhere) draws afresh each run and
# fewer examples, for the edit loop. HYPOTHESIS_PROFILE picks one by name.
settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
settings.register_profile(
    "dev", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)

DATA = Path(__file__).parent / "data"

#: Session fixtures that start an engine (the Dask LocalCluster, Ray and Serve) or build a
#: lake with them: a test that uses one is an integration test, whatever its module says.
ENGINE_FIXTURES = frozenset(
    {"dask_client", "lake", "trained", "mapped_lake", "rayjob_backfill", "ray_cluster"}
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses an engine fixture ``integration`` (``make test-fast`` and
    ``-m "not integration"`` leave it out: it starts a cluster)."""
    for item in items:
        if ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def monthly_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two years of monthly means at 4 deg (ERA5 layout, Zarr v2): ingest tests."""
    path = tmp_path_factory.mktemp("samples") / "monthly-4deg.zarr"
    return make_sample(path, "2015-01", "2016-12", resolution=4.0, step="1MS", era5t_months=2)


HOURLY_VARIABLES = (
    "2m_temperature",
    "2m_dewpoint_temperature",
    "total_precipitation",
    "surface_solar_radiation_downwards",
    "10m_u_component_of_wind",
    "10m_v_component_of_wind",
    "sea_surface_temperature",
    "land_sea_mask",
)


@pytest.fixture(scope="session")
def hourly_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two months of hourly fields at 6 deg: time aggregation and accumulations."""
    path = tmp_path_factory.mktemp("samples") / "hourly-6deg.zarr"
    return make_sample(
        path,
        "2015-06",
        "2015-07",
        resolution=6.0,
        step="1h",
        era5t_months=0,
        variables=HOURLY_VARIABLES,
    )


@pytest.fixture
def store_copy(tmp_path: Path):
    """Copy a store so a test may break it."""

    count = iter(range(1_000))

    def copy(url: str) -> str:
        dst = tmp_path / f"{next(count)}-{Path(url).name}"
        shutil.copytree(url, dst)
        return str(dst)

    return copy


@pytest.fixture(scope="session")
def dask_client() -> Iterator:
    """A real Dask LocalCluster (2 worker processes), shared by the session."""
    from cluster.dask import dask_client as make_client
    from cluster.settings import DaskSettings

    with make_client(DaskSettings(n_workers=2, threads_per_worker=1)) as client:
        yield client


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3 API server (moto) on 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A fresh, empty bucket on the loopback S3 server."""
    import uuid

    import boto3

    name = f"test-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[dict]:
    """A real local Ray instance with Serve's HTTP proxy on 127.0.0.1, shared by the session."""
    import ray
    from ray import serve

    from cluster.ray import start_local

    port = free_port()
    start_local(num_cpus=2)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        yield {"http_port": port}
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="session")
def lake(dask_client, monthly_store, tmp_path_factory):
    """The tiny lake, ingested once (2015-2016 at 4 deg)."""
    from pipelines.stages.ingest import run_ingest
    from tests.tiny_lake import settings

    root = tmp_path_factory.mktemp("emulator") / "lake"
    run_ingest(settings(root, source=monthly_store, start="2015-01", end="2016-12"), dask_client)
    return root


@pytest.fixture(scope="session")
def trained(lake, dask_client):
    """The tiny lake labelled by the reference models, with emulators trained on it."""
    from pipelines.stages.labels import run_labels
    from pipelines.stages.train import run_train
    from tests.tiny_lake import settings

    labels = run_labels(settings(lake), dask_client)
    train = run_train(settings(lake), dask_client)
    return labels, train


@pytest.fixture(scope="session")
def mapped_lake(trained, lake, dask_client, ray_cluster, tmp_path_factory):
    """The tiny lake with 2016 mapped and a budget, as users' lakes are."""
    from pipelines.stages.budget import run_budget
    from pipelines.stages.infer import run_infer
    from tests.tiny_lake import settings

    root = tmp_path_factory.mktemp("mapped") / "lake"
    shutil.copytree(lake, root)
    s = settings(
        root, start="2016-01", end="2016-12",
        budget={"reference_start": 2016, "reference_end": 2016},
        serve={"http_port": ray_cluster["http_port"], "in_flight": 8},
    )  # fmt: skip
    run_infer(s)
    run_budget(s)
    return root


@pytest.fixture(scope="session")
def rayjob_backfill(mapped_lake, monthly_store, dask_client, ray_cluster, tmp_path_factory):
    """The mapped lake backfilled 2016-07..2016-12 (one partition of 6 months) by the prod
    RayJob's entrypoint, against the session's Dask and Ray: (lake, manifest env, output).

    What a cluster differs in is replaced, and only that: the lake and source, the tiny
    grid (a settings file), the window, the GPU request (CPU replicas), the ports.
    """
    import ray
    import yaml

    from tests.infra.manifests import run_rayjob_entrypoint
    from tests.tiny_lake import settings

    tmp = tmp_path_factory.mktemp("rayjob")
    root = tmp / "lake"
    shutil.copytree(mapped_lake, root)
    s = settings(root, budget={"reference_start": 2016, "reference_end": 2016})
    config = tmp / "settings.yaml"
    config.write_text(yaml.safe_dump(s.model_dump(mode="json", exclude_none=True)))
    _, env, out = run_rayjob_entrypoint(
        config, tmp / "job.log", ray.get_runtime_context().gcs_address,
        CARBONSINK_DASK__ADDRESS=dask_client.scheduler.address,
        CARBONSINK_LAKE=str(root), CARBONSINK_SOURCE=str(monthly_store),
        CARBONSINK_START="2016-07", CARBONSINK_END="2016-12", CARBONSINK_PARTITION_MONTHS="6",
        CARBONSINK_SERVE__NUM_GPUS="0", CARBONSINK_SERVE__NUM_CPUS="1",
        CARBONSINK_SERVE__IN_FLIGHT="8", CARBONSINK_SERVE__HTTP_PORT=str(ray_cluster["http_port"]),
    )  # fmt: skip
    return root, env, out
