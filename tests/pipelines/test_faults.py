"""Faults with real processes: a Dask worker killed mid-ingest, the object store down for 10 s.

(A Serve replica killed mid-inference is in ``test_infer.py``; a driver killed with kill -9
mid-backfill in ``test_backfill.py``.) Each run completes, or fails in one line and
completes when run again; the published chunks then hash the same as an undisturbed run's.
"""

import os
import shutil
import signal
import threading
import time

import boto3
import pytest

from carbonsink.errors import CarbonsinkError
from carbonsink.storage import StorageOptions
from cluster.settings import DaskSettings
from pipelines.stages.ingest import run_ingest
from tests.helpers import chunk_hashes, free_port
from tests.tiny_lake import settings

pytestmark = pytest.mark.integration


def _when_busy(client, action) -> threading.Thread:
    """Run ``action`` in a thread as soon as the cluster is processing tasks."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(client.processing().values()):
            time.sleep(0.02)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_dask_worker_killed_mid_ingest(lake, monthly_store, tmp_path):
    from cluster.dask import dask_client

    root = tmp_path / "lake"
    shutil.copytree(lake, root)
    s = settings(root, source=monthly_store, start="2016-01", end="2016-06")
    # A cluster of its own: the session's shared one must not lose a worker.
    with dask_client(DaskSettings(n_workers=2, threads_per_worker=1)) as client:
        victim = sorted(client.run(os.getpid).values())[0]
        killer = _when_busy(client, lambda: os.kill(victim, signal.SIGKILL))
        run_ingest(s, client)
        killer.join()
        assert victim not in client.run(os.getpid).values()  # the nanny started a new one
    # The months were re-ingested over the lake's own: identical bytes, none lost.
    assert chunk_hashes(root, "features") == chunk_hashes(lake, "features")


def test_the_object_store_down_for_ten_seconds_mid_ingest(monthly_store, dask_client, tmp_path):
    from moto.server import ThreadedMotoServer

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="lake")
    storage = StorageOptions(endpoint_url=endpoint)
    # A quarter (its climatology waits for the whole baseline year): the outage, not the
    # volume, is under test.
    common = {"source": monthly_store, "start": "2015-01", "end": "2015-03"}
    s = settings("s3://lake/carbonsink", lake_storage=storage, **common)
    local = settings(tmp_path / "reference", **common)
    run_ingest(local, dask_client)

    servers = [server]
    down_at: list[float] = []

    def outage() -> None:
        down_at.append(time.monotonic())
        servers[0].stop()
        time.sleep(10)
        # moto keeps its buckets in this process: the restarted server serves the same data
        servers[0] = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        servers[0].start()

    down = _when_busy(dask_client, outage)
    try:
        try:
            run_ingest(s, dask_client)
            assert down_at and down_at[0] < time.monotonic() - 10  # it rode out the outage
            outcome = "completed"
        except CarbonsinkError as exc:
            assert "\n" not in str(exc)
            outcome = f"failed: {exc}"
        down.join()
        if outcome != "completed":
            run_ingest(s, dask_client)  # run again: it completes
        print(f"object store outage: first run {outcome}")
        assert chunk_hashes("s3://lake/carbonsink", "features", storage) == chunk_hashes(
            tmp_path / "reference", "features"
        )
    finally:
        down.join()
        servers[0].stop()
