"""The heap setting: large blocks are reused instead of mapped afresh."""

import subprocess
import sys

import pytest

# In a fresh process (this one already runs with the setting): the number of blocks glibc
# has mapped on their own (mallinfo2's hblks) while a 64 MiB array is alive, before and
# after keep_freed_memory.
PROBE = """
import ctypes, numpy as np
from carbonsink.memory import keep_freed_memory

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info

def mapped_while_alive():
    before = libc.mallinfo2().hblks
    a = np.ones(1 << 23)
    n = libc.mallinfo2().hblks - before
    del a
    return n

print(mapped_while_alive(), keep_freed_memory(), mapped_while_alive())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_blocks_come_from_the_heap_once_freed_memory_is_kept():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["1", "True", "0"]
