"""Ray: a local instance by default, or an existing cluster by address.

Callers see an initialised Ray for the duration of a command; what this module started, it
stops. A KubeRay cluster is reached the same way, through its address.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import ray

from carbonsink.config import RaySettings
from carbonsink.errors import ConfigError


@contextmanager
def ray_session(settings: RaySettings) -> Iterator[None]:
    """Ray, connected for the duration of a command.

    Parameters
    ----------
    settings
        ``address`` set: connect to that cluster (``auto`` finds a local one). Otherwise
        start a local Ray without dashboard, bound to 127.0.0.1.

    Raises
    ------
    ConfigError
        If the cluster cannot be reached.
    """
    if ray.is_initialized():  # a caller (a test, a notebook) already owns Ray
        yield
        return
    # Ray's token authentication is for shared clusters; a local instance needs none.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    kwargs: dict = {"include_dashboard": False, "logging_level": logging.WARNING}
    try:
        if settings.address:
            ray.init(address=settings.address, **kwargs)
        else:
            ray.init(num_cpus=settings.num_cpus, _node_ip_address="127.0.0.1", **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"cannot start or reach Ray at {settings.address or 'a local instance'} "
            f"({str(exc).splitlines()[0][:120]}); check --ray-address or leave it out"
        ) from None
    try:
        yield
    finally:
        ray.shutdown()
