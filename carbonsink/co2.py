"""Atmospheric CO2 from NOAA GML's records, shipped as package data (``data/noaa_co2``).

The monthly global marine-boundary-layer mean (1979-01 on) drives the reference process
models and is an input channel of the emulators; Mauna Loa's monthly mean fills the years
before 1979. Months after the end of the record continue the last 12 months' trend, so a
near-real-time run never waits for NOAA's update (the value is flagged as extrapolated).

The CSV files are byte copies of the ``datasets/co2-ppm`` data package, whose headers name
fewer columns than the rows hold; they are parsed with explicit names and a field count.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from carbonsink.errors import ConfigError

_GL_FIELDS = ["date", "decimal_date", "average", "average_unc", "trend", "trend_unc"]
_MLO_FIELDS = ["date", "decimal_date", "average", "deseasonalized", "ndays", "sdev", "unc"]


def _read(name: str, fields: list[str]) -> pd.DataFrame:
    with resources.files("carbonsink").joinpath(f"data/noaa_co2/{name}").open("r") as fh:
        df = pd.read_csv(fh, header=None, skiprows=1, names=fields, dtype={"date": str})
    if df.shape[1] != len(fields) or df[fields[-1]].isna().any():
        raise ConfigError(
            f"packaged NOAA file {name} does not have {len(fields)} fields per row; reinstall "
            "carbonsink"
        )
    return df


@lru_cache(maxsize=1)
def monthly_record() -> pd.Series:
    """Monthly mean CO2 (ppm, dry-air mole fraction), indexed by monthly Period.

    Global marine-boundary-layer means from 1979-01 (NOAA GML, Lan et al.), Mauna Loa
    monthly means (Scripps/NOAA) before that.
    """
    gl = _read("co2-mm-gl.csv", _GL_FIELDS)
    mlo = _read("co2-mm-mlo.csv", _MLO_FIELDS)
    g = pd.Series(gl["average"].to_numpy(float), index=pd.PeriodIndex(gl["date"], freq="M"))
    m = pd.Series(mlo["average"].to_numpy(float), index=pd.PeriodIndex(mlo["date"], freq="M"))
    return pd.concat([m[m.index < g.index[0]], g]).sort_index()


@dataclass(frozen=True)
class Co2Series:
    """CO2 for a set of months and which of them continue the record by extrapolation."""

    ppm: np.ndarray
    extrapolated: np.ndarray


def co2_for(months: pd.PeriodIndex | list[pd.Period]) -> Co2Series:
    """Monthly mean atmospheric CO2 for ``months``.

    Months after the record take the value of the same calendar month one year earlier plus
    the mean growth of the last 12 months, applied year by year (persistence of the seasonal
    cycle and of the recent growth rate).

    Raises
    ------
    ConfigError
        For months before the record (1958-03).
    """
    rec = monthly_record()
    idx = pd.PeriodIndex(list(months), freq="M")
    first, last = rec.index[0], rec.index[-1]
    if len(idx) and idx.min() < first:
        raise ConfigError(
            f"no CO2 record before {first} (asked for {idx.min()}); start the window at "
            f"{first} or later"
        )
    growth = float(rec.iloc[-12:].mean() - rec.iloc[-24:-12].mean())
    values: dict[pd.Period, float] = dict(zip(rec.index, rec.to_numpy(float), strict=True))
    out = np.empty(len(idx))
    extra = np.zeros(len(idx), dtype=bool)
    for i, m in enumerate(idx):
        if m <= last:
            out[i] = values[m]
            continue
        years = (m - last).n // 12 + 1
        base = m - 12 * years
        out[i] = values[base] + years * growth
        extra[i] = True
    return Co2Series(out, extra)
