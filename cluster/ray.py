"""Ray: a local instance by default, an existing cluster by address, or a KubeRay cluster.

Callers see an initialised Ray for the duration of a command; what this module started, it
stops. A KubeRay RayCluster or RayService is reached by name, through the Ray Client port
of the head service KubeRay makes for it (``<name>-head-svc``); inside a RayJob, the
address ``auto`` joins the job's own cluster.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ray

from carbonsink.errors import ClusterError
from cluster.settings import RaySettings

#: The Ray Client port of a KubeRay head service.
KUBERAY_CLIENT_PORT = 10001


def ray_address(settings: RaySettings) -> str | None:
    """The address ``settings`` name: an explicit one, a KubeRay head's, or None (local)."""
    if settings.kuberay_cluster:
        host = f"{settings.kuberay_cluster}-head-svc"
        if settings.namespace:  # else the pod's own namespace, through its DNS search path
            host += f".{settings.namespace}.svc.cluster.local"
        return f"ray://{host}:{KUBERAY_CLIENT_PORT}"
    return settings.address or None


def start_local(num_cpus: int | None) -> None:
    """Start a local Ray whose every process listens on 127.0.0.1 only.

    A local Ray has no authentication (its token mode is for shared clusters), so nothing
    of it may be reachable from another host. ``ray.init(_node_ip_address="127.0.0.1")`` is
    not enough: Ray replaces a loopback node address by the host's outward one, and its
    GCS, raylet, agents and workers then listen on that and on all interfaces. Ray keeps
    the loopback address where it does not expect a multi-host cluster (its Windows and
    macOS default, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``); set that for the processes Ray
    starts (through the environment) and for this one (whose constants Ray read on import).
    ``tests/cluster/test_ray.py`` lists the listening sockets of every process started.
    """
    from ray._private import ray_constants

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ[LOOPBACK_VARIABLE] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    ray.init(
        num_cpus=num_cpus,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        logging_level=logging.WARNING,
        runtime_env={"worker_process_setup_hook": f"{__name__}.loopback_worker"},
    )


def loopback_worker() -> None:
    """Set up a worker of a local Ray: Serve replicas' own gRPC server on 127.0.0.1.

    Each Serve replica starts a gRPC server for calls between deployments, bound to
    ``[::]`` whatever the node's address (``ray.serve._private.replica``); in a local Ray
    that is the one listener left on all interfaces. Ray runs this hook in every worker
    it starts, before any replica.
    """
    from ray.serve._private import replica

    bind = replica.add_port_to_grpc_server
    if getattr(bind, "carbonsink_loopback", False):
        return

    def on_loopback(server: Any, address: str) -> int:
        if address.startswith("[::]:"):
            address = "127.0.0.1:" + address.rsplit(":", 1)[1]
        return int(bind(server, address))

    on_loopback.carbonsink_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = on_loopback


#: Ray's switch between a single-host (loopback) and a cluster node address.
LOOPBACK_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextmanager
def ray_session(settings: RaySettings) -> Iterator[None]:
    """Ray, connected for the duration of a command.

    Parameters
    ----------
    settings
        ``address`` or ``kuberay_cluster`` set: connect to that cluster (``auto`` finds the
        one this process runs in). Otherwise start a local Ray without dashboard, bound to
        127.0.0.1.

    Raises
    ------
    ClusterError
        If the cluster cannot be started or reached.
    """
    if ray.is_initialized():  # a caller (a test, a notebook) already owns Ray
        yield
        return
    address = ray_address(settings)
    # ray.init makes SIGTERM exit the process at once; keep the command's own handler,
    # which abandons the run's branch first (pipelines.exits).
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        if address and address.startswith("ray://"):
            # Ray Client takes no node options; the cluster has its own dashboard and auth.
            ray.init(address=address, logging_level=logging.WARNING)
        elif address:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        else:
            start_local(settings.num_cpus)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(
            f"cannot start or reach Ray at {address or 'a local instance'} "
            f"({str(exc).splitlines()[0][:120]}); check --ray-address (or ray.kuberay_cluster) "
            "or leave it out"
        ) from exc
    finally:
        if threading.current_thread() is threading.main_thread() and on_sigterm is not None:
            signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        ray.shutdown()
