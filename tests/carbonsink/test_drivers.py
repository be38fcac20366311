import numpy as np
import pytest
import xarray as xr

from carbonsink.drivers import (
    DRIVERS,
    canonical_units,
    compute_driver,
    required_variables,
    resolve_drivers,
    saturation_vapour_pressure,
    to_expected_units,
)
from carbonsink.errors import ConfigError, SourceError


def test_saturation_vapour_pressure_known_values():
    # Saturation vapour pressure over water (Wexler 1976 / IAPWS), Pa, at -20, 0, 20, 30, 40 C;
    # Alduchov and Eskridge (1996) give the Magnus form's error as below 0.4 % there.
    t = xr.DataArray(np.array([-20.0, 0.0, 20.0, 30.0, 40.0]) + 273.15)
    reference = [125.6, 611.2, 2338.8, 4246.0, 7384.9]
    np.testing.assert_allclose(saturation_vapour_pressure(t).values, reference, rtol=4e-3)


def test_vpd_zero_when_saturated_and_positive_otherwise():
    t = xr.DataArray(np.array([290.0, 300.0]), attrs={"units": "K"})
    d = xr.DataArray(np.array([290.0, 290.0]), attrs={"units": "K"})
    v = compute_driver(DRIVERS["vpd"], {"2m_temperature": t, "2m_dewpoint_temperature": d}).values
    assert v[0] == 0 and 1500 < v[1] < 2000


HOURLY = {"total_precipitation": 1 / 3600, "surface_solar_radiation_downwards": 1 / 3600}


def test_accumulations_become_rates():
    tp = xr.DataArray(np.array([0.0036]), attrs={"units": "m"})  # 3.6 mm in an hour
    pr = compute_driver(DRIVERS["pr"], {"total_precipitation": tp}, HOURLY)
    assert pr.values[0] == pytest.approx(1e-3)  # kg m-2 s-1
    assert pr.attrs["units"] == "kg m-2 s-1" and pr.attrs["standard_name"] == "precipitation_flux"
    ssrd = xr.DataArray(np.array([3.6e6]), attrs={"units": "J m**-2"})
    rsds = compute_driver(DRIVERS["rsds"], {"surface_solar_radiation_downwards": ssrd}, HOURLY)
    assert rsds.values[0] == pytest.approx(1000.0)


def test_daily_sums_become_the_same_rates():
    """ERA5's monthly means store mean daily sums: 86.4 mm a day is 1 kg m-2 s-1 / 1000."""
    tp = xr.DataArray(np.array([0.0864]), attrs={"units": "m"})
    pr = compute_driver(
        DRIVERS["pr"], {"total_precipitation": tp}, {"total_precipitation": 1 / 86400}
    )
    assert pr.values[0] == pytest.approx(1e-3)


def test_an_accumulation_without_its_period_is_an_error():
    tp = xr.DataArray(np.array([0.0036]), attrs={"units": "m"})
    with pytest.raises(ValueError, match="total_precipitation is accumulated"):
        compute_driver(DRIVERS["pr"], {"total_precipitation": tp})


def test_unit_spellings_and_conversions():
    assert canonical_units("m s**-1") == canonical_units("m/s") == "m s-1"
    t = xr.DataArray(np.array([0.0]), attrs={"units": "degC"})
    assert to_expected_units(t, "K", variable="x").values[0] == pytest.approx(273.15)
    with pytest.raises(SourceError, match=r"units 'furlongs'.*expects 'K'"):
        to_expected_units(
            xr.DataArray([1.0], attrs={"units": "furlongs"}), "K", variable="2m_temperature"
        )
    with pytest.raises(SourceError, match="no units attribute"):
        to_expected_units(xr.DataArray([1.0]), "K", variable="x")


def test_resolve_and_required():
    ds = resolve_drivers(["vpd", "t2m"])
    assert required_variables(ds) == ["2m_temperature", "2m_dewpoint_temperature"]
    with pytest.raises(ConfigError, match="choose from"):
        resolve_drivers(["nope"])


def test_every_driver_has_cf_metadata():
    for d in DRIVERS.values():
        a = d.attrs()
        assert a["units"] and a["long_name"] and a["cell_methods"] == "time: mean"
