"""The budget from the sink map's monthly totals: annual, trailing 12-month and regional.

Inputs are plain tables: the monthly global totals (GtC per month, columns ``SLAND`` and
``SOCEAN``) of the ensemble median and of each member, and the median's monthly sums by
``(region, sink)``. The lake is read elsewhere (:mod:`carbonsink.lake.sinkmap`).

1. Bias adjustment: each member's (and the median's) annual series is shifted so that its
   mean over the reference window matches the GCB release's statistic over that window.
2. GATM from NOAA, EFOS and ELUC from the release (extended past it by a rule or a user
   series), BIM as the residual; 1-sigma uncertainties in quadrature, the sinks' including
   the ensemble spread of the adjusted members.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from carbonsink.budget.core import (
    SLAND_SIGMA,
    SOCEAN_SIGMA,
    adjust,
    assemble,
    emissions,
    reference_sink,
)
from carbonsink.budget.regions import BANDS, REGIONS
from carbonsink.budget.tables import GTC_PER_MONTH, GTC_PER_YEAR, regional
from carbonsink.budget.totals import SINKS, annual_totals
from carbonsink.budget.trailing import (
    LENGTH,
    member_spread,
    trailing_ends,
    trailing_sums,
    window_emissions,
)
from carbonsink.errors import ConfigError, LakeError
from carbonsink.reference.gcb import GcbRelease
from carbonsink.reference.noaa import WindowGatm, annual_growth, gatm_annual, window_gatm

#: 1-sigma of the sinks beside the ensemble spread (the GCB's stated model uncertainty).
SINK_SIGMA = {"SOCEAN": SOCEAN_SIGMA, "SLAND": SLAND_SIGMA}


def read_user_emissions(path: str) -> pd.DataFrame:
    """A ``year,EFOS,ELUC`` CSV (GtC/yr; either column may be absent or empty).

    Raises
    ------
    ConfigError
        A missing file or a table without a year column and one of EFOS / ELUC.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"emissions file {path} not found; pass a CSV of year,EFOS,ELUC")
    frame = pd.read_csv(p)
    frame.columns = [c.strip() for c in frame.columns]
    cols = {c.lower(): c for c in frame.columns}
    if "year" not in cols or not ({"efos", "eluc"} & set(cols)):
        raise ConfigError(
            f"emissions file {path} needs a 'year' column and EFOS and/or ELUC (GtC/yr); "
            f"it has {', '.join(frame.columns)}"
        )
    out = frame.set_index(cols["year"])
    out.index = out.index.astype(int)
    return out.rename(columns={cols[k]: k.upper() for k in ("efos", "eluc") if k in cols})[
        [k.upper() for k in ("efos", "eluc") if k in cols]
    ].astype(float)


def band_totals(regional_monthly: pd.DataFrame) -> pd.DataFrame:
    """Global monthly totals from the latitude bands' sums, which partition the globe."""
    return pd.DataFrame(
        {s: sum(regional_monthly[(r.name, s)] for r in BANDS) for s in SINKS.values()}
    )


def identity_line(row: pd.Series) -> str:
    """``EFOS a + ELUC b = GATM c + SOCEAN d + SLAND e + BIM f +- g GtC/yr`` of a budget row."""
    return (
        f"EFOS {row.EFOS:.2f} + ELUC {row.ELUC:.2f} = GATM {row.GATM:.2f} + SOCEAN "
        f"{row.SOCEAN:.2f} + SLAND {row.SLAND:.2f} + BIM {row.BIM:.2f} +- {row.BIM_sigma:.2f} "
        "GtC/yr"
    )


@dataclass
class AnnualBudget:
    """The annual budget and what went into it.

    ``raw_annual`` holds every series' unadjusted annual totals, ``offsets`` the shift (GtC/yr)
    that adjusted each series to the reference, ``references`` the release's values.
    """

    table: pd.DataFrame
    raw_annual: dict[str, pd.DataFrame]
    offsets: dict[str, dict[str, float]]
    references: dict[str, float]
    members: list[str]
    years: list[int] = field(default_factory=list)


def annual_budget(
    monthly: Mapping[str, pd.DataFrame],
    median_name: str,
    release: GcbRelease,
    window: tuple[int, int],
    statistic: str,
    noaa_site: str,
    extension: str,
    user: pd.DataFrame | None,
) -> AnnualBudget:
    """The annual budget of every complete mapped year that NOAA's growth reaches.

    Parameters
    ----------
    monthly
        Monthly global totals (GtC per month) of the ensemble median (under
        ``median_name``) and of each member; the other tables keep this order.
    window
        The reference years the sinks are adjusted over; ``statistic`` the release's
        statistic of its per-model values there (``median`` or ``mean``).
    noaa_site, extension, user
        GATM's NOAA record; the rule that extends EFOS and ELUC past the release, and a
        user's series that overrides it.

    Raises
    ------
    LakeError
        No complete mapped year.
    ConfigError
        NOAA's growth does not reach the mapped years, or a component is missing.
    """
    references = {sink: reference_sink(release, sink, window, statistic) for sink in SINKS.values()}
    annual: dict[str, pd.DataFrame] = {}  # adjusted
    raw_annual: dict[str, pd.DataFrame] = {}
    offsets: dict[str, dict[str, float]] = {}
    for name, table in monthly.items():
        yearly = raw_annual[name] = annual_totals(table)
        adjusted = {}
        offsets[name] = {}
        for sink in SINKS.values():
            adjusted[sink], offsets[name][sink] = adjust(yearly[sink], references[sink], window)
        annual[name] = pd.DataFrame(adjusted)
    years = sorted(set(annual[median_name].index))
    if not years:
        raise LakeError(
            "the sink map holds no complete year; map all twelve months of a year "
            "(carbonsink infer --start YYYY-01 --end YYYY-12)"
        )
    names = [m for m in monthly if m != median_name]
    spread = (
        pd.concat({m: annual[m] for m in names}, axis=1).T.groupby(level=1).std(ddof=1).T
        if len(names) > 1
        else pd.DataFrame(0.0, index=years, columns=list(SINKS.values()))
    )
    last_noaa = int(annual_growth(noaa_site).index.max())
    noaa_years = [y for y in years if y <= last_noaa]
    if not noaa_years:
        raise ConfigError(
            f"NOAA's annual growth does not reach the mapped years {years[0]}..{years[-1]}; "
            "update carbonsink's NOAA data"
        )
    med = annual[median_name]
    table = assemble(
        noaa_years, emissions(release, noaa_years, extension, user),
        gatm_annual(noaa_years, noaa_site), {s: med[s] for s in SINK_SIGMA},
        {s: np.sqrt(SINK_SIGMA[s] ** 2 + spread[s] ** 2) for s in SINK_SIGMA},
    )  # fmt: skip
    for s in SINK_SIGMA:
        table[f"{s}_spread"] = spread[s].loc[noaa_years].to_numpy()
    return AnnualBudget(table, raw_annual, offsets, references, names, noaa_years)


def trailing_budget(
    monthly: Mapping[str, pd.DataFrame],
    median_name: str,
    offsets: Mapping[str, Mapping[str, float]],
    release: GcbRelease,
    extension: str,
    user: pd.DataFrame | None,
    trend: pd.Series | None = None,
) -> tuple[pd.DataFrame | None, list[str]]:
    """The trailing 12-month budget for every mapped window NOAA's records reach.

    ``monthly`` as for :func:`annual_budget`; ``offsets`` its adjustments (by series name);
    ``trend`` a user's current NOAA global monthly trend
    (default: the packaged one). Returns the table (None when no window has both 12 mapped
    months and GATM) and lines that say what it holds, or why its newest window is missing.
    """
    ends = trailing_ends(monthly[median_name].index)
    if not ends:
        return None, ["no 12 consecutive mapped months yet: no 12-month budget"]
    gatm: dict[pd.Period, WindowGatm] = {}
    unreached = ""
    for end in ends:
        try:
            gatm[end] = window_gatm(end - (LENGTH - 1), end, trend)
        except ConfigError as exc:
            unreached = str(exc)
    keep = sorted(gatm)
    lines = []
    if unreached:
        lines.append(f"12-month budget to {ends[-1]} not built: {unreached}")
    if not keep:
        return None, lines
    years = sorted({(e - k).year for e in keep for k in range(LENGTH)})
    emis = window_emissions(emissions(release, years, extension, user), keep)
    sinks = list(SINKS.values())
    sums = {}
    for name, table in monthly.items():
        if set(keep) <= set(trailing_ends(table.index)):
            sums[name] = trailing_sums(table[sinks], keep) + pd.Series(offsets[name])[sinks]
    spread = member_spread({m: s for m, s in sums.items() if m != median_name}, sinks)
    table = assemble(
        keep, emis,
        pd.DataFrame(
            {"GATM": [gatm[e].gatm for e in keep], "GATM_sigma": [gatm[e].sigma for e in keep]},
            index=pd.PeriodIndex(keep, freq="M"),
        ),
        {s: sums[median_name][s] for s in SINK_SIGMA},
        {s: np.sqrt(SINK_SIGMA[s] ** 2 + spread[s] ** 2) for s in SINK_SIGMA},
    )  # fmt: skip
    table.index.name = "window_end"
    for s in SINK_SIGMA:
        table[f"{s}_spread"] = spread[s].to_numpy()
    table["GATM_source"] = [gatm[e].source for e in keep]
    end = keep[-1]
    lines.append(
        f"12 months to {end} ({end - (LENGTH - 1)}..{end}): " + identity_line(table.iloc[-1])
    )
    return table, lines


def regional_tables(
    regional_monthly: pd.DataFrame, baseline: tuple[int, int]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Regional sums of the ensemble median: monthly and annual, with anomalies.

    ``regional_monthly`` holds the median's monthly sums (GtC per month) by ``(region,
    sink)``. Returns long tables (:func:`carbonsink.budget.tables.regional`): totals in GtC
    per month / per year, unadjusted, and anomalies against the ``baseline`` years the map
    covers (monthly anomalies against the calendar month's mean); and what baseline was used.

    Raises
    ------
    ConfigError
        No complete mapped year inside the baseline.
    """
    keep = [(r.name, s) for r in REGIONS for s in r.sinks]
    monthly = regional_monthly.loc[:, keep]
    annual = annual_totals(monthly)
    lo, hi = baseline
    years = [y for y in annual.index if lo <= y <= hi]
    if not years:
        raise ConfigError(
            f"the sink map has no complete year in the anomaly baseline {lo}-{hi}; map one or "
            "move the baseline (--baseline-start/--baseline-end)"
        )
    annual_anom = annual - annual.loc[years].mean()
    index = monthly.index
    assert isinstance(index, pd.PeriodIndex)
    months = np.asarray(index.month)
    in_base = (index.year >= lo) & (index.year <= hi)
    clim = monthly[in_base].groupby(months[in_base]).mean()
    monthly_anom = monthly - clim.loc[months].to_numpy()
    info = {"anomaly_baseline": f"{years[0]}-{years[-1]} (asked {lo}-{hi})"}
    return (
        regional(monthly, monthly_anom, GTC_PER_MONTH),
        regional(annual, annual_anom, GTC_PER_YEAR),
        info,
    )
