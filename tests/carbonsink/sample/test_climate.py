"""The synthetic climate has the structure the product and its tests rely on."""

import numpy as np
import pandas as pd
import pytest

from carbonsink.grid import point_grid_bounds
from carbonsink.landmask import land_fraction
from carbonsink.sample.climate import SampleClimate, enso_index


@pytest.fixture(scope="module")
def climate():
    lat = np.linspace(90, -90, 91)
    lon = np.arange(180) * 2.0
    f = land_fraction(point_grid_bounds(lat, clip=(-90, 90)), point_grid_bounds(lon))
    return SampleClimate(lat, lon, f, seed=0)


def _idx(c, lat, lon):
    return int(np.argmin(np.abs(c.lat - lat))), int(np.argmin(np.abs(c.lon - lon % 360)))


def _monthly(c, when, var):
    return c.fields(pd.Timestamp(when), "monthly", (var,))[var]


def test_plausible_ranges(climate):
    f = climate.fields(pd.Timestamp("2016-01-10T06:00"), "instant")
    assert f["2m_temperature"].min() > 190 and f["2m_temperature"].max() < 325
    assert (f["2m_dewpoint_temperature"] <= f["2m_temperature"]).all()
    assert (f["total_precipitation"] >= 0).all() and (
        f["surface_solar_radiation_downwards"] >= 0
    ).all()
    assert np.nanmin(f["sea_ice_cover"]) >= 0 and np.nanmax(f["sea_ice_cover"]) <= 1
    land = climate.is_land
    assert np.isnan(f["sea_surface_temperature"][land]).all()
    assert np.isfinite(f["sea_surface_temperature"][~land]).all()
    assert (f["volumetric_soil_water_layer_1"][~land] == 0).all()


def test_seasons_and_land_ocean_contrast(climate):
    siberia, pacific = _idx(climate, 62, 110), _idx(climate, 46, 180)
    jul = _monthly(climate, "2017-07-01", "2m_temperature")
    jan = _monthly(climate, "2017-01-01", "2m_temperature")
    amp_land = jul[siberia] - jan[siberia]
    amp_ocean = jul[pacific] - jan[pacific]
    assert amp_land > 20 and amp_ocean < 8 and amp_land > 3 * amp_ocean
    south = _idx(climate, -40, 140)
    assert jul[south] < jan[south]  # southern winter in July


def test_diurnal_cycle_and_night(climate):
    sahara = _idx(climate, 22, 14)  # local solar time ~ UTC + 1 h
    day = climate.fields(pd.Timestamp("2017-07-10T14:00"), "instant")
    night = climate.fields(pd.Timestamp("2017-07-10T02:00"), "instant")
    assert day["2m_temperature"][sahara] - night["2m_temperature"][sahara] > 5
    assert night["surface_solar_radiation_downwards"][sahara] == 0
    assert day["surface_solar_radiation_downwards"][sahara] > 2e6  # J m-2 in the hour


def test_enso_warm_phases():
    n = enso_index(pd.date_range("2010-01-01", "2025-12-01", freq="MS").values, seed=0)
    s = pd.Series(n, index=pd.date_range("2010-01-01", "2025-12-01", freq="MS"))
    assert s["2015-12"].iloc[0] > 2 and s["2023-12"].iloc[0] > 1.5
    assert s["2010-12"].iloc[0] < -1 and s["2021-12"].iloc[0] < -0.5
    assert s["2015-12"].iloc[0] > s["2013-12"].iloc[0] + 1.5


def test_enso_reaches_the_east_pacific_and_the_amazon(climate):
    nino = _idx(climate, 0, -120)
    warm = _monthly(climate, "2015-12-01", "sea_surface_temperature")[nino]
    neutral = _monthly(climate, "2013-12-01", "sea_surface_temperature")[nino]
    assert warm - neutral > 3
    amazon = _idx(climate, -5, -62)
    p_warm = _monthly(climate, "2015-12-01", "total_precipitation")[amazon]
    p_neutral = _monthly(climate, "2013-12-01", "total_precipitation")[amazon]
    assert p_warm < 0.5 * p_neutral


def test_named_heat_wave_and_drought(climate):
    germany = _idx(climate, 52, 12)
    t18 = _monthly(climate, "2018-07-01", "2m_temperature")[germany]
    t17 = _monthly(climate, "2017-07-01", "2m_temperature")[germany]
    assert t18 - t17 > 2
    sm18 = _monthly(climate, "2018-07-01", "volumetric_soil_water_layer_1")[germany]
    sm17 = _monthly(climate, "2017-07-01", "volumetric_soil_water_layer_1")[germany]
    assert sm18 < sm17


def test_seed_changes_weather_not_climatology():
    lat = np.linspace(90, -90, 37)
    lon = np.arange(72) * 5.0
    f = land_fraction(point_grid_bounds(lat, clip=(-90, 90)), point_grid_bounds(lon))
    a = SampleClimate(lat, lon, f, seed=1).fields(
        pd.Timestamp("2016-03-01"), "instant", ("2m_temperature",)
    )
    b = SampleClimate(lat, lon, f, seed=2).fields(
        pd.Timestamp("2016-03-01"), "instant", ("2m_temperature",)
    )
    d = a["2m_temperature"] - b["2m_temperature"]
    assert np.abs(d).max() > 0.5 and abs(float(d.mean())) < 1.0
