"""NOAA growth rates and GATM."""

import pandas as pd
import pytest

from carbonsink.errors import ConfigError
from carbonsink.reference.noaa import (
    GTC_PER_PPM,
    annual_growth,
    gatm_annual,
    parse_growth,
    window_growth,
)


def test_published_growth_rates_parse_with_their_quirks():
    gl, mlo = annual_growth("gl"), annual_growth("mlo")
    assert gl.index[0] == 1959 and mlo.index[0] == 1959  # mlo has a blank second line
    assert gl.at[2024, "growth"] == pytest.approx(3.75)
    assert list(gl.index) == list(range(1959, gl.index[-1] + 1))


def test_monthly_windows_reproduce_noaa_annual_growth():
    """NOAA's own method on the monthly trend gives its published Jan-Dec growth."""
    gl = annual_growth("gl")
    for year in range(1980, 2026):
        g = window_growth(pd.Period(f"{year}-01", "M"), pd.Period(f"{year}-12", "M"))
        assert g == pytest.approx(gl.at[year, "growth"], abs=0.011), year


def test_gatm_in_gtc_and_errors():
    g = gatm_annual([2020, 2021])
    assert g.at[2021, "GATM"] == pytest.approx(annual_growth().at[2021, "growth"] * GTC_PER_PPM)
    with pytest.raises(ConfigError, match="12-month window"):
        gatm_annual([2040])
    with pytest.raises(ConfigError, match="lacks"):
        window_growth(pd.Period("2040-01", "M"), pd.Period("2040-12", "M"))
    with pytest.raises(ConfigError, match="unknown NOAA site"):
        annual_growth("spo")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Year,Increase,Uncertainty\n1959,0.9,0.1\n", "NOAA changed the format"),
        ("Year,Annual Increase,Uncertainty\n1959,0.9\n", "line 2"),
        ("", "NOAA changed the format"),
    ],
)
def test_changed_noaa_files_are_refused(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_growth(text, "co2-gr-gl.csv")
