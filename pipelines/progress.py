"""Progress bars for long work, on stderr (stdout carries only results and paths)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import icechunk
from distributed import Client, Future, as_completed
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from carbonsink.lake.features_store import merge_forks

#: Where progress and messages go; results are printed to stdout.
console = Console(stderr=True, highlight=False)


def progress_bar(*, transient: bool = False) -> Progress:
    """A rich progress bar in carbonsink's style."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=os.environ.get("CARBONSINK_PROGRESS", "1") == "0",
    )


@contextmanager
def tracked(description: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar, as the ``progress(done, total)`` callback the library's long work takes."""
    with progress_bar() as bar:
        task = bar.add_task(description, total=total)
        yield lambda done, of: bar.update(task, completed=done, total=of)


def wait_with_progress(client: Client, futures: Sequence[Future], description: str) -> list[Any]:
    """Wait for futures with a progress bar; return results in order.

    On the first failure the remaining futures are cancelled and the task's exception is
    raised as it was raised on the worker (carbonsink errors keep their one-line message).
    """
    results: dict[Any, Any] = {}
    with progress_bar() as bar:
        task = bar.add_task(description, total=len(futures))
        try:
            for fut in as_completed(futures):
                results[fut.key] = fut.result()
                bar.advance(task)
        except BaseException:
            client.cancel(list(futures))
            raise
    return [results[f.key] for f in futures]


def tree_reduce(client: Client, func: Any, futures: Sequence[Future], *, fan_in: int = 8) -> Future:
    """Reduce futures with ``func(*items)`` in a tree on the cluster; returns one future."""
    level = list(futures)
    if not level:
        raise ValueError("nothing to reduce")
    while len(level) > 1:
        level = [
            client.submit(func, *level[i : i + fan_in], pure=False)
            for i in range(0, len(level), fan_in)
        ]
    return level[0]


def merge_forks_into(
    client: Client, session: icechunk.Session, futures: list[Future], description: str
) -> None:
    """Wait for write tasks that return forked sessions, then merge them into ``session``.

    The forks are merged pairwise on the cluster (a tree), so the driver receives one.
    """
    wait_with_progress(client, futures, description)
    session.merge(tree_reduce(client, merge_forks, futures).result())
