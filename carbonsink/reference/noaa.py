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

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from carbonsink.co2 import _GL_FIELDS, _MLO_FIELDS, _read
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
        except (ValueError, IndexError) as exc:
            raise ConfigError(
                f"NOAA file {name}: line {n} ({ln!r}) is not year,growth,uncertainty"
            ) from exc
        years.append(y)
        growth.append(g)
        unc.append(u)
    return pd.DataFrame({"growth": growth, "uncertainty": unc}, index=pd.Index(years, name="year"))


@lru_cache(maxsize=2)
def monthly_trend(site: str = "gl") -> pd.Series:
    """NOAA's de-seasonalised monthly trend (ppm) of ``site``, indexed by monthly Period.

    ``gl``: the global marine-boundary-layer trend; ``mlo``: Mauna Loa's de-seasonalised
    monthly mean, which NOAA publishes about two months sooner.
    """
    if site == "mlo":
        mlo = _read("co2-mm-mlo.csv", _MLO_FIELDS)
        values, dates = mlo["deseasonalized"], mlo["date"]
    else:
        gl = _read("co2-mm-gl.csv", _GL_FIELDS)
        values, dates = gl["trend"], gl["date"]
    return pd.Series(values.to_numpy(float), index=pd.PeriodIndex(dates, freq="M"))


#: The column names of NOAA's own ``co2_mm_gl.csv`` (after its ``#`` comment block).
_NOAA_GL_HEADER = ["year", "month", "decimal", "average", "average_unc", "trend", "trend_unc"]


def parse_monthly(text: str, name: str) -> pd.Series:
    """The trend (ppm) of a global monthly file, indexed by monthly Period.

    Reads NOAA's own ``co2_mm_gl.csv`` (``#`` comments, then
    ``year,month,decimal,average,average_unc,trend,trend_unc``), the file a near-real-time
    job downloads each day, and the ``datasets/co2-ppm`` copy that carbonsink ships
    (``Date,Decimal Date,Average,Trend`` over six fields).

    Raises
    ------
    ConfigError
        A header of neither form, or a row that is not numbers.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    header = [c.strip().lower() for c in lines[0].split(",")] if lines else []
    if header == _NOAA_GL_HEADER:
        date_of = lambda p: f"{int(p[0]):04d}-{int(p[1]):02d}"  # noqa: E731
        trend_at = 5
    elif header == ["date", "decimal date", "average", "trend"]:
        date_of = lambda p: p[0]  # noqa: E731
        trend_at = 4
    else:
        raise ConfigError(
            f"NOAA monthly file {name}: header {lines[0] if lines else '(empty)'!r} is neither "
            f"NOAA's '{','.join(_NOAA_GL_HEADER)}' nor carbonsink's packaged form; download "
            "co2_mm_gl.csv from gml.noaa.gov again or update carbonsink"
        )
    dates, trend = [], []
    for n, ln in enumerate(lines[1:], start=2):
        parts = [p.strip() for p in ln.split(",")]
        try:
            dates.append(pd.Period(date_of(parts), freq="M"))
            trend.append(float(parts[trend_at]))
        except (ValueError, IndexError) as exc:
            raise ConfigError(
                f"NOAA monthly file {name}: row {n} ({ln!r}) is not a month and its trend; "
                "fix or download the file again"
            ) from exc
    if not dates:
        raise ConfigError(f"NOAA monthly file {name} has no rows; download it again")
    return pd.Series(trend, index=pd.PeriodIndex(dates, freq="M"))


def read_monthly(path: str) -> pd.Series:
    """:func:`parse_monthly` of a local file.

    Raises
    ------
    ConfigError
        A missing file, or one :func:`parse_monthly` refuses.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(
            f"NOAA monthly file {path} not found; download co2_mm_gl.csv from "
            "https://gml.noaa.gov/ccgg/trends/gl_data.html or drop --noaa-monthly"
        )
    return parse_monthly(p.read_text(errors="replace"), p.name)


def window_growth(first: pd.Period, last: pd.Period, trend: pd.Series | None = None) -> float:
    """CO2 growth (ppm) from the start of month ``first`` to the end of month ``last``.

    ``trend`` defaults to the packaged global trend (:func:`monthly_trend`).

    Raises
    ------
    ConfigError
        If the record does not reach a month either side of the window.
    """
    trend = monthly_trend() if trend is None else trend
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


@dataclass(frozen=True)
class WindowGatm:
    """GATM over a 12-month window: GtC/yr, its 1-sigma uncertainty and where it came from."""

    gatm: float
    sigma: float
    source: str


@lru_cache(maxsize=1)
def _sigmas() -> tuple[float, float]:
    """1-sigma (ppm/yr) of a global 12-month growth, and of Mauna Loa standing in for it.

    The first is NOAA's median stated uncertainty of the global annual growth over its last
    ten years; the second adds, in quadrature, the RMS difference between Mauna Loa's and
    the global annual growth since 1980 (how far one site strays from the global mean).
    """
    gl, mlo = annual_growth("gl"), annual_growth("mlo")
    own = float(gl["uncertainty"].iloc[-10:].median())
    years = [y for y in gl.index if y >= 1980 and y in mlo.index]
    rms = float(np.sqrt(np.mean((mlo.loc[years, "growth"] - gl.loc[years, "growth"]) ** 2)))
    return own, float(np.hypot(own, rms))


def window_gatm(first: pd.Period, last: pd.Period, trend: pd.Series | None = None) -> WindowGatm:
    """GATM (GtC/yr) over ``first``..``last`` (12 months) for a near-real-time budget.

    The global trend (``trend``, default the packaged one) when it reaches the month after
    ``last``; otherwise Mauna Loa's de-seasonalised monthly means, which NOAA publishes
    sooner, with the larger uncertainty of one site standing in for the globe.

    Raises
    ------
    ConfigError
        Neither record reaches the window (the message names the newest window they cover).
    """
    own, site_sigma = _sigmas()
    scale = 12.0 / ((last - first).n + 1)  # GtC per year whatever the window's length
    gl = monthly_trend("gl") if trend is None else trend
    try:
        growth = window_growth(first, last, gl)
        return WindowGatm(growth * GTC_PER_PPM * scale, own * GTC_PER_PPM, "NOAA gl monthly trend")
    except ConfigError:
        pass
    mlo = monthly_trend("mlo")
    try:
        growth = window_growth(first, last, mlo)
    except ConfigError as exc:
        newest = max(gl.index[-1], mlo.index[-1]) - 1
        raise ConfigError(
            f"NOAA's monthly records end at {newest + 1}, too soon for the growth over "
            f"{first}..{last} (it needs {last + 1}); pass a current co2_mm_gl.csv "
            "(--noaa-monthly) or take the window to end by " + str(newest)
        ) from exc
    return WindowGatm(
        growth * GTC_PER_PPM * scale,
        site_sigma * GTC_PER_PPM,
        "NOAA Mauna Loa de-seasonalised monthly means (the global trend is not out yet)",
    )


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
            f"NOAA's {site} growth covers {g.index[0]}..{g.index[-1]}, not {missing[0]}; the "
            "12-month budget (carbonsink nrt) covers later months, or update carbonsink's NOAA data"
        )
    sel = g.loc[list(years)]
    return pd.DataFrame(
        {"GATM": sel["growth"] * GTC_PER_PPM, "GATM_sigma": sel["uncertainty"] * GTC_PER_PPM}
    )
