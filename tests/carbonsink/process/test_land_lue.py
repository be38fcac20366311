"""The light-use-efficiency land model: limits, signs, units and member differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsink.process import REFERENCE_MEMBERS, LueLandModel, MonthInputs
from carbonsink.process.land_lue import temperature_scalar, vpd_scalar, water_scalar

SECONDS_PER_YEAR = 365.25 * 86400


def climate(n=4, *, rsds=200.0, t2m=293.15, vpd=800.0, swvl1=0.3, lai=3.0):
    shape = (n, n)
    return {
        "rsds": np.full(shape, rsds),
        "t2m": np.full(shape, t2m),
        "stl1": np.full(shape, t2m),
        "vpd": np.full(shape, vpd),
        "swvl1": np.full(shape, swvl1),
        "lai_hv": np.full(shape, lai / 2),
        "lai_lv": np.full(shape, lai / 2),
    }


def clim12(**kw):
    one = climate(**kw)
    return {k: np.stack([v] * 12) for k, v in one.items()}


def run(model, fields, co2=410.0, land=1.0, clim=None):
    lf = np.full(fields["t2m"].shape, land)
    state = model.prepare(clim or clim12(), lf)
    inputs = MonthInputs(fields, fields, lf, co2, 6)
    return model.components(inputs, state), model.flux(inputs, state)


def test_no_light_no_photosynthesis():
    comps, _ = run(LueLandModel("t"), climate(rsds=0.0))
    assert np.all(comps["gpp"] == 0)
    assert np.all(comps["nbp"] < 0)  # respiration goes on in the dark


def test_plausible_magnitudes_and_units():
    comps, flux = run(LueLandModel("t"), climate())
    gpp_year = comps["gpp"][0, 0] * SECONDS_PER_YEAR  # kg C m-2 yr-1
    assert 0.5 < gpp_year < 4.0  # between a grassland and a tropical forest
    assert comps["ra"][0, 0] == pytest.approx(0.5 * comps["gpp"][0, 0])
    assert flux.dtype == np.float32


def test_steady_state_at_reference_co2_and_sink_above_it():
    model = LueLandModel("t", fire_scale=0.0)
    _, at_ref = run(model, climate(), co2=model.co2_ref)
    np.testing.assert_allclose(at_ref, 0.0, atol=1e-12)
    _, above = run(model, climate(), co2=model.co2_ref + 60)
    assert np.all(above > 0)  # positive = uptake by the land


def test_drought_and_heat_reduce_uptake_and_burn():
    model = LueLandModel("t")
    wet, f_wet = run(model, climate(swvl1=0.3))
    dry, f_dry = run(model, climate(swvl1=0.09, t2m=305.0, vpd=3000.0))
    assert np.all(dry["gpp"] < 0.2 * wet["gpp"])
    assert np.all(dry["fire"] > wet["fire"])
    assert np.all(f_dry < f_wet)


def test_q10_scales_heterotrophic_respiration():
    model = LueLandModel("t", q10=2.0)
    cold, _ = run(model, climate(t2m=283.15))
    warm, _ = run(model, climate(t2m=293.15))
    np.testing.assert_allclose(warm["rh"] / cold["rh"], 2.0, rtol=1e-12)


def test_flux_is_per_cell_area_and_nan_without_land():
    model = LueLandModel("t")
    comps, flux = run(model, climate(), land=0.25)
    np.testing.assert_allclose(flux, 0.25 * comps["nbp"], rtol=1e-6)
    _, none = run(model, climate(), land=0.0)
    assert np.isnan(none).all()


def test_members_differ_in_their_sensitivities():
    dry = REFERENCE_MEMBERS["ref-dry"].land
    warm = REFERENCE_MEMBERS["ref-warm"].land
    mod = REFERENCE_MEMBERS["ref-moderate"].land
    assert dry.drought_exponent > mod.drought_exponent > warm.drought_exponent
    assert warm.q10 > mod.q10 > dry.q10
    # Same mild drought: the drought-sensitive member loses more GPP.
    g = {m.name: run(m, climate(swvl1=0.15))[0]["gpp"][0, 0] /
         run(m, climate(swvl1=0.3))[0]["gpp"][0, 0] for m in (dry, mod)}  # fmt: skip
    assert g["lue-dry"] < g["lue-moderate"]


@settings(max_examples=60, deadline=None)
@given(t=st.floats(-60, 60), vpd=st.floats(0, 8000), theta=st.floats(0, 0.8))
def test_scalars_stay_in_unit_interval(t, vpd, theta):
    for v in (
        temperature_scalar(np.array([t]), -5, 24, 42),
        vpd_scalar(np.array([vpd]), 650, 3500),
        water_scalar(np.array([theta]), 0.08, 0.3),
    ):
        assert 0.0 <= float(v[0]) <= 1.0
