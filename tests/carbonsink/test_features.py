"""Monthly drivers from hourly ERA5: time aggregation, month boundaries, regridding."""

import numpy as np
import pandas as pd
import pytest

from carbonsink.drivers import DRIVERS, compute_driver, resolve_drivers
from carbonsink.errors import SourceError
from carbonsink.features import (
    anomaly_of,
    check_driver_field,
    climatology_of,
    month_ranges,
    monthly_means,
    plan_months,
    regrid_to_model,
)
from carbonsink.grid import ModelGrid
from carbonsink.regrid import ConservativeRegridder
from carbonsink.sources import ArcoEra5Source
from carbonsink.timeutil import MonthWindow

HOURLY_DRIVERS = ["t2m", "pr", "rsds", "sst", "vpd", "wind_speed", "wind_speed_squared"]


@pytest.fixture(scope="module")
def june(hourly_store):
    src = ArcoEra5Source(hourly_store)
    drivers = resolve_drivers(HOURLY_DRIVERS)
    from carbonsink.drivers import required_variables

    sel = src.select(required_variables(drivers), MonthWindow.parse("2015-06", "2015-06"))
    return src, sel, drivers


def test_monthly_means_equal_the_hourly_definitions(june):
    src, sel, drivers = june
    got = monthly_means(sel, drivers, part_bytes=2**20).compute(scheduler="threads")
    ds = src.dataset
    for d in drivers:
        # Reference straight from the padded store, with each stamp's interval decided by hand.
        if d.name in ("pr", "rsds"):
            times = slice("2015-06-01T01", "2015-07-01T00")  # accumulations end at the stamp
        else:
            times = slice("2015-06-01T00", "2015-06-30T23")
        inputs = {v: ds[v].sel(time=times) for v in d.inputs}
        ref = compute_driver(d, inputs, sel.per_second).astype("f8")
        ref = ref.mean("time", skipna=d.nan_allowed)
        np.testing.assert_allclose(
            got[d.name].isel(time=0).values,
            ref.values,
            rtol=3e-6,
            atol=0.02 if d.name == "vpd" else 1e-9,
            equal_nan=True,
        )
    assert got["time"].values[0] == np.datetime64("2015-06-01")


def test_derived_drivers_are_means_of_hourly_values(june):
    _, sel, drivers = june
    got = monthly_means(sel, drivers).compute(scheduler="sync")
    u = sel.variables["10m_u_component_of_wind"].values
    v = sel.variables["10m_v_component_of_wind"].values
    of_means = np.hypot(u.mean(0), v.mean(0))
    mean_speed = got["wind_speed"].isel(time=0).values
    assert (mean_speed >= of_means - 1e-4).all() and (mean_speed - of_means).mean() > 0.5
    assert (got["wind_speed_squared"].isel(time=0).values >= mean_speed**2 - 1e-3).all()


def test_parts_do_not_change_the_result(june):
    _, sel, drivers = june
    one = monthly_means(sel, drivers).compute(scheduler="sync")
    many = monthly_means(sel, drivers, part_bytes=2**16).compute(scheduler="sync")
    assert len(plan_months(sel, drivers, part_bytes=2**16)[0].parts) > 5
    for d in HOURLY_DRIVERS:
        np.testing.assert_allclose(many[d].values, one[d].values, rtol=1e-6, equal_nan=True)


def test_month_ranges_follow_interval_midpoints(june):
    _, sel, _ = june
    r = month_ranges(sel)[pd.Period("2015-06", "M")]
    assert r["2m_temperature"][1] - r["2m_temperature"][0] == 720
    assert r["total_precipitation"][1] - r["total_precipitation"][0] == 720


def test_regrid_to_model_keeps_metadata(june):
    _, sel, drivers = june
    m = monthly_means(sel, drivers)
    r = ConservativeRegridder.from_points(sel.latitude, sel.longitude, ModelGrid(10.0))
    out = regrid_to_model(m, r).compute(scheduler="sync")
    assert out["t2m"].dims == ("time", "lat", "lon") and out["t2m"].attrs["units"] == "K"
    assert out["pr"].attrs["standard_name"] == "precipitation_flux"
    assert 0 < float(out["pr"].mean()) < 1e-4  # kg m-2 s-1 (~3 mm/day)


def test_land_drivers_need_a_mask(june):
    _, sel, _ = june
    sel.land_sea_mask, saved = None, sel.land_sea_mask
    try:
        with pytest.raises(SourceError, match="no land_sea_mask"):
            monthly_means(sel, [DRIVERS["swvl1"]])
    finally:
        sel.land_sea_mask = saved


def test_climatology_and_anomaly_primitives():
    stack = np.array([[[1.0, np.nan]], [[3.0, np.nan]]], np.float32)
    np.testing.assert_array_equal(climatology_of(stack, nan_allowed=True), [[2.0, np.nan]])
    assert np.isnan(climatology_of(stack, nan_allowed=False)[0, 1])
    np.testing.assert_array_equal(
        anomaly_of(np.array([[4.0, 1.0]]), np.array([[2.0, np.nan]])), [[2.0, np.nan]]
    )


@pytest.mark.parametrize(
    "name,values,match",
    [
        ("t2m", np.array([[280.0, np.nan]]), "missing values over 50.0%"),
        ("t2m", np.array([[5.0, 6.0]]), "outside the plausible 170..340"),
        ("sst", np.array([[np.nan, np.nan]]), "all NaN"),
    ],
)
def test_implausible_fields_are_refused(name, values, match):
    with pytest.raises(SourceError, match=match):
        check_driver_field(DRIVERS[name], "2015-06", values)
    check_driver_field(
        DRIVERS["sst"], "2015-06", np.array([[290.0, np.nan]])
    )  # NaN is fine on land
