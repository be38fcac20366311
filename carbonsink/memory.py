"""Heap settings for the processes that compute on large arrays (CPU).

A batch of tiles, every activation of the CNN and the process models' global fields are
megabytes to tens of megabytes. glibc serves allocations that large with a fresh ``mmap``
and unmaps them on ``free`` (its adaptive threshold stops at 32 MiB, and any malloc
tunable in the environment turns it off), so each pass touched every page of its
temporaries anew: page faults, and the kernel zeroing the pages, took three quarters of a
CPU forward pass of the emulator over a batch of eight tiles. Kept for reuse, the same work
ran 3.5x faster for inference in batches of eight, 1.3x for training and 1.3x for a process
model's month (``benchmarks/emulator.py``, ``docs/benchmarks.md``).
The cost is that a process keeps its peak heap until it exits instead of returning it
between passes. A command's process, Serve's replicas and the Dask workers of
:mod:`cluster.dask` run with it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: Allocations above this still get their own mapping (and go back to the OS when freed).
MMAP_THRESHOLD = 1 << 30
#: Free memory at the top of the heap is returned to the OS only beyond this.
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Let glibc reuse freed large blocks instead of unmapping them; whether it applied.

    A no-op returning ``False`` where the C library is not glibc (macOS, musl), since only
    glibc's ``mallopt`` takes these settings.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
