"""Errors users can act on.

Every error carbonsink raises for bad input is a :class:`CarbonsinkError` whose message is
one line naming the problem and the fix. The CLI prints that line and exits non-zero;
nothing has been written to the lake when one is raised.
"""

from __future__ import annotations

import errno
import os
import re


class CarbonsinkError(Exception):
    """Base class: a one-line, actionable message."""

    def __init__(self, message: str) -> None:
        # Collapse whitespace so that a message stays one line in logs and terminals.
        super().__init__(" ".join(str(message).split()))


def brief(exc: BaseException, limit: int = 160) -> str:
    """``Type: message`` of an exception, on one line and at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ConfigError(CarbonsinkError):
    """Invalid settings or arguments."""


class SourceError(CarbonsinkError):
    """The input data cannot be used as it is (variables, units, coordinates, time)."""


class SourceUnreachableError(SourceError):
    """The input URL cannot be opened (missing, no permission, no network)."""


class LakeError(CarbonsinkError):
    """The lake is missing, not a carbonsink lake, or does not match the request."""


class ClusterError(CarbonsinkError):
    """A compute engine (Dask scheduler, Ray cluster, Kubernetes) cannot be started or reached.

    The settings may be right and the cluster down, so it is not a ConfigError.
    """


class StorageError(CarbonsinkError):
    """Storage refuses the writes: read-only, out of space, or not permitted.

    Running the same command again cannot help until that is fixed, so the message says
    what to fix instead.
    """


#: errno -> (what it means, what to do), for the storage failures users can fix.
_STORAGE_CAUSES = {
    errno.EROFS: ("is read-only", "make it writable or pass another --lake"),
    errno.ENOSPC: ("has no space left", "free space or pass a --lake on a larger volume"),
    errno.EDQUOT: ("is over its disk quota", "free space or raise the quota"),
    errno.EACCES: ("does not permit the write", "fix its permissions or pass another --lake"),
    errno.EPERM: ("does not permit the write", "fix its permissions or pass another --lake"),
}


def storage_problem(exc: BaseException, where: str = "the lake's storage") -> StorageError | None:
    """A one-line :class:`StorageError` for a storage failure a user can fix, else None.

    Recognises OSErrors by errno and, for errors raised in Rust (Icechunk) or on workers,
    the ``(os error N)`` and ``[Errno N]`` in their text, anywhere along the cause chain.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        code = cur.errno if isinstance(cur, OSError) else None
        if code not in _STORAGE_CAUSES:
            m = _ERRNO_RE.search(str(cur))
            code = int(m.group(1) or m.group(2)) if m else None
        if code in _STORAGE_CAUSES:
            what, fix = _STORAGE_CAUSES[code]
            return StorageError(f"{where} {what} ({os.strerror(code)}); {fix}")
        cur = cur.__cause__ or cur.__context__
    return None


_ERRNO_RE = re.compile(r"\(os error (\d+)\)|\[Errno (\d+)\]")


class Interrupted(BaseException):
    """A signal asked the command to stop: SIGINT (Ctrl-C) or SIGTERM (an eviction).

    A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` swallows
    it on the way out, while every ``with`` and ``finally`` on the way (a run's transaction
    abandoning its branch) still runs.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        """SIGINT or SIGTERM."""
        import signal

        return signal.Signals(self.signum).name
