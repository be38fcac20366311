"""A run's transaction on one store of the lake: a branch of its own, published by CAS.

Every stage that writes to the lake does it the same way: branch from ``main``, commit its
steps on the branch, then move ``main`` to the branch's tip only if nobody moved ``main``
meanwhile. A run that fails leaves ``main`` as it was, and removes the store (and the lake)
if it created them.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import uuid
from types import TracebackType
from typing import Any

import icechunk
import pandas as pd
import psutil

from carbonsink.errors import LakeError, StorageError, brief, storage_problem
from carbonsink.lake.lake import Lake
from pipelines.progress import console


def new_run_id() -> str:
    """A sortable, unique run identifier (UTC time plus a random suffix)."""
    return f"{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


#: Folder of the lake where open transactions say who holds their branch.
RUNS = "runs"


def _record_path(store: str, branch: str) -> str:
    return f"{RUNS}/{store}.{branch}.json"


def _this_process() -> dict[str, Any]:
    me = psutil.Process()
    return {"host": socket.gethostname(), "pid": me.pid, "process_started": me.create_time()}


def _process_gone(record: dict[str, Any]) -> bool | None:
    """Whether a record's process has ended; None where this host cannot tell (another host)."""
    if record.get("host") != socket.gethostname():
        return None
    try:
        proc = psutil.Process(int(record["pid"]))
        # A reused pid belongs to a process started later.
        return abs(proc.create_time() - float(record["process_started"])) > 1.0
    except (psutil.NoSuchProcess, KeyError, ValueError):
        return True
    except psutil.AccessDenied:  # another user's process, alive
        return False


def abandoned_branches(lake: Lake, store: str, older_than: dt.timedelta) -> list[str]:
    """``run-*`` branches of a store whose run is over without having cleaned up.

    A run's branch outlives it only when its process was killed outright (SIGKILL, a lost
    node): SIGINT and SIGTERM abandon it on the way out. A branch counts as abandoned when
    its run's record names a process of this host that has ended; or, where this host
    cannot tell (a record from another host, or none: runs of older versions), when the run
    began longer ago than ``older_than``.
    """
    repo = lake.open_repo(store)
    if repo is None:
        return []
    now = dt.datetime.now(dt.UTC)
    out = []
    for branch in sorted(b for b in repo.list_branches() if b.startswith("run-")):
        raw = lake.read_file(_record_path(store, branch))
        record = json.loads(raw) if raw else {}
        gone = _process_gone(record) if record else None
        if gone is None:
            try:
                began = dt.datetime.strptime(branch[4:19], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
            except ValueError:
                continue  # not a run branch of carbonsink's making
            gone = now - began > older_than
        if gone:
            out.append(branch)
    return out


def remove_abandoned(lake: Lake, store: str, branch: str) -> None:
    """Delete an abandoned run branch and its record."""
    repo = lake.open_repo(store)
    if repo is not None and branch in repo.list_branches():
        repo.delete_branch(branch)
    lake.delete_file(_record_path(store, branch))


class StoreTransaction:
    """Context manager for a run's writes to one store.

    Parameters
    ----------
    lake
        The lake.
    store
        Store name (``features``, ``labels``, ``models``, ...).
    run_id
        Names the branch ``run-<run_id>``.

    Attributes
    ----------
    repo
        The store's repository (created on entry if it did not exist).
    created
        Whether this run created the store.
    """

    def __init__(self, lake: Lake, store: str, run_id: str) -> None:
        self.lake = lake
        self.store = store
        self.run_id = run_id
        self.branch = f"run-{run_id}"
        self.tip: str | None = None

    def __enter__(self) -> StoreTransaction:
        self.lake_existed = self.lake.info() is not None
        repo = self.lake.open_repo(self.store) if self.lake_existed else None
        self.created = repo is None
        try:
            self.repo = repo if repo is not None else self.lake.create_repo(self.store)
            self.base = self.repo.lookup_branch("main")
            self.repo.create_branch(self.branch, self.base)
            # Who holds the branch, so that `carbonsink compact` can tell a branch whose
            # process was killed outright from one still at work.
            record = {"store": self.store, "branch": self.branch, **_this_process()}
            self.lake.write_file(_record_path(self.store, self.branch), json.dumps(record).encode())
        except (OSError, icechunk.IcechunkError) as exc:
            problem = storage_problem(exc, f"the lake {self.lake.url}")
            if problem is None:
                raise
            if self.created and not self.lake_existed:
                self.lake.destroy_if_empty()
            raise problem from exc
        return self

    def session(self) -> icechunk.Session:
        """A writable session on the run's branch."""
        return self.repo.writable_session(self.branch)

    def readonly(self) -> icechunk.Session:
        """A read-only session at the branch's tip (to hand to workers)."""
        return self.repo.readonly_session(self.branch)

    def publish(self) -> str:
        """Move ``main`` to the branch's tip (compare-and-swap), drop the branch, tag the tip.

        Raises
        ------
        LakeError
            If another run published to the store meanwhile.
        """
        tip = self.repo.lookup_branch(self.branch)
        try:
            self.repo.reset_branch("main", tip, from_snapshot_id=self.base)
        except icechunk.IcechunkError as exc:
            raise LakeError(
                f"another run published to the {self.store} store while this one ran "
                f"({brief(exc, 120)}); run it again"
            ) from exc
        self.repo.delete_branch(self.branch)
        self.lake.delete_file(_record_path(self.store, self.branch))
        # The tag names the published snapshot after the run, for provenance and rollback.
        self.repo.create_tag(self.branch, tip)
        self.tip = tip
        return tip

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            if self.tip is None:  # a transaction left without publishing publishes nothing
                self.abandon()
            return
        self.abandon()
        if isinstance(exc, icechunk.IcechunkError | OSError):
            state = "nothing was published" if self.tip is None else "the run had published"
            problem = storage_problem(exc, f"the lake's {self.store} store")
            if problem is not None:  # read-only, full: running again cannot help
                raise StorageError(f"{problem}; {state}") from exc
            if isinstance(exc, icechunk.IcechunkError):
                # The store's storage failed past its retries (an outage, lost credentials):
                # one line that says what happened and that running again is safe.
                raise LakeError(
                    f"the lake's {self.store} store could not be read or written "
                    f"({brief(exc, 140)}); {state}: run the same command again"
                ) from exc

    def abandon(self) -> None:
        """Undo what the run made: its branch, and a store or lake it created."""
        try:
            self.lake.delete_file(_record_path(self.store, self.branch))
            if self.created:
                self.lake.delete_repo(self.store)
                if not self.lake_existed:
                    self.lake.destroy_if_empty()
            else:
                self.repo.delete_branch(self.branch)
        except Exception as exc:  # the original error matters more than the clean-up's
            console.print(
                f"[yellow]warning:[/] clean-up after the failed run was incomplete: {exc}"
            )


class DurableBranch:
    """A named branch of one store that outlives the process that writes to it.

    A backfill partition's map units commit their tile bands on it, one commit each; its
    publish unit moves ``main`` to the branch's tip. A driver killed in between finds the
    committed bands there when it resumes. Unlike :class:`StoreTransaction`, nothing is
    undone on error: what was committed is kept for the next run.

    Parameters
    ----------
    lake
        The lake.
    store
        The store's name; the store must exist.
    name
        The branch's name (deterministic: the same plan and partition give the same name).
    """

    def __init__(self, lake: Lake, store: str, name: str) -> None:
        repo = lake.open_repo(store)
        if repo is None:
            raise LakeError(f"the lake has no {store} store to branch from")
        self.repo = repo
        self.store = store
        self.name = name

    def exists(self) -> bool:
        """Whether the branch is there."""
        return self.name in self.repo.list_branches()

    def session(self) -> icechunk.Session:
        """A writable session on the branch (created from ``main`` if it is not there)."""
        if not self.exists():
            self.repo.create_branch(self.name, self.repo.lookup_branch("main"))
        return self.repo.writable_session(self.name)

    def _history(self, branch: str) -> set[str]:
        return {s.id for s in self.repo.ancestry(branch=branch)}

    def published(self) -> bool:
        """Whether ``main`` holds the branch's tip (its publish happened)."""
        return self.exists() and self.repo.lookup_branch(self.name) in self._history("main")

    def behind(self) -> bool:
        """Whether ``main`` moved since the branch left it (its work rests on an old base)."""
        return self.repo.lookup_branch("main") not in self._history(self.name)

    def publish(self, tag: str) -> str:
        """Move ``main`` to the branch's tip if ``main`` is its ancestor; tag the tip.

        Raises
        ------
        LakeError
            If another run published to the store since the branch left ``main``.
        """
        base = self.repo.lookup_branch("main")
        tip = self.repo.lookup_branch(self.name)
        moved = (
            f"another run published to the {self.store} store while this one ran; run the "
            "same command again to redo this part on top of it"
        )
        if self.behind():
            raise LakeError(moved)
        try:
            self.repo.reset_branch("main", tip, from_snapshot_id=base)
        except icechunk.IcechunkError as exc:  # main moved between the check and the swap
            raise LakeError(moved) from exc
        if tag not in self.repo.list_tags():
            self.repo.create_tag(tag, tip)
        return tip

    def drop(self) -> None:
        """Delete the branch if it is there."""
        if self.exists():
            self.repo.delete_branch(self.name)
