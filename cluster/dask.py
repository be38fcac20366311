"""Dask clients: a LocalCluster, a scheduler by address, or a cluster on Kubernetes.

Settings choose (``cluster.settings.DaskSettings``); callers only ever see a
``distributed.Client``, so every command runs unchanged on a laptop and on a cluster:

- nothing set: a LocalCluster of worker processes on this machine;
- ``address``: an existing scheduler (a DaskCluster's service, ``dask scheduler``);
- ``kubernetes_spec``: a DaskCluster created from a manifest through the dask-kubernetes
  operator for the duration of the command, then deleted;
- ``kubernetes_cluster``: a running DaskCluster found by name through the operator.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
import yaml
from distributed import Client, LocalCluster, WorkerPlugin

from carbonsink.errors import CarbonsinkError, ClusterError, ConfigError
from carbonsink.memory import keep_freed_memory
from cluster.settings import DaskSettings

CONNECT_TIMEOUT_S = 15


def _user_error_names() -> set[str]:
    """Class names of carbonsink's one-line errors (CarbonsinkError and its subclasses)."""
    names, todo = set(), [CarbonsinkError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


class _DropUserErrors(logging.Filter):
    """Drops a worker's "Compute Failed" record when the task raised a carbonsink error.

    Such an error (bad input, a storage the user must fix) travels to the client, which
    shows it as one line; the worker's multi-line record with its traceback would only
    bury that line. Every other failure keeps its record.
    """

    def __init__(self) -> None:
        super().__init__()
        self.names = _user_error_names()

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Compute Failed") or not record.args:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        text = str(args[3]) if len(args) > 3 else ""
        return text.split("(", 1)[0] not in self.names


class QuietUserErrors(WorkerPlugin):
    """Installs :class:`_DropUserErrors` on every worker of a cluster."""

    name = "carbonsink-quiet-user-errors"

    def setup(self, worker: Any) -> None:
        """Add the filter to the worker's logger (once per worker process)."""
        log = logging.getLogger("distributed.worker")
        if not any(isinstance(f, _DropUserErrors) for f in log.filters):
            log.addFilter(_DropUserErrors())


class KeepFreedMemory(WorkerPlugin):
    """Lets every worker's heap keep freed memory for reuse (:mod:`carbonsink.memory`)."""

    name = "carbonsink-keep-freed-memory"

    def setup(self, worker: Any) -> None:
        """Apply the heap setting (once per worker process, restarted ones included)."""
        keep_freed_memory()


def _prepared(client: Client) -> Client:
    client.register_plugin(QuietUserErrors())
    client.register_plugin(KeepFreedMemory())
    return client


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
    ClusterError
        If the scheduler cannot be reached, or Kubernetes cannot create or find the cluster.
    ConfigError
        If the DaskCluster manifest is missing or wrong, or the ``kubernetes`` extra is not
        installed.
    """
    if settings.kubernetes_spec or settings.kubernetes_cluster:
        kube = kube_cluster(settings)
        try:
            with Client(kube) as client:
                yield _prepared(client)
        finally:
            kube.close()
        return
    if settings.address:
        try:
            client = Client(settings.address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"cannot connect to the Dask scheduler at {settings.address} "
                f"({type(exc).__name__}); check --dask-address or leave it out for a local cluster"
            ) from exc
        try:
            yield _prepared(client)
        finally:
            client.close()
        return
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in workers; setting any glibc malloc tunable
    # turns off glibc's adaptive mmap threshold, so every large temporary array is mapped
    # and page-faulted afresh. That made the ingest's aggregation tasks 1.5x slower
    # (measured: 11 s -> 7 s per task), so unset it (dask's documented None).
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
        _workers_ignore_sigint(),
    ):
        cluster = LocalCluster(
            n_workers=settings.n_workers,
            threads_per_worker=settings.threads_per_worker,
            memory_limit=settings.memory_limit,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # The scheduler's HTTP routes (health, metrics) still listen: on a free port of
            # 127.0.0.1, not on 8787 (taken by any other local cluster, with a warning).
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            # The workers' logs go to the user's terminal. What fails in a task reaches the
            # user through the client (one line for carbonsink's errors); the workers' own
            # records of it, and of peers closing as the cluster stops after a failure,
            # would bury that line in tracebacks. CARBONSINK_DEBUG=1 shows them.
            silence_logs=logging.ERROR if os.environ.get("CARBONSINK_DEBUG") else logging.CRITICAL,
        )
    client = Client(cluster)
    try:
        yield _prepared(client)
    finally:
        client.close()
        cluster.close()


@contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Start worker processes with SIGINT ignored (Python then installs no handler).

    Ctrl-C reaches every process of the terminal's job: the command handles it (abandons
    its run, stops the cluster), and the workers, stopped by it, must not each die of it
    with a traceback of their own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def kube_cluster(settings: DaskSettings) -> Any:
    """A ``dask_kubernetes.operator.KubeCluster`` as ``settings`` say: created or found.

    Raises
    ------
    ConfigError
        Without the ``kubernetes`` extra, or with a manifest that is not a DaskCluster.
    ClusterError
        When Kubernetes cannot be reached (no kubeconfig, no in-cluster service account).
    """
    try:
        from dask_kubernetes.operator import KubeCluster
        from dask_kubernetes.operator.kubecluster.kubecluster import CreateMode
    except ImportError as exc:
        raise ConfigError(
            "Dask on Kubernetes needs the dask-kubernetes operator client: "
            "pip install 'carbonsink[kubernetes]'"
        ) from exc
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
        raise ClusterError(
            f"cannot create or reach the DaskCluster through Kubernetes "
            f"({type(exc).__name__}: {first}); check KUBECONFIG or the pod's service account, "
            "and dask.namespace"
        ) from exc
