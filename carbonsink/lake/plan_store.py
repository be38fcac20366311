"""Plans of long runs and the lake's run lock, in the lake's ``plans`` store.

A backfill writes its plan before any work: a deterministic list of units (a stage over a
window of months, and for the map stage a band of tile rows), identified by a hash of the
arguments that shape the output, so the same command run again finds the same plan. Each
unit is marked done right after its own work has committed; a driver killed at any moment
(kill -9 included) and started again with the same arguments skips the done units and
redoes at most the unit it was in, whose work had not committed (or had, and is rewritten
with identical bytes).

The lock keeps two drivers off one lake: the holder's run id, host, pid and a heartbeat it
refreshes. Another driver that finds a live lock stops with a message naming the holder; a
lock whose holder died (its pid gone on this host, or no heartbeat for ``STALE_S``) is taken
over.

Every change is an Icechunk commit on ``main``; a commit that conflicts with another
driver's is retried on the new tip, so updates are atomic on local disks and object stores.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import icechunk
import pandas as pd
import zarr

from carbonsink.errors import LakeError
from carbonsink.lake.lake import Lake
from carbonsink.timeutil import MonthWindow

STORE = "plans"
#: Seconds without a heartbeat after which a lock's holder is taken for dead.
STALE_S = 120.0
#: Seconds between heartbeats.
HEARTBEAT_S = 20.0

# Commits from one process (a unit marked done, a heartbeat) take turns.
_LOCAL = threading.Lock()


@dataclass(frozen=True)
class Unit:
    """One unit of work: a stage over a window of months (and a tile band, to map).

    ``band`` is set on ``map`` units only: the band's number among the plan's
    ``tile_bands`` bands of tile rows.
    """

    id: str
    stage: str
    start: str
    end: str
    band: int | None = None


@dataclass(frozen=True)
class Plan:
    """A deterministic plan: its id, the command and arguments, and the units in order."""

    id: str
    command: str
    args: dict[str, Any]
    units: list[Unit]


def make_plan(command: str, args: dict[str, Any], parts: list[MonthWindow], bands: int = 1) -> Plan:
    """The plan of ``command``: ingest units, then map and publish units per partition.

    Every partition (a window of months) gets an ``ingest`` unit; these come first, so a
    cluster's Dask stage ends before its GPU stage begins. Then each partition gets one
    ``map`` unit per tile band, followed by a ``publish`` unit (the ensemble, the checks and
    the compare-and-swap that shows the partition's months to readers).

    The id hashes the command and ``args`` (JSON-safe values that shape the output), so it
    is the same for the same arguments and differs otherwise.
    """
    canonical = json.dumps({"command": command, **args}, sort_keys=True, default=str)
    pid = f"{command}-{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"
    units = [Unit(f"{p}/ingest", "ingest", str(p.start), str(p.end)) for p in parts]
    for p in parts:
        units += [
            Unit(f"{p}/map/band-{b + 1}-of-{bands}", "map", str(p.start), str(p.end), b)
            for b in range(bands)
        ]
        units.append(Unit(f"{p}/publish", "publish", str(p.start), str(p.end)))
    return Plan(pid, command, dict(args), units)


def _now() -> float:
    return pd.Timestamp.now(tz="UTC").timestamp()


def _get(group: Any, key: str) -> Any:
    """A group attribute, untyped (zarr types attributes as any JSON)."""
    return dict(group.attrs).get(key)


def _repo(lake: Lake) -> icechunk.Repository:
    repo = lake.open_repo(STORE)
    return repo if repo is not None else lake.create_repo(STORE)


def _commit(lake: Lake, change: Callable[[zarr.Group], None], message: str) -> None:
    """Apply ``change`` to the root group on ``main`` and commit, retrying on conflicts."""
    with _LOCAL:
        repo = _repo(lake)
        for _ in range(20):
            session = repo.writable_session("main")
            change(zarr.open_group(session.store, mode="a", zarr_format=3))
            if not session.has_uncommitted_changes:
                return
            try:
                session.commit(message)
                return
            except icechunk.ConflictError:
                continue
        raise LakeError(f"the lake's plans store is too busy to record '{message}'; run again")


def _root(lake: Lake) -> zarr.Group | None:
    repo = lake.open_repo(STORE)
    if repo is None:
        return None
    try:
        return zarr.open_group(repo.readonly_session("main").store, mode="r")
    except zarr.errors.GroupNotFoundError:  # created by a driver that has not committed yet
        return None


def record_plan(lake: Lake, plan: Plan) -> dict[str, dict[str, Any]]:
    """Write ``plan`` unless it is there; return its done units (``{unit id: record}``)."""
    root = _root(lake)
    if root is not None and plan.id in root:
        return dict(_get(root[plan.id], "done") or {})

    def change(g: zarr.Group) -> None:
        if plan.id not in g:
            g.create_group(plan.id).attrs.update(
                {
                    "command": plan.command,
                    "args": json.loads(json.dumps(plan.args, default=str)),
                    "units": [asdict(u) for u in plan.units],
                    "created": _now(),
                    "done": {},
                }
            )

    _commit(lake, change, f"plan {plan.id}")
    return {}


def mark_done(lake: Lake, plan: Plan, unit: Unit, **info: Any) -> None:
    """Record ``unit`` of ``plan`` as done (after its transaction published)."""

    def change(g: zarr.Group) -> None:
        group = g[plan.id]
        done = dict(_get(group, "done") or {})
        done[unit.id] = {"at": _now(), **json.loads(json.dumps(info, default=str))}
        group.attrs["done"] = done

    _commit(lake, change, f"{plan.id}: {unit.id} done")


def mark_undone(lake: Lake, plan: Plan, units: list[Unit]) -> None:
    """Forget that ``units`` of ``plan`` were done (their output is gone and must be redone)."""

    def change(g: zarr.Group) -> None:
        group = g[plan.id]
        done = dict(_get(group, "done") or {})
        for unit in units:
            done.pop(unit.id, None)
        group.attrs["done"] = done

    _commit(lake, change, f"{plan.id}: redo {', '.join(u.id for u in units)}")


@dataclass(frozen=True)
class PlanStatus(Plan):
    """A recorded plan and how far it got."""

    done: dict[str, dict[str, Any]]
    created: float

    @property
    def complete(self) -> bool:
        """Whether every unit is done."""
        return all(u.id in self.done for u in self.units)


def read_plans(lake: Lake) -> tuple[list[PlanStatus], dict[str, Any] | None]:
    """Every recorded plan (oldest first) and the current lock (None if free)."""
    root = _root(lake)
    if root is None:
        return [], None
    plans = []
    for name, group in root.groups():
        a: dict[str, Any] = dict(group.attrs)
        plans.append(
            PlanStatus(
                id=name,
                command=a["command"],
                args=a["args"],
                units=[Unit(**u) for u in a["units"]],
                done=dict(a.get("done") or {}),
                created=float(a.get("created", 0.0)),
            )
        )
    lock = _get(root, "lock")
    return sorted(plans, key=lambda p: p.created), (dict(lock) if lock else None)


def _alive(lock: dict[str, Any]) -> bool:
    """Whether a lock's holder is still running, as far as this host can tell."""
    if _now() - float(lock.get("heartbeat", 0.0)) > STALE_S:
        return False
    if lock.get("host") == socket.gethostname():
        try:
            os.kill(int(lock["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def describe_lock(lock: dict[str, Any]) -> str:
    """One line about a lock's holder."""
    age = _now() - float(lock.get("heartbeat", 0.0))
    return (
        f"{lock.get('command')} run {lock.get('owner')} (pid {lock.get('pid')} on "
        f"{lock.get('host')}, heartbeat {age:.0f} s ago)"
    )


class RunLock:
    """The lake's run lock, held with a heartbeat while a long run works.

    Raises
    ------
    LakeError
        On entry, if a live driver holds the lock.
    """

    def __init__(self, lake: Lake, owner: str, command: str) -> None:
        self.lake = lake
        self.record: dict[str, Any] = {
            "owner": owner,
            "command": command,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _stamp(self, g: zarr.Group) -> None:
        g.attrs["lock"] = {**self.record, "heartbeat": _now()}

    def __enter__(self) -> RunLock:
        held: dict[str, Any] | None = None

        def take(g: zarr.Group) -> None:
            nonlocal held
            lock = _get(g, "lock")
            if lock and lock.get("owner") != self.record["owner"] and _alive(lock):
                held = dict(lock)
                return
            held = None
            self._stamp(g)

        _commit(self.lake, take, f"lock {self.record['owner']}")
        if held is not None:
            raise LakeError(
                f"the lake {self.lake.url} is busy: {describe_lock(held)} is working on it; "
                "wait for it to finish (carbonsink status shows its progress)"
            )
        self._thread = threading.Thread(target=self._beat, name="lake-lock", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                _commit(self.lake, self._stamp, f"heartbeat {self.record['owner']}")
            except Exception:  # a missed heartbeat only matters after STALE_S
                continue

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

        def release(g: zarr.Group) -> None:
            lock = _get(g, "lock")
            if lock and lock.get("owner") == self.record["owner"]:
                g.attrs["lock"] = None

        # The run's own error matters more than a failed release: the lock goes stale.
        with contextlib.suppress(Exception):
            _commit(self.lake, release, f"unlock {self.record['owner']}")
