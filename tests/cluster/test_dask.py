import time

import pytest

from carbonsink.errors import ClusterError, ConfigError
from cluster import dask as cluster_dask
from cluster.settings import DaskSettings
from tests.helpers import blocks_mapped_for_a_large_array


def test_local_cluster_runs_tasks_and_closes():
    with cluster_dask.dask_client(DaskSettings(n_workers=1)) as client:
        assert client.submit(sum, [1, 2, 3]).result() == 6
        # Workers run without Dask's MALLOC_TRIM_THRESHOLD_ (it slows large-array work).
        env = client.run(lambda: __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_"))
        assert set(env.values()) == {None}
        # ... and keep freed memory for reuse (carbonsink.memory): a 64 MiB array comes
        # from the heap, not from a mapping of its own.
        assert set(client.run(blocks_mapped_for_a_large_array).values()) == {0}
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
            ClusterError, match=r"cannot connect to the Dask scheduler at tcp://127.0.0.1:9"
        ),
        cluster_dask.dask_client(DaskSettings(address="tcp://127.0.0.1:9")),
    ):
        pass
    assert time.monotonic() - t < 30


def test_settings_name_one_place_for_dask():
    with pytest.raises(ValueError, match=r"dask.address and dask.kubernetes_cluster both say"):
        DaskSettings(address="tcp://x:8786", kubernetes_cluster="carbonsink-dask")


def test_kubernetes_without_a_reachable_api_is_a_clear_error(monkeypatch, tmp_path):
    # No kubeconfig and no in-cluster service account: the operator client cannot start.
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    spec = "infra/k8s/base/daskcluster.yaml"
    for settings in (DaskSettings(kubernetes_spec=spec), DaskSettings(kubernetes_cluster="x")):
        with (
            pytest.raises(ClusterError, match="cannot create or reach the DaskCluster through Kub"),
            cluster_dask.dask_client(settings),
        ):
            pass


def test_kubernetes_spec_must_be_a_daskcluster(tmp_path):
    with pytest.raises(ConfigError, match=r"does not exist; check dask.kubernetes_spec"):
        cluster_dask.kube_cluster(DaskSettings(kubernetes_spec=str(tmp_path / "no.yaml")))
    job = tmp_path / "job.yaml"
    job.write_text("apiVersion: batch/v1\nkind: Job\n")
    with pytest.raises(ConfigError, match="holds a Job, not a DaskCluster manifest"):
        cluster_dask.kube_cluster(DaskSettings(kubernetes_spec=str(job)))
