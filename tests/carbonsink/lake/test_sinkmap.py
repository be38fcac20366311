"""The sink map's library: which months to map, the ensemble, its checks, its reader."""

import numpy as np
import pandas as pd
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st

from carbonsink.errors import LakeError
from carbonsink.grid import ModelGrid
from carbonsink.lake.features_store import DataOrigin
from carbonsink.lake.flux_store import (
    ENSEMBLE_MEDIAN,
    ENSEMBLE_SPREAD,
    FLUXES,
    FluxLayout,
    member_months,
    read_flux,
)
from carbonsink.lake.lake import Lake
from carbonsink.lake.sinkmap import (
    SinkMap,
    check_member_fluxes,
    ensemble_and_check,
    ensemble_spread,
    months_to_map,
    prepare_store,
    sinkmap_groups,
)
from tests.strategies import month_windows


@given(
    month_windows(max_months=36),
    st.sets(st.integers(0, 40), max_size=40),
    st.sets(st.integers(0, 40), max_size=40),
)
def test_months_to_map_are_the_unmapped_and_the_reingested(window, mapped_at, ingested_at):
    first = window.start
    mapped = {first + k for k in mapped_at}
    ingested = {first + k for k in ingested_at}
    todo = months_to_map(window.months, mapped, ingested)
    assert todo == sorted(todo)
    assert set(todo) <= set(window.months)
    for m in window.months:
        # A month is owed a map exactly when it has none or its drivers were just ingested.
        assert (m in todo) == (m not in mapped or m in ingested)


def test_a_gap_over_the_domain_or_an_implausible_flux_is_refused():
    land = np.array([[True, False]])
    ocean = ~land
    good = np.array([[[1e-9, np.nan]], [[np.nan, 2e-9]]])
    check_member_fluxes("m", pd.Period("2020-01", "M"), good, (land, ocean))
    gap = good.copy()
    gap[0, 0, 0] = np.nan
    with pytest.raises(LakeError, match="m land_flux of 2020-01 has 1 missing cells"):
        check_member_fluxes("m", pd.Period("2020-01", "M"), gap, (land, ocean))
    big = good.copy()
    big[1, 0, 1] = 1.0
    with pytest.raises(LakeError, match=r"ocean_flux of 2020-01 reaches 1\.00e"):
        check_member_fluxes("m", pd.Period("2020-01", "M"), big, (land, ocean))


def test_the_spread_is_the_sample_deviation_and_zero_for_one_member():
    a = np.array([1.0, 2.0, np.nan])
    b = np.array([3.0, 2.0, np.nan])
    median = np.array([2.0, 2.0, np.nan])
    np.testing.assert_array_equal(ensemble_spread([a, b], median), [np.sqrt(2.0), 0.0, np.nan])
    np.testing.assert_array_equal(ensemble_spread([a], a), [0.0, 0.0, np.nan])


def test_ensemble_and_annual_mean_of_a_written_map(tmp_path):
    grid = ModelGrid(30.0)
    layout = FluxLayout(grid, grid.tiling(grid.nlat, grid.nlon, tiles_per_chunk=1))
    months = list(pd.period_range("2020-01", "2020-12", freq="M"))
    repo = Lake(str(tmp_path / "lake")).create_repo("sinkmap")
    session = repo.writable_session("main")
    prepare_store(session, layout, sinkmap_groups(["a", "b", "c"], "v", "run"))
    land = np.zeros(grid.shape)
    land[: grid.nlat // 2] = 1.0
    rng = np.random.default_rng(0)
    values = {m: rng.normal(0, 1e-9, (len(FLUXES), *grid.shape)) for m in "abc"}
    for m, v in values.items():
        for month in months:
            for k, f in enumerate(FLUXES):
                field = v[k].copy()
                field[(land == 0) if f == "land_flux" else (land == 1)] = np.nan
                array = zarr.open_array(session.store, path=f"{m}/{f}", mode="r+")
                array[layout.month_index(month)] = field
    seen: list[int] = []
    ensemble_and_check(session, layout, ["a", "b", "c"], months, land, lambda d, t: seen.append(d))
    assert seen == list(range(1, 13))
    index = layout.month_index(months[0])
    for f in FLUXES:
        stack = np.stack([read_flux(session.store, m, f, index) for m in "abc"])
        med = read_flux(session.store, ENSEMBLE_MEDIAN, f, index)
        np.testing.assert_allclose(med, np.median(stack, axis=0).astype(np.float32))
        spread = read_flux(session.store, ENSEMBLE_SPREAD, f, index)
        domain = np.isfinite(med)
        np.testing.assert_allclose(spread[domain], np.std(stack, axis=0, ddof=1)[domain], rtol=1e-5)
    assert list(member_months(session.store, layout, ENSEMBLE_MEDIAN)) == months
    sinkmap = SinkMap(
        session.store, layout, np.ones(grid.shape), ["a", "b", "c", ENSEMBLE_MEDIAN], months,
        "snapshot", "v", DataOrigin(synthetic=True, products=()),
    )  # fmt: skip
    # Every month holds the same field, so the day-weighted annual mean is that field.
    both = sum(np.nan_to_num(read_flux(session.store, "a", f, index).astype(float)) for f in FLUXES)
    np.testing.assert_allclose(sinkmap.annual_mean(2020, "a"), both, rtol=1e-12)
    assert sinkmap.member_names == ["a", "b", "c"]
    assert sinkmap.months_of("a") == months
