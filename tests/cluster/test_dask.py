import time

import pytest

from carbonsink.config import DaskSettings
from carbonsink.errors import ConfigError
from cluster import dask as cluster_dask


def test_local_cluster_runs_tasks_and_closes():
    with cluster_dask.dask_client(DaskSettings(n_workers=1)) as client:
        assert client.submit(sum, [1, 2, 3]).result() == 6
        # Workers run without Dask's MALLOC_TRIM_THRESHOLD_ (it slows large-array work).
        env = client.run(lambda: __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_"))
        assert set(env.values()) == {None}
        cluster = client.cluster
    assert cluster.status.name == "closed"


def test_existing_scheduler_by_address(dask_client):
    with cluster_dask.dask_client(DaskSettings(address=dask_client.scheduler.address)) as client:
        assert client.submit(lambda: 41 + 1).result() == 42
    assert dask_client.submit(lambda: 1).result() == 1  # the shared cluster is not closed


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(cluster_dask, "CONNECT_TIMEOUT_S", 2)
    t = time.monotonic()
    with (
        pytest.raises(
            ConfigError, match=r"cannot connect to the Dask scheduler at tcp://127.0.0.1:9"
        ),
        cluster_dask.dask_client(DaskSettings(address="tcp://127.0.0.1:9")),
    ):
        pass
    assert time.monotonic() - t < 30
