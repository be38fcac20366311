"""Tile mapping with fixed forward passes: a tile's bytes never depend on its batch-mates."""

import numpy as np
import pytest

from carbonsink.emulator.mapper import TileMapper
from carbonsink.emulator.tiles import TileKey
from carbonsink.lake.lake import Lake


@pytest.fixture(scope="module")
def mapper(trained, lake):
    return TileMapper.open(Lake(str(lake)), "mean-teacher")


def keys_of(mapper, month: str) -> list[TileKey]:
    return [TileKey(m, month, i) for m in mapper.members for i in range(mapper.tiles_per_month)]


@pytest.mark.parametrize("pass_size", [1, 4])
def test_fixed_passes_give_the_same_bytes_in_any_batch(mapper, pass_size):
    keys = keys_of(mapper, "2016-03")[:12]
    mapper.pass_size = pass_size
    try:
        whole = mapper.predict(keys)
        rng = np.random.default_rng(0)
        for _ in range(3):
            order = rng.permutation(len(keys))
            cut = int(rng.integers(1, len(keys)))
            parts = [order[:cut], order[cut:]]
            got = {}
            for part in parts:
                blocks = mapper.predict([keys[n] for n in part])
                got.update({int(n): b for n, b in zip(part, blocks, strict=True)})
            for n, block in enumerate(whole):
                assert got[n].tobytes() == block.tobytes()
    finally:
        mapper.pass_size = None
    # and the same numbers as one pass over the whole batch, within float rounding
    free = mapper.predict(keys)
    for a, b in zip(whole, free, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-14, equal_nan=True)
