"""The bulk-flux ocean model: published constants, sign, ice and wind limits."""

import numpy as np
import pytest

from carbonsink.process import REFERENCE_MEMBERS, BulkOceanModel, MonthInputs
from carbonsink.process.ocean_bulk import (
    schmidt_number_co2,
    solubility_co2,
    transfer_velocity,
    water_vapour_pressure,
)


def test_published_values():
    # Wanninkhof (2014) Table 1: Sc(CO2, S=35) at 20 C is 668 (the reference 660 is ~20.5 C).
    assert schmidt_number_co2(np.array(20.0)) == pytest.approx(668.0, abs=1.0)
    # Weiss (1974): K0 at 25 C and S=35 is 0.02839 mol kg-1 atm-1 (ln K0 = -3.5617).
    assert solubility_co2(np.array(298.15), 35.0) == pytest.approx(0.02839, rel=2e-3)
    # Weiss & Price (1980): water vapour pressure at 25 C, S=35 is ~0.0306 atm.
    assert water_vapour_pressure(np.array(298.15), 35.0) == pytest.approx(0.0306, rel=1e-2)
    # Wanninkhof (2014): k660 = 0.251 U^2 cm/h -> 25.1 cm/h at U = 10 m/s and Sc = 660.
    k = transfer_velocity(np.array(100.0), np.array(10.0), np.array(660.0), "w14")
    assert k * 100 * 3600 == pytest.approx(25.1)


def month(sst=290.0, ice=0.0, u2=50.0, co2=410.0, land=0.0, sst_clim=None, n=3):
    shape = (n, n)
    f = {
        "sst": np.full(shape, sst),
        "siconc": np.full(shape, ice),
        "msl": np.full(shape, 101325.0),
        "wind_speed": np.full(shape, np.sqrt(u2)),
        "wind_speed_squared": np.full(shape, u2),
    }
    c = dict(f)
    c["sst"] = np.full(shape, sst if sst_clim is None else sst_clim)
    return MonthInputs(f, c, np.full(shape, land), co2, 1)


def test_sign_follows_the_partial_pressure_difference():
    model = BulkOceanModel("t", natural_slope=0.0)
    m = month(sst=model.natural_t)
    flux = model.flux(m, {})
    assert np.all(model.delta_pco2(m) > 0) and np.all(flux > 0)  # undersaturated: uptake
    warm = month(sst=model.natural_t + 5, sst_clim=model.natural_t)
    assert np.all(model.flux(warm, {}) < flux)  # warming raises pCO2_sea (Takahashi)


def test_ice_and_calm_block_exchange_and_land_is_nan():
    model = BulkOceanModel("t")
    assert np.all(model.flux(month(ice=1.0), {}) == 0)
    assert np.all(model.flux(month(u2=0.0), {}) == 0)
    half = model.flux(month(land=0.5), {})
    np.testing.assert_allclose(half, 0.5 * model.flux(month(), {}), rtol=1e-6)
    assert np.isnan(model.flux(month(land=1.0), {})).all()


def test_flux_magnitude_is_oceanic():
    # ~10 uatm undersaturation at U10 = 7 m/s: of order 1 mol m-2 yr-1 (Takahashi 2009).
    model = BulkOceanModel("t", natural_slope=0.0, gamma=10.0 / 130.0)
    flux = model.flux(month(sst=model.natural_t, co2=410.0), {})[0, 0]
    mol_per_year = flux / 12.011e-3 * 365.25 * 86400
    assert 0.3 < mol_per_year < 3.0


def test_members_use_different_gas_transfer():
    schemes = {m.ocean.transfer for m in REFERENCE_MEMBERS.values()}
    assert schemes == {"w14", "n00", "h06"}
    with pytest.raises(ValueError, match="unknown gas transfer"):
        transfer_velocity(np.ones(1), np.ones(1), np.ones(1), "x")
