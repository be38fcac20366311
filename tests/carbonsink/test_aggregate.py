"""The fused numba aggregation equals the xarray definitions of the drivers."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsink.aggregate import MonthAccumulator, accumulate
from carbonsink.drivers import DRIVERS, compute_driver, required_variables
from tests.strategies import seeds

UNITS = {
    "2m_temperature": "K",
    "2m_dewpoint_temperature": "K",
    "total_precipitation": "m",
    "10m_u_component_of_wind": "m s**-1",
    "10m_v_component_of_wind": "m s**-1",
    "sea_surface_temperature": "K",
}


def _inputs(rng, nt, shape, nan_sst=True):
    x = {
        "2m_temperature": rng.uniform(230, 310, (nt, *shape)),
        "2m_dewpoint_temperature": None,
        "total_precipitation": rng.exponential(1e-4, (nt, *shape)),
        "10m_u_component_of_wind": rng.normal(0, 6, (nt, *shape)),
        "10m_v_component_of_wind": rng.normal(0, 6, (nt, *shape)),
        "sea_surface_temperature": rng.uniform(271.4, 303, (nt, *shape)),
    }
    x["2m_dewpoint_temperature"] = x["2m_temperature"] - rng.uniform(0, 15, (nt, *shape))
    if nan_sst:
        x["sea_surface_temperature"][:, : shape[0] // 2] = np.nan  # "land"
    return {k: v.astype(np.float32) for k, v in x.items()}


#: ERA5's hourly sums.
PER_SECOND = {"total_precipitation": 1 / 3600}

DRIVER_SET = [
    DRIVERS[n]
    for n in ("t2m", "d2m", "pr", "u10", "sst", "vpd", "wind_speed", "wind_speed_squared")
]


@settings(max_examples=15, deadline=None)
@given(seed=seeds(), nt=st.integers(1, 30), block=st.integers(1, 30))
def test_kernels_match_xarray_definitions(seed, nt, block):
    rng = np.random.default_rng(seed)
    shape = (5, 7)
    inputs = _inputs(rng, nt, shape)
    step = shape[0] * shape[1] * 4

    def read(name, a, b):
        return inputs[name][a:b], UNITS[name]

    acc = accumulate(
        read, {v: (0, nt) for v in inputs}, DRIVER_SET, shape, per_second=PER_SECOND,
        max_block_bytes=block * step,
    )  # fmt: skip
    means = acc.means()
    for i, d in enumerate(DRIVER_SET):
        das = {
            v: xr.DataArray(inputs[v], dims=("time", "y", "x"), attrs={"units": UNITS[v]})
            for v in d.inputs
        }
        ref = compute_driver(d, das, PER_SECOND).astype("f8").mean("time", skipna=d.nan_allowed)
        ref = ref.values
        # VPD is computed in float32: es(T) - es(Td) cancels to ~1e-6 of es (~0.01 Pa).
        atol = 1e-2 if d.kernel == "vpd" else 1e-9
        np.testing.assert_allclose(means[i], ref, rtol=2e-5, atol=atol, equal_nan=True)


def test_parts_merge_to_the_whole():
    rng = np.random.default_rng(3)
    inputs = _inputs(rng, 20, (4, 6))

    def read(name, a, b):
        return inputs[name][a:b], UNITS[name]

    def part(a: int, b: int):
        return accumulate(read, {v: (a, b) for v in inputs}, DRIVER_SET, (4, 6),
                          per_second=PER_SECOND)  # fmt: skip

    whole = part(0, 20).means()
    p1, p2 = part(0, 7), part(7, 20)
    np.testing.assert_allclose(p1.merge(p2).means(), whole, rtol=1e-12, equal_nan=True)


def test_unit_conversion_inside_the_kernels():
    t_c = np.full((3, 2, 2), 20.0, np.float32)
    acc = MonthAccumulator([DRIVERS["t2m"]], (2, 2))
    acc.add({"2m_temperature": t_c}, {"2m_temperature": "degC"})
    assert acc.means()[0] == pytest.approx(293.15)


def test_nan_in_a_field_defined_everywhere_propagates():
    t = np.full((4, 2, 2), 280.0, np.float32)
    t[2, 0, 0] = np.nan
    acc = MonthAccumulator([DRIVERS["t2m"], DRIVERS["vpd"]], (2, 2))
    acc.add(
        {"2m_temperature": t, "2m_dewpoint_temperature": t - 2},
        {"2m_temperature": "K", "2m_dewpoint_temperature": "K"},
    )
    m = acc.means()
    assert np.isnan(m[0, 0, 0]) and np.isnan(m[1, 0, 0]) and np.isfinite(m[:, 1, 1]).all()


def test_land_mask_applies_after_the_mean():
    sw = np.full((2, 2, 2), 0.3, np.float32)
    acc = MonthAccumulator([DRIVERS["swvl1"]], (2, 2))
    acc.add({"volumetric_soil_water_layer_1": sw}, {"volumetric_soil_water_layer_1": "m3 m-3"})
    m = acc.means(np.array([[True, False], [False, True]]))
    assert m[0, 0, 0] == pytest.approx(0.3) and np.isnan(m[0, 0, 1])


def test_required_variables_cover_driver_set():
    assert set(required_variables(DRIVER_SET)) == set(UNITS)
