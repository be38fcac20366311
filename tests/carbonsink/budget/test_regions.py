"""Regions partition the globe, so regional sums add up to the global sink."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from carbonsink.budget.regions import (
    BANDS,
    BASINS,
    CONTINENTS,
    HOTSPOTS,
    RegionIndex,
    region,
    region_masks,
)
from carbonsink.grid import ModelGrid

GRID = ModelGrid(2.0)
MASKS = region_masks(GRID)


@pytest.mark.parametrize("group", [BANDS, CONTINENTS, BASINS])
def test_each_group_partitions_the_globe(group):
    total = sum(MASKS[r.name] for r in group)
    np.testing.assert_array_equal(total, 1.0)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, GRID.shape, elements=st.floats(-1e-8, 1e-8)))
def test_regional_sums_add_up_to_the_global_sum(flux):
    area = GRID.cell_area
    whole = float((flux * area).sum())
    for group in (BANDS, CONTINENTS, BASINS):
        parts = sum(float((flux * area * MASKS[r.name]).sum()) for r in group)
        assert parts == pytest.approx(whole, rel=1e-9, abs=1e-9 * np.abs(flux * area).sum())


@settings(max_examples=20, deadline=None)
@given(arrays(np.float64, GRID.shape, elements=st.floats(-1e3, 1e3) | st.just(np.nan)))
def test_the_fast_index_sums_like_the_masks(values):
    got = RegionIndex(GRID).sums(values)
    clean = np.nan_to_num(values)
    assert set(got) == set(MASKS)
    for name, mask in MASKS.items():
        assert got[name] == pytest.approx(float((clean * mask).sum()), rel=1e-9, abs=1e-6)


def test_known_places_fall_in_the_right_regions():
    def at(lat, lon):
        i = int(np.argmin(np.abs(GRID.lat - lat)))
        j = int(np.argmin(np.abs(GRID.lon - lon)))
        return {n for n, m in MASKS.items() if m[i, j]}

    assert {"South America", "Amazon", "20S-20N"} <= at(-3, -60)  # Manaus
    assert {"Europe", "north of 20N"} <= at(48, 2)  # Paris
    assert "Africa" in at(0, 20) and "Congo basin" in at(0, 20)
    assert "Russia" in at(62, 100) and "Boreal Siberia" in at(62, 100)
    assert "Australasia" in at(-25, 134)
    assert "Southern Ocean" in at(-55, 0) and "Atlantic Ocean" in at(30, -40)
    assert "Pacific Ocean" in at(0, -140) and "Equatorial Pacific" in at(0, -140)
    assert "Indian Ocean" in at(-10, 80)
    assert region("Amazon").sinks == ("SLAND",)
    assert len(HOTSPOTS) >= 4
