"""``carbonsink serve``: the emulator's Serve application and its HTTP route, until stopped.

The same application ``carbonsink infer`` streams tiles through, kept up with its
``/flux`` route for maps of a box on demand. SIGINT and SIGTERM both stop it cleanly.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from carbonsink.errors import Interrupted
from carbonsink.lake.features_store import open_published_features
from carbonsink.lake.lake import Lake
from pipelines.options import (
    ConfigOpt,
    LakeOpt,
    RayAddressOpt,
    VariantOpt,
    WithReferenceOpt,
    echo,
    setting,
    settings,
)
from pipelines.settings import Settings, load_settings


def run_serve(settings: Settings, echo: Any) -> None:
    """Deploy the Serve application and keep it up until stopped (SIGINT or SIGTERM).

    Either signal shuts the application and the Ray it started down and returns: stopping a
    server is its normal end, not a failure.
    """
    from ray import serve

    from cluster.ray import ray_session
    from cluster.serve_app import deploy

    lake = Lake(settings.lake, settings.lake_storage)
    open_published_features(lake)  # a clear error now rather than in every replica
    s = settings.serve
    with ray_session(settings.ray):
        _, info = deploy(lake.url, settings.lake_storage.model_dump(), s)
        echo(f"serving {s.variant} emulators of {', '.join(info['members'])}")
        echo(f"http: http://{s.http_host}:{s.http_port}/flux?month=YYYY-MM&bbox=W,S,E,N")
        echo("stop with Ctrl-C or SIGTERM")
        try:
            while True:
                time.sleep(3600)
        except (KeyboardInterrupt, Interrupted) as exc:
            name = exc.name if isinstance(exc, Interrupted) else "SIGINT"
            echo(f"{name}: shutting the application down")
            serve.shutdown()
    echo("stopped")


def app_builder(args: dict[str, Any]) -> Any:
    """The application for ``serve run`` and KubeRay's RayService.

    The import path ``pipelines.stages.serve:app_builder`` names it in a Serve config file or a
    RayService's ``serveConfigV2``. Settings come from ``CARBONSINK_*`` variables (the
    ConfigMap in ``infra/k8s``) and ``CARBONSINK_CONFIG``, as for every command; the
    config's ``args`` may set top-level settings too (``lake``, say).
    """
    from cluster.serve_app import build_app

    s = load_settings(None, **dict(args))
    return build_app(s.lake, s.lake_storage.model_dump(), s.serve)


def command(
    lake: LakeOpt = None,
    ray_address: RayAddressOpt = None,
    variant: VariantOpt = None,
    with_reference: WithReferenceOpt = None,
    host: Annotated[
        str | None,
        setting(
            "--host",
            path="serve.http_host",
            help="HTTP address (default 127.0.0.1: this host only).",
        ),
    ] = None,
    port: Annotated[
        int | None, setting("--port", path="serve.http_port", help="HTTP port (default 8000).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Run the emulator's Serve application and its HTTP route until stopped.

    GET /flux?month=YYYY-MM&bbox=W,S,E,N[&member=M][&format=json|netcdf] maps a box on
    demand, at http://127.0.0.1:8000 by default (--host, --port). The local Ray it starts
    listens on 127.0.0.1 only. Stop it with Ctrl-C or SIGTERM (kill PID): both shut the
    application and Ray down and exit 0. Example:

    \b
        carbonsink serve --lake output/lake --port 8000
        curl 'http://127.0.0.1:8000/flux?month=2024-06&bbox=-75,-15,-45,5'
    """
    s = settings(
        config, lake=lake, ray={"address": ray_address},
        serve={"variant": variant, "with_reference": with_reference, "http_host": host,
               "http_port": port},
    )  # fmt: skip
    run_serve(s, echo)
