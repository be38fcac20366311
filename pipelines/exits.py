"""How a command ends: one-line errors and the exit code that says what happened.

0 done; 2 bad input or a problem the user must fix (the message says which); 1 an
unexpected failure; 130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM (what Kubernetes
sends on eviction). SIGTERM is handled like SIGINT, so an evicted command abandons its run
branch as an interrupted one does: an interrupted or refused command leaves the lake as it
was. ``CARBONSINK_DEBUG=1`` shows the chain of causes behind the one line.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from typing import Any, NoReturn

import typer
from typer.exceptions import TyperException

from carbonsink.errors import CarbonsinkError, Interrupted, brief, storage_problem


def _stop(signum: int, _frame: object) -> None:
    """Turn SIGINT and SIGTERM into :class:`Interrupted`, once.

    The clean-up that follows (abandoning a run's branch) is not cut short by a second one.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    # What the engines log while they are torn down mid-work (a scatter cut short, a peer
    # gone) is noise next to the one line that says what happened.
    logging.disable(logging.CRITICAL)
    raise Interrupted(signum)


def run_app(app: Any, argv: list[str] | None = None) -> None:
    """Run the typer ``app`` on ``argv`` (the process's arguments when None).

    A command that succeeds returns; any other outcome raises ``SystemExit`` with the code
    of the module docstring, after one line on stderr. SIGINT and SIGTERM handlers are
    installed for the call and restored after it, for in-process callers (tests, notebooks).
    """
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _run(app, argv)
    finally:  # main() called in-process (tests, notebooks) leaves the handlers as it found them
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if argv is not None:  # in-process; a command line's process ends here anyway
            logging.disable(logging.NOTSET)


def _run(app: Any, argv: list[str] | None) -> None:
    try:
        code = app(args=argv, standalone_mode=False)
    except CarbonsinkError as exc:
        if os.environ.get("CARBONSINK_DEBUG"):  # the chain of causes behind the one line
            traceback.print_exception(exc)
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (Interrupted, KeyboardInterrupt) as exc:
        _interrupted(exc.name if isinstance(exc, Interrupted) else "SIGINT")
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except TyperException as exc:  # usage errors: bad option values, unknown commands
        ctx = getattr(exc, "ctx", None)
        cmd = ctx.command_path if ctx is not None else "carbonsink"
        text = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.echo(f"error: {' '.join(text.split())} (see {cmd} --help)", err=True)
        sys.exit(2)
    except Exception as exc:
        if os.environ.get("CARBONSINK_DEBUG"):
            raise
        problem = storage_problem(exc, "the storage")
        if problem is not None:  # read-only, full: a one-line cause, not "unexpected"
            typer.echo(f"error: {problem}", err=True)
            sys.exit(2)
        typer.echo(
            f"error: unexpected {brief(exc, 300)} (set CARBONSINK_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(1)
    if code == 130:  # typer caught a KeyboardInterrupt itself (before our handler ran)
        _interrupted("SIGINT")
    if isinstance(code, int) and code:
        sys.exit(code)


def _interrupted(name: str) -> NoReturn:
    typer.echo(
        f"interrupted by {name}: the interrupted step published nothing (its run branch is "
        "gone); published work is kept",
        err=True,
    )
    sys.exit(143 if name == "SIGTERM" else 130)
