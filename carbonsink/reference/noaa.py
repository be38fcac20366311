"""Atmospheric CO2 growth from NOAA GML's records: GATM of the budget.

- Annual growth (ppm/yr, 1 Jan to 31 Dec) of the global marine-boundary-layer mean and of
  Mauna Loa, as NOAA publishes it (``co2-gr-gl.csv``, ``co2-gr-mlo.csv``; the latter has a
  blank second line). Before 1980 NOAA's "global" growth is Mauna Loa's.
- A 12-month growth for any window (e.g. July to July) from the monthly de-seasonalised
  trend, NOAA's own method for the annual figure: the value at a month boundary is the mean
  of the trend in the months either side of it, and the growth is the difference of the
  values at the window's two ends. For every January-to-December window since 1980 this
  reproduces the published annual growth to within its rounding (tested).
- GtC = ppm x 2.124 (Ballantyne et al. 2012, Nature 488, 70-72; the GCB's factor).

The files are byte copies of the ``datasets/co2-ppm`` data package (see ``data/README.md``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

from carbonsink.co2 import _GL_FIELDS, _read
from carbonsink.errors import ConfigError

GTC_PER_PPM = 2.124
SITES = {"gl": "co2-gr-gl.csv", "mlo": "co2-gr-mlo.csv"}
RELEASE = "NOAA GML via datasets/co2-ppm @ 146bdc6 (2026-08-01)"


@lru_cache(maxsize=2)
def annual_growth(site: str = "gl") -> pd.DataFrame:
    """Published annual growth: ``growth`` and ``uncertainty`` in ppm/yr, indexed by year.

    Raises
    ------
    ConfigError
        An unknown site, or a file whose header is not NOAA's.
    """
    if site not in SITES:
        raise ConfigError(f"unknown NOAA site {site!r}; use one of {', '.join(SITES)}")
    with resources.files("carbonsink").joinpath(f"data/noaa_co2/{SITES[site]}").open() as fh:
        return parse_growth(fh.read(), SITES[site])


def parse_growth(text: str, name: str) -> pd.DataFrame:
    """Parse a NOAA growth-rate file (``Year,Annual Increase,Uncertainty``; blank lines skipped).

    Raises
    ------
    ConfigError
        If the header is not the expected one or a row does not have three numbers.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    expected = ["year", "annual increase", "uncertainty"]
    if not lines or [c.strip().lower() for c in lines[0].split(",")] != expected:
        raise ConfigError(
            f"NOAA file {name}: header {lines[0] if lines else '(empty)'!r} is not "
            "'Year,Annual Increase,Uncertainty'; NOAA changed the format, update carbonsink "
            "or fix the file"
        )
    years, growth, unc = [], [], []
    for n, ln in enumerate(lines[1:], start=2):
        parts = ln.split(",")
        try:
            y, g, u = int(parts[0]), float(parts[1]), float(parts[2])
        except (ValueError, IndexError):
            raise ConfigError(
                f"NOAA file {name}: line {n} ({ln!r}) is not year,growth,uncertainty"
            ) from None
        years.append(y)
        growth.append(g)
        unc.append(u)
    return pd.DataFrame({"growth": growth, "uncertainty": unc}, index=pd.Index(years, name="year"))


@lru_cache(maxsize=1)
def monthly_trend() -> pd.Series:
    """NOAA's de-seasonalised global monthly trend (ppm), indexed by monthly Period."""
    gl = _read("co2-mm-gl.csv", _GL_FIELDS)
    return pd.Series(gl["trend"].to_numpy(float), index=pd.PeriodIndex(gl["date"], freq="M"))


def window_growth(first: pd.Period, last: pd.Period) -> float:
    """CO2 growth (ppm) from the start of month ``first`` to the end of month ``last``.

    Raises
    ------
    ConfigError
        If the record does not reach a month either side of the window.
    """
    trend = monthly_trend()
    need = [first - 1, first, last, last + 1]
    missing = [str(m) for m in need if m not in trend.index]
    if missing:
        raise ConfigError(
            f"NOAA's monthly record ({trend.index[0]}..{trend.index[-1]}) lacks "
            f"{', '.join(missing)} for the growth over {first}..{last}; choose a window that "
            f"ends by {trend.index[-1] - 1} or update carbonsink's NOAA data"
        )
    at = dict(zip(trend.index, trend.to_numpy(float), strict=True))
    start = (at[first - 1] + at[first]) / 2
    end = (at[last] + at[last + 1]) / 2
    return float(end - start)


def gatm_annual(years: range | list[int], site: str = "gl") -> pd.DataFrame:
    """GATM (GtC/yr) and its 1-sigma uncertainty from NOAA's published annual growth.

    Raises
    ------
    ConfigError
        Years NOAA has not published.
    """
    g = annual_growth(site)
    missing = [y for y in years if y not in g.index]
    if missing:
        raise ConfigError(
            f"NOAA's {site} growth covers {g.index[0]}..{g.index[-1]}, not {missing[0]}; use a "
            "12-month window of monthly means (--gatm-window) or update carbonsink's NOAA data"
        )
    sel = g.loc[list(years)]
    return pd.DataFrame(
        {"GATM": sel["growth"] * GTC_PER_PPM, "GATM_sigma": sel["uncertainty"] * GTC_PER_PPM}
    )
