"""NOAA growth rates and GATM."""

import pandas as pd
import pytest

from carbonsink.errors import ConfigError
from carbonsink.reference.noaa import (
    GTC_PER_PPM,
    annual_growth,
    gatm_annual,
    monthly_trend,
    parse_growth,
    parse_monthly,
    read_monthly,
    window_gatm,
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
    with pytest.raises(ConfigError, match="12-month budget"):
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


NOAA_NATIVE = """\
# --------------------------------------------------------------------
# USE OF NOAA GML DATA
# --------------------------------------------------------------------
year,month,decimal,average,average_unc,trend,trend_unc
2024,11,2024.875,422.77,0.10,423.11,0.06
2024,12,2024.958,423.95,0.10,423.36,0.06
"""


def test_noaa_native_and_packaged_monthly_files_parse_alike():
    native = parse_monthly(NOAA_NATIVE, "co2_mm_gl.csv")
    assert list(native.index.astype(str)) == ["2024-11", "2024-12"]
    assert native.iloc[1] == pytest.approx(423.36)
    packaged = parse_monthly(
        "Date,Decimal Date,Average,Trend\n2024-12,2024.958,423.95,0.10,423.36,0.06\n", "gl"
    )
    assert packaged.iloc[0] == pytest.approx(423.36)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("yr,mo,decimal,average,average_unc,trend,trend_unc\n2024,1,1,1,1,1,1\n", "header"),
        ("# only comments\n", "header"),
        (NOAA_NATIVE.replace("423.36", "n/a"), "row 3"),
        ("year,month,decimal,average,average_unc,trend,trend_unc\n", "no rows"),
    ],
)
def test_changed_noaa_monthly_files_are_refused(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_monthly(text, "co2_mm_gl.csv")


def test_a_missing_monthly_file_names_the_download(tmp_path):
    with pytest.raises(ConfigError, match=r"gml\.noaa\.gov"):
        read_monthly(str(tmp_path / "co2_mm_gl.csv"))


def test_twelve_month_gatm_matches_the_annual_one_and_falls_back_to_mauna_loa():
    p = pd.Period
    g = window_gatm(p("2024-01", "M"), p("2024-12", "M"))
    assert g.gatm == pytest.approx(gatm_annual([2024]).at[2024, "GATM"], abs=0.011 * GTC_PER_PPM)
    assert "gl" in g.source
    gl_end = monthly_trend("gl").index[-1]
    mlo_end = monthly_trend("mlo").index[-1]
    assert mlo_end > gl_end  # Mauna Loa is published sooner
    late = window_gatm(gl_end - 11, gl_end)  # gl lacks the month after the window
    assert "Mauna Loa" in late.source and late.sigma > g.sigma
    assert 2.0 < late.gatm < 12.0
    with pytest.raises(ConfigError, match="--noaa-monthly"):
        window_gatm(mlo_end - 11, mlo_end)
    # A current global file supplied by the user is used instead of the packaged one.
    trend = monthly_trend("gl")
    newer = pd.Series([trend.iloc[-1] + 0.2], index=pd.PeriodIndex([gl_end + 1], freq="M"))
    own = window_gatm(gl_end - 11, gl_end, pd.concat([trend, newer]))
    assert "gl" in own.source and own.sigma == g.sigma
    expected = (trend.iloc[-1] + newer.iloc[0]) / 2 - trend.loc[gl_end - 12 : gl_end - 11].mean()
    assert own.gatm == pytest.approx(expected * GTC_PER_PPM)
