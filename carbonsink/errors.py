"""Errors users can act on.

Every error carbonsink raises for bad input is a :class:`CarbonsinkError` whose message is
one line naming the problem and the fix. The CLI prints that line and exits non-zero;
nothing has been written to the lake when one is raised.
"""

from __future__ import annotations


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
