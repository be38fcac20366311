"""Dask clients: a LocalCluster, a scheduler by address, or a cluster on Kubernetes.

Settings choose (``carbonsink.config.DaskSettings``); callers only ever see a
``distributed.Client``, so every command runs unchanged on a laptop and on a cluster:

- nothing set: a LocalCluster of worker processes on this machine;
- ``address``: an existing scheduler (a DaskCluster's service, ``dask scheduler``);
- ``kubernetes_spec``: a DaskCluster created from a manifest through the dask-kubernetes
  operator for the duration of the command, then deleted;
- ``kubernetes_cluster``: a running DaskCluster found by name through the operator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
import yaml
from distributed import Client, LocalCluster

from carbonsink.config import DaskSettings
from carbonsink.errors import ConfigError

CONNECT_TIMEOUT_S = 15


@contextmanager
def dask_client(settings: DaskSettings) -> Iterator[Client]:
    """A client for the duration of a command; closes what it started.

    Parameters
    ----------
    settings
        ``address`` set: connect to that scheduler. Otherwise start a LocalCluster of
        worker processes (one per core by default) bound to 127.0.0.1, without dashboard.

    Raises
    ------
    ConfigError
        If the scheduler cannot be reached, or Kubernetes cannot create or find the cluster.
    """
    if settings.kubernetes_spec or settings.kubernetes_cluster:
        kube = kube_cluster(settings)
        try:
            with Client(kube) as client:
                yield client
        finally:
            kube.close()
        return
    if settings.address:
        try:
            client = Client(settings.address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"cannot connect to the Dask scheduler at {settings.address} "
                f"({type(exc).__name__}); check --dask-address or leave it out for a local cluster"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in workers; setting any glibc malloc tunable
    # turns off glibc's adaptive mmap threshold, so every large temporary array is mapped
    # and page-faulted afresh. That made the ingest's aggregation tasks 1.5x slower
    # (measured: 11 s -> 7 s per task), so unset it (dask's documented None).
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = LocalCluster(
            n_workers=settings.n_workers,
            threads_per_worker=settings.threads_per_worker,
            memory_limit=settings.memory_limit,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def kube_cluster(settings: DaskSettings) -> Any:
    """A ``dask_kubernetes.operator.KubeCluster`` as ``settings`` say: created or found.

    Raises
    ------
    ConfigError
        Without the ``kubernetes`` extra, with a manifest that is not a DaskCluster, or when
        Kubernetes cannot be reached (no kubeconfig, no in-cluster service account).
    """
    try:
        from dask_kubernetes.operator import KubeCluster
        from dask_kubernetes.operator.kubecluster.kubecluster import CreateMode
    except ImportError:
        raise ConfigError(
            "Dask on Kubernetes needs the dask-kubernetes operator client: "
            "pip install 'carbonsink[kubernetes]'"
        ) from None
    kwargs: dict[str, Any]
    if settings.kubernetes_spec:
        path = Path(settings.kubernetes_spec)
        if not path.is_file():
            raise ConfigError(
                f"DaskCluster manifest {path} does not exist; check dask.kubernetes_spec"
            )
        spec = yaml.safe_load(path.read_text())
        kind = spec.get("kind") if isinstance(spec, dict) else type(spec).__name__
        if kind != "DaskCluster":
            raise ConfigError(
                f"{path} holds a {kind}, not a DaskCluster manifest; point "
                "dask.kubernetes_spec at one (infra/k8s/base/daskcluster.yaml is an example)"
            )
        # The cluster lives as long as the command: the operator deletes its pods after.
        kwargs = {"custom_cluster_spec": spec, "shutdown_on_close": True}
    else:
        kwargs = {
            "name": settings.kubernetes_cluster,
            "create_mode": CreateMode.CONNECT_ONLY,
            "shutdown_on_close": False,
        }
    try:
        return KubeCluster(namespace=settings.namespace, quiet=True, **kwargs)
    except Exception as exc:  # kr8s, kubernetes and the operator raise many kinds
        first = (str(exc).splitlines() or [""])[0][:120]
        raise ConfigError(
            f"cannot create or reach the DaskCluster through Kubernetes "
            f"({type(exc).__name__}: {first}); check KUBECONFIG or the pod's service account, "
            "and dask.namespace"
        ) from None
