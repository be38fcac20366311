"""The emulator's Ray Serve application: batched tile inference and an HTTP route.

Two deployments:

- ``emulator`` (:class:`EmulatorReplica`): one deployment that serves every member of a
  variant (it multiplexes members, which then share each month's feature reads; see
  ``docs/serve.md``). Requests carry a :class:`TileRequest` (a tile key and, for mapping
  runs, a fork of the run's Icechunk session); ``@serve.batch`` gathers them, the replica reads each
  tile's inputs with halo from the lake itself, runs one forward pass per member on the
  batch (GPU when the replica has one), crops the halo, writes the tile into its fork and
  answers with the key, a status and the fork. Weights come from the lake's ``models``
  store, located by the lake URL in the deployment's ``user_config``, never passed as
  arguments.
- ``http`` (:class:`FluxHttp`): ``GET /flux?month=YYYY-MM&bbox=W,S,E,N[&member=M]
  [&format=json|netcdf]`` maps a box on demand through the ``emulator`` deployment.

Everything that changes from one command to the next (the lake and the snapshots of its
stores, the variant and members, batching, the route's limits) is ``user_config``, and a
deployment's version is fixed by the code (:func:`_stable_version`): deploying again
reconfigures the live replicas instead of replacing them.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import json
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import icechunk
import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from carbonsink.emulator.cnn import pick_device
from carbonsink.emulator.mapper import TileMapper, published_members
from carbonsink.emulator.tiles import TileKey
from carbonsink.errors import CarbonsinkError, ConfigError
from carbonsink.lake.features_store import ingested_months, read_layout
from carbonsink.lake.flux_store import ENSEMBLE_MEDIAN, FLUXES, ensemble_median
from carbonsink.lake.lake import Lake
from carbonsink.memory import keep_freed_memory
from carbonsink.storage import StorageOptions
from carbonsink.timeutil import parse_month
from cluster.settings import ServeSettings

APP_NAME = "carbonsink"
# Serve's driver-side INFO lines (deploying, "application is ready", router start-up) would
# interleave with the commands' progress bars; warnings and errors still show.
logging.getLogger("ray.serve").setLevel(logging.WARNING)
EMULATOR = "emulator"
MEDIAN = ENSEMBLE_MEDIAN


@dataclass
class TileRequest:
    """A tile key, and the fork of the run's session to write it into (None: return it)."""

    key: TileKey
    fork: icechunk.ForkSession | None = None


@dataclass
class TileResult:
    """The answer to a :class:`TileRequest`."""

    key: TileKey
    status: str
    fork: icechunk.ForkSession | None = None
    flux: np.ndarray | None = None
    batch_size: int = 0
    replica: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def fixed_pass_size(mapper: TileMapper, max_batch_size: int, fixed: bool) -> int | None:
    """Tiles per forward pass when passes are fixed: one on CPU, a padded batch on a GPU.

    On this CPU one 0.25 deg tile per pass is the fastest anyway (8 passes of one took
    0.37 s, one pass of 8 took 0.77 s), so fixing the pass costs nothing there; a GPU needs
    the batch, and pays for the padding of short ones.
    """
    if not fixed:
        return None
    cuda = any(e.device.type == "cuda" for e in mapper.emulators.values())
    return max_batch_size if cuda else 1


def batching_config(settings: ServeSettings) -> dict[str, Any]:
    """The ``user_config`` that sets a replica's batching."""
    return {
        "max_batch_size": settings.max_batch_size,
        "batch_wait_timeout_s": settings.batch_wait_timeout_s,
        "fixed_passes": settings.fixed_passes,
    }


def plan_deployments(
    lake: str, lake_storage: dict[str, Any], settings: ServeSettings
) -> dict[str, list[str] | None]:
    """Emulator deployments by name, with the members each serves.

    The members are the ensemble (:func:`carbonsink.emulator.mapper.published_members`):
    ``multiplexed``, one ``emulator`` deployment for all of them; ``per-member``,
    ``emulator-<member>`` for each (read from the models store's listing; the replicas
    still load their weights themselves).
    """
    members = published_members(
        Lake(lake, StorageOptions(**lake_storage)), settings.variant,
        with_reference=settings.with_reference,
    )  # fmt: skip
    if settings.layout == "multiplexed":
        return {EMULATOR: members}
    return {f"{EMULATOR}-{m}": [m] for m in members}


class Routes:
    """Which emulator deployment handle serves a member.

    Parameters
    ----------
    handles
        By deployment name, as :func:`plan_deployments` names them.
    plan
        The members of each deployment (None: every member).
    """

    def __init__(
        self, handles: dict[str, DeploymentHandle], plan: dict[str, list[str] | None]
    ) -> None:
        self.handles = handles
        self.by_member = {m: handles[d] for d, ms in plan.items() for m in ms or []}
        self.default = next((handles[d] for d, ms in plan.items() if ms is None), None)

    @classmethod
    def of_app(cls, plan: dict[str, list[str] | None], app_name: str = APP_NAME) -> Routes:
        """Handles to the emulator deployments of a running application."""
        return cls({d: serve.get_deployment_handle(d, app_name=app_name) for d in plan}, plan)

    def handle(self, member: str) -> DeploymentHandle:
        """The deployment that serves ``member``."""
        h = self.by_member.get(member, self.default)
        if h is None:
            raise CarbonsinkError(f"no emulator deployment serves member {member!r}")
        return h

    async def describe(self) -> dict[str, Any]:
        """:meth:`EmulatorReplica.describe` of every deployment, members merged."""
        infos = await asyncio.gather(*(h.describe.remote() for h in self.handles.values()))
        return _merge_info(list(infos))


def _merge_info(infos: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(infos[0])
    out["members"] = sorted({m for i in infos for m in i["members"]})
    sizes: Counter[int] = Counter()
    for i in infos:
        sizes.update({int(k): v for k, v in i["batch_sizes"].items()})
    out["batch_sizes"] = dict(sizes)
    out["replicas"] = sorted({i["replica"] for i in infos})
    return out


# A deploy that replaces replicas (new code or resources) replaces them all at once, not
# one at a time (Serve's default for two replicas): a run waits for the whole application
# anyway, and the one-at-a-time rollout took 21 s against 16 s on the test lake.
@serve.deployment(name=EMULATOR, rolling_update_percentage=1.0)
class EmulatorReplica:
    """Serves the emulators of one variant (all members or some); see the module docstring."""

    def __init__(self, device: str) -> None:
        # Each forward pass allocates megabytes: reuse them instead of page-faulting fresh
        # mappings (carbonsink.memory; a one-tile CPU pass 0.031 -> 0.021 s, measured).
        keep_freed_memory()
        self.device = pick_device(device)
        self.mapper: TileMapper | None = None
        self.bound: dict[str, Any] = {}
        self.batch_sizes: Counter[int] = Counter()
        self.replica = serve.get_replica_context().replica_id.unique_id

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply ``user_config``: the lake and its pinned snapshots, batch size and wait.

        The emulators are (re)loaded only when the lake, variant, members or the snapshots
        of its features and models differ from those loaded (:func:`lake_config`).
        """
        bound = {k: config[k] for k in LAKE_KEYS}
        if self.mapper is None or bound != self.bound:
            self.mapper = TileMapper.open(
                Lake(config["lake"], StorageOptions(**config["lake_storage"])),
                config["variant"],
                members=config["members"],
                device=self.device,
            )
            self.bound = bound
        self.map_batch.set_max_batch_size(int(config["max_batch_size"]))  # type: ignore[attr-defined]
        self.map_batch.set_batch_wait_timeout_s(float(config["batch_wait_timeout_s"]))  # type: ignore[attr-defined]
        self.mapper.pass_size = fixed_pass_size(
            self.mapper, int(config["max_batch_size"]), bool(config.get("fixed_passes"))
        )

    def describe(self) -> dict[str, Any]:
        """Lake, members, grid and tiling served, and the batch sizes seen so far."""
        assert self.mapper is not None  # Serve reconfigures a replica before it serves
        return {
            "lake": self.bound["lake"],
            "snapshots": self.bound["snapshots"],
            "members": self.mapper.members,
            "resolution": self.mapper.layout.grid.resolution,
            "tile": list(self.mapper.tile),
            "tiles_per_month": self.mapper.tiles_per_month,
            "batch_sizes": dict(self.batch_sizes),
            "replica": self.replica,
        }

    async def map_tile(self, request: TileRequest) -> TileResult:
        """Map one tile (batched with other requests)."""
        result: TileResult = await self.map_batch(request)
        return result

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def map_batch(self, requests: list[TileRequest]) -> list[TileResult]:
        """One forward pass per member over the batch; each tile written to its fork."""
        assert self.mapper is not None
        mapper = self.mapper
        self.batch_sizes[len(requests)] += 1
        keys = [r.key for r in requests]
        try:
            # The forward pass holds the CPU; run it off the event loop so the replica
            # keeps queueing the next batch meanwhile.
            blocks = await asyncio.to_thread(mapper.predict, keys)
        except CarbonsinkError as exc:
            return [TileResult(k, f"error: {exc}", replica=self.replica) for k in keys]
        out = []
        for req, block in zip(requests, blocks, strict=True):
            if req.fork is None:
                out.append(TileResult(req.key, "ok", flux=block, batch_size=len(requests)))
                continue
            await asyncio.to_thread(mapper.write, req.fork.store, req.key, block)
            out.append(
                TileResult(
                    req.key, "ok", fork=req.fork, batch_size=len(requests), replica=self.replica
                )
            )
        return out


class BadRequest(ValueError):
    """A request the HTTP route refuses (4xx), with its status code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ServerError(RuntimeError):
    """A request the route accepted but could not answer: an emulator replica failed (500)."""

    status = 500


@serve.deployment(name="http")
class FluxHttp:
    """On-demand inference of a box: ``GET /flux``; see the module docstring."""

    def __init__(self, emulators: dict[str, DeploymentHandle]) -> None:
        self.emulators = emulators
        self.info: dict[str, Any] | None = None

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply ``user_config``: the lake, the deployments' members and the box limits."""
        self.routes = Routes(self.emulators, config["plan"])
        self.lake = Lake(config["lake"], StorageOptions(**config["lake_storage"]))
        self.max_box_cells = int(config["max_box_cells"])
        self.max_json_cells = int(config["max_json_cells"])
        self.info = None  # asked of the emulator deployments again

    async def __call__(self, request: Request) -> Response:
        """Answer ``GET /flux``; 4xx with a one-line message for a bad request."""
        if request.url.path.rstrip("/") not in ("/flux", ""):
            return JSONResponse({"error": "unknown path; use GET /flux"}, status_code=404)
        if request.url.path.rstrip("/") == "":
            return JSONResponse({"routes": ["/flux?month=YYYY-MM&bbox=W,S,E,N"]})
        if request.method != "GET":
            return JSONResponse({"error": "use GET"}, status_code=405)
        try:
            if self.info is None:
                self.info = await self.routes.describe()
            query = self._parse(dict(request.query_params))
            return await self._answer(query)
        except (BadRequest, ServerError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)

    def _parse(self, q: dict[str, str]) -> dict[str, Any]:
        assert self.info is not None
        unknown = sorted(set(q) - {"month", "bbox", "member", "format"})
        if unknown:
            raise BadRequest(f"unknown parameter(s) {', '.join(unknown)}")
        if "month" not in q:
            raise BadRequest("month=YYYY-MM is required, e.g. month=2021-06")
        try:  # the command line's rule: YYYY-MM with MM 01-12, nothing looser
            month = parse_month(q["month"], what="month")
        except ConfigError as exc:
            raise BadRequest(str(exc)) from exc
        try:
            west, south, east, north = (float(v) for v in q["bbox"].split(","))
        except (KeyError, ValueError) as exc:
            raise BadRequest(
                "bbox=W,S,E,N in degrees is required, e.g. bbox=-60,-10,-50,0"
            ) from exc
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise BadRequest("bbox needs -180 <= W < E <= 180 and -90 <= S < N <= 90")
        members = self.info["members"]
        member = q.get("member", MEDIAN if len(members) > 1 else members[0])
        if member not in [*members, MEDIAN]:
            raise BadRequest(f"member must be one of {', '.join([*members, MEDIAN])}")
        fmt = q.get("format", "json")
        if fmt not in ("json", "netcdf"):
            raise BadRequest("format must be json or netcdf")
        d = self.info["resolution"]
        rows = slice(math.floor((south + 90) / d), math.ceil((north + 90) / d))
        cols = slice(math.floor((west + 180) / d), math.ceil((east + 180) / d))
        cells = (rows.stop - rows.start) * (cols.stop - cols.start)
        if cells > self.max_box_cells:
            raise BadRequest(
                f"the box holds {cells} cells, above the limit of {self.max_box_cells}; "
                "ask for a smaller box or map the window with carbonsink infer",
                status=413,
            )
        if fmt == "json" and cells > self.max_json_cells:
            raise BadRequest(
                f"the box holds {cells} cells, above {self.max_json_cells} for JSON; "
                "ask for format=netcdf",
                status=413,
            )
        repo = self.lake.open_repo("features")
        if repo is None:
            raise BadRequest("the lake has no features store", status=404)
        store = repo.readonly_session("main").store
        if month not in set(ingested_months(store, read_layout(store))):
            raise BadRequest(f"month {month} is not in the lake's features; ingest it first", 404)
        return {"month": month, "rows": rows, "cols": cols, "member": member, "format": fmt}

    async def _answer(self, q: dict[str, Any]) -> Response:
        assert self.info is not None
        th, tw = self.info["tile"]
        d = self.info["resolution"]
        nx = round(360 / d)
        rows, cols = q["rows"], q["cols"]
        per_row = nx // tw
        tiles = [
            tr * per_row + tc
            for tr in range(rows.start // th, (rows.stop - 1) // th + 1)
            for tc in range(cols.start // tw, (cols.stop - 1) // tw + 1)
        ]
        members = self.info["members"] if q["member"] == MEDIAN else [q["member"]]
        keys = [TileKey(m, str(q["month"]), t) for m in members for t in tiles]
        results: list[TileResult] = await asyncio.gather(
            *[self.routes.handle(k.member).map_tile.remote(TileRequest(k)) for k in keys]
        )
        bad = [r for r in results if r.status != "ok"]
        if bad:
            raise ServerError(f"a tile failed: {bad[0].status}")
        per_member: dict[str, np.ndarray] = {}
        for m in members:
            field = np.full((len(FLUXES), rows.stop - rows.start, cols.stop - cols.start), np.nan)
            for r in results:
                if r.key.member != m:
                    continue
                assert r.flux is not None
                i0, j0 = (r.key.index // per_row) * th, (r.key.index % per_row) * tw
                rs = slice(max(rows.start, i0), min(rows.stop, i0 + th))
                cs = slice(max(cols.start, j0), min(cols.stop, j0 + tw))
                field[:, rs.start - rows.start : rs.stop - rows.start,
                      cs.start - cols.start : cs.stop - cols.start] = r.flux[
                    :, rs.start - i0 : rs.stop - i0, cs.start - j0 : cs.stop - j0]  # fmt: skip
            per_member[m] = field
        flux = ensemble_median(list(per_member.values()))
        lat = -90 + d * (np.arange(rows.start, rows.stop) + 0.5)
        lon = -180 + d * (np.arange(cols.start, cols.stop) + 0.5)
        if q["format"] == "json":
            body = {
                "month": str(q["month"]),
                "member": q["member"],
                "units": "kg m-2 s-1 per m2 of grid cell, positive into the land / ocean",
                "lat": lat.round(6).tolist(),
                "lon": lon.round(6).tolist(),
                **{name: _json_rows(flux[k]) for k, name in enumerate(FLUXES)},
            }
            return Response(json.dumps(body), media_type="application/json")
        return Response(_netcdf(flux, lat, lon, q), media_type="application/x-netcdf")


def _json_rows(field: np.ndarray) -> list[list[float | None]]:
    """Rows of a field with NaN as null (JSON has no NaN)."""
    return [[float(v) if np.isfinite(v) else None for v in row] for row in field]


def _netcdf(flux: np.ndarray, lat: np.ndarray, lon: np.ndarray, q: dict[str, Any]) -> bytes:
    import xarray as xr

    attrs = {"units": "kg m-2 s-1", "positive": "down"}
    data = {
        name: (("lat", "lon"), flux[k].astype(np.float32), attrs) for k, name in enumerate(FLUXES)
    }
    coords = {
        "lat": ("lat", lat, {"units": "degrees_north"}),
        "lon": ("lon", lon, {"units": "degrees_east"}),
    }
    meta = {"month": str(q["month"]), "member": q["member"], "source": "carbonsink serve"}
    ds = xr.Dataset(data, coords=coords, attrs=meta)
    buf = io.BytesIO()
    ds.to_netcdf(buf, engine="h5netcdf")
    return buf.getvalue()


def build_app(
    lake: str,
    lake_storage: dict[str, Any],
    settings: ServeSettings,
    plan: dict[str, list[str] | None] | None = None,
) -> Any:
    """The Serve application: the emulator deployment(s) behind the ``http`` ingress.

    ``plan`` is :func:`plan_deployments` (computed when not given); each deployment gets
    ``settings``' replicas, resources and batching.
    """
    plan = plan if plan is not None else plan_deployments(lake, lake_storage, settings)
    bound = lake_config(lake, lake_storage, settings.variant)
    # One access-log line per tile request drowns the progress bar; warnings still show.
    quiet = {"log_level": "WARNING", "enable_access_log": False}
    device = "cuda" if settings.num_gpus > 0 else "cpu"
    emulators = {
        name: EmulatorReplica.options(  # type: ignore[attr-defined]
            name=name,
            logging_config=quiet,
            num_replicas=settings.num_replicas,
            max_ongoing_requests=settings.max_ongoing_requests,
            ray_actor_options={"num_cpus": settings.num_cpus, "num_gpus": settings.num_gpus},
            user_config={**batching_config(settings), **bound, "members": members},
            **_stable_version(name, device),
        ).bind(device)
        for name, members in plan.items()
    }
    # The ingress only parses, routes and packs answers (async): no CPU of its own, so it
    # never competes with the emulator replicas for the cluster's CPUs.
    http = FluxHttp.options(  # type: ignore[attr-defined]
        logging_config=quiet,
        ray_actor_options={"num_cpus": 0},
        user_config={
            "lake": lake, "lake_storage": lake_storage, "plan": plan,
            "max_box_cells": settings.max_box_cells, "max_json_cells": settings.max_json_cells,
        },
        **_stable_version("http", *sorted(plan)),
    )  # fmt: skip
    return http.bind(emulators)


#: The ``user_config`` keys that name what an emulator replica has loaded.
LAKE_KEYS = ("lake", "lake_storage", "variant", "members", "snapshots")


def lake_config(lake: str, lake_storage: dict[str, Any], variant: str) -> dict[str, Any]:
    """What the emulator replicas serve: the lake, the variant and its stores' snapshots.

    The snapshots are those of the ``features`` and ``models`` stores now: a new ingest or
    training changes them, and the replicas then load them anew.
    """
    lk = Lake(lake, StorageOptions(**lake_storage))
    snapshots = {}
    for name in ("features", "models"):
        repo = lk.open_repo(name)
        snapshots[name] = repo.lookup_branch("main") if repo is not None else None
    return {"lake": lake, "lake_storage": lake_storage, "variant": variant, "snapshots": snapshots}


def _stable_version(*parts: str) -> dict[str, Any]:
    """Deployment options that fix a deployment's version by the code and its arguments.

    ``serve.run`` gives every deployment a random version, so each deploy replaced every
    replica (a new process that imports torch and loads the emulators: 16 s for the test
    lake's application). Everything that varies from run to run (the lake, its snapshots,
    the variant, members, batching, box limits) is ``user_config``, which Serve applies to
    live replicas by calling ``reconfigure``; so the version need only change with the code
    (a hash of this package's and the library's sources) and the constructor's arguments.
    Ray's ``version`` option is internal since 2.x (``_internal=True``), which is why it is
    set here only; a change of resources or replica count Serve still handles itself.
    """
    digest = hashlib.sha256("\0".join([_source_digest(), *parts]).encode()).hexdigest()
    return {"version": digest[:16], "_internal": True}


@functools.cache
def _source_digest() -> str:
    """SHA-256 of the sources of ``carbonsink`` and ``cluster`` (what a replica runs)."""
    import carbonsink

    h = hashlib.sha256()
    for package in (Path(carbonsink.__file__).parent, Path(__file__).parent):
        for path in sorted(package.rglob("*.py")):
            h.update(str(path.relative_to(package.parent)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def deploy(
    lake: str, lake_storage: dict[str, Any], settings: ServeSettings
) -> tuple[Routes, dict[str, Any]]:
    """Start Serve's HTTP proxy, run the application and wait for it: routes and ``describe``.

    Needs a connected Ray (``cluster.ray.ray_session``).
    """
    serve.start(http_options={"host": settings.http_host, "port": settings.http_port})
    plan = plan_deployments(lake, lake_storage, settings)
    serve.run(build_app(lake, lake_storage, settings, plan), name=APP_NAME)
    routes = Routes.of_app(plan)
    return routes, wait_ready(routes)


def wait_ready(routes: Routes, timeout_s: float = 300.0) -> dict[str, Any]:
    """Block until every emulator deployment answers; their merged ``describe``."""
    t0 = time.monotonic()
    while True:
        try:
            infos = [h.describe.remote().result(timeout_s=30) for h in routes.handles.values()]
            return _merge_info(infos)
        except Exception:
            if time.monotonic() - t0 > timeout_s:
                raise
            time.sleep(1.0)
