"""The heap setting: large blocks are reused instead of mapped afresh."""

import subprocess
import sys
from pathlib import Path

import pytest

# In a fresh process (this one already runs with the setting): blocks glibc maps on their
# own for a live 64 MiB array, before and after keep_freed_memory.
PROBE = """
from carbonsink.memory import keep_freed_memory
from tests.helpers import blocks_mapped_for_a_large_array as mapped

print(mapped(), keep_freed_memory(), mapped())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_blocks_come_from_the_heap_once_freed_memory_is_kept():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()  # fmt: skip
    assert out == ["1", "True", "0"]
