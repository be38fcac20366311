"""Helpers that tests share: sample stores, free ports, what a lake holds."""

import asyncio
import hashlib
import socket
from pathlib import Path
from typing import Any

from carbonsink.lake.lake import Lake
from carbonsink.sample.store import SampleSpec, create_template, sample_land_fraction, write_block
from carbonsink.storage import StorageOptions
from carbonsink.timeutil import MonthWindow


def make_sample(
    path: Path | str, start: str, end: str, *, resolution: float, step: str, seed: int = 0, **kw
) -> str:
    """Write a sample store in-process (no cluster) and return its URL."""
    spec = SampleSpec(
        MonthWindow.parse(start, end), resolution=resolution, step=step, seed=seed, **kw
    )
    url = str(path)
    create_template(url, spec, overwrite=True)
    land = sample_land_fraction(spec)
    for block in spec.block_slices():
        write_block(url, spec, block, land)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chunk_hashes(root: Any, store: str, storage: StorageOptions | None = None) -> dict[str, str]:
    """SHA-256 of every chunk of a published store (metadata, which names runs, left out)."""
    import zarr
    from zarr.core.buffer import default_buffer_prototype

    repo = Lake(str(root), storage).open_repo(store)
    assert repo is not None, f"no {store} store in {root}"
    s = repo.readonly_session("main").store

    async def digest(key: str) -> tuple[str, str]:
        buf = await s.get(key, prototype=default_buffer_prototype())
        return key, hashlib.sha256(buf.to_bytes()).hexdigest()

    async def collect() -> dict[str, str]:
        keys = [k async for k in s.list() if "/c/" in k or k.startswith("c/")]
        # Concurrent reads: one at a time, the two stores of a kill -9 test took 19 s.
        return dict(await asyncio.gather(*(digest(k) for k in keys)))

    return dict(zarr.core.sync.sync(collect()))


def lake_state(root: Any) -> dict:
    """Every store's branches, tags and tips, and every file outside the stores.

    Inside a store only what readers can reach counts: a run that failed may leave chunk
    objects it wrote before it failed, which no snapshot references (Icechunk's garbage
    collection reclaims them).
    """
    from carbonsink.lake.lake import STORES

    root = Path(root)
    files = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in STORES
    )
    stores = {}
    lake = Lake(str(root))
    for name in STORES:
        repo = lake.open_repo(name)
        if repo is not None:
            stores[name] = (
                sorted(repo.list_branches()),
                sorted(repo.list_tags()),
                repo.lookup_branch("main"),
            )
    return {"files": files, "stores": stores}


def blocks_mapped_for_a_large_array() -> int:
    """Blocks glibc maps on their own (mallinfo2's hblks) for a live 64 MiB array."""
    import ctypes

    import numpy as np

    class Info(ctypes.Structure):
        _fields_ = [
            (n, ctypes.c_size_t)
            for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                      "uordblks", "fordblks", "keepcost")
        ]  # fmt: skip

    mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    mallinfo2.restype = Info
    before = mallinfo2().hblks
    a = np.ones(1 << 23)
    n = int(mallinfo2().hblks - before)
    del a
    return n
