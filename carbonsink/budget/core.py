"""The global carbon budget: EFOS + ELUC = GATM + SOCEAN + SLAND + BIM.

EFOS here is fossil emissions net of the cement carbonation sink (the GCB reports fossil
emissions excluding carbonation and the carbonation sink separately; their difference is
what enters the identity). BIM, the budget imbalance, is the residual, so the identity
holds in every row by construction (and is checked). Each component has a 1-sigma
uncertainty; BIM's is their quadrature sum (components taken as independent, as the GCB
does).

Components and where each figure came from:

- EFOS, ELUC: the GCB release; years after it by a stated extension rule (``persistence``
  of the last year, or the linear ``trend`` of the last five years) or a user-supplied
  series. 1 sigma: 5 % of EFOS, 0.7 GtC/yr for ELUC (Friedlingstein et al. 2025, ESSD 17,
  965, Table 8).
- GATM: NOAA (``carbonsink.reference.noaa``).
- SOCEAN, SLAND: the emulated sink map, adjusted to the release (``adjust``). 1 sigma:
  the GCB's 0.4 (ocean) and 0.5 (land) GtC/yr in quadrature with the ensemble spread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from carbonsink.errors import ConfigError
from carbonsink.reference.gcb import GcbRelease

#: The GCB's 1-sigma uncertainties (Friedlingstein et al. 2025, Table 8): relative for EFOS,
#: absolute (GtC/yr) for the others.
EFOS_RELATIVE_SIGMA = 0.05
ELUC_SIGMA = 0.7
SOCEAN_SIGMA = 0.4
SLAND_SIGMA = 0.5
EXTENSION_RULES = ("persistence", "trend")
COMPONENTS = ["EFOS", "ELUC", "GATM", "SOCEAN", "SLAND", "BIM"]


@dataclass(frozen=True)
class Emissions:
    """EFOS (net of cement carbonation) and ELUC with their sources, GtC/yr by year."""

    table: pd.DataFrame  # EFOS, ELUC, EFOS_sigma, ELUC_sigma, EFOS_source, ELUC_source


def emissions(
    release: GcbRelease,
    years: list[int],
    rule: str = "persistence",
    user: pd.DataFrame | None = None,
) -> Emissions:
    """EFOS and ELUC for ``years``: from ``user`` where given, the release, then ``rule``.

    Parameters
    ----------
    user
        Optional series (index year; columns ``EFOS`` and/or ``ELUC``, GtC/yr, EFOS net of
        cement carbonation) that takes precedence over the release.

    Raises
    ------
    ConfigError
        An unknown rule, or years before the release starts.
    """
    if rule not in EXTENSION_RULES:
        raise ConfigError(f"unknown extension rule {rule!r}; use {' or '.join(EXTENSION_RULES)}")
    b = release.budget
    gcb = pd.DataFrame({"EFOS": b["EFOS"] - b["SCEMENT"], "ELUC": b["ELUC"]})
    first, last = int(gcb.index.min()), int(gcb.index.max())
    early = [y for y in years if y < first]
    if early:
        raise ConfigError(f"{release.release} starts in {first}; no emissions for {early[0]}")
    rows: dict[str, list[float] | list[str]] = {}
    for comp in ("EFOS", "ELUC"):
        given = _values(user[comp], years) if user is not None and comp in user else None
        published = _values(gcb[comp], years)
        values: list[float] = []
        sources: list[str] = []
        for k, y in enumerate(years):
            if given is not None and np.isfinite(given[k]):
                values.append(float(given[k]))
                sources.append("user series")
            elif y <= last:
                values.append(float(published[k]))
                sources.append(release.release)
            elif rule == "persistence":
                values.append(float(gcb[comp].to_numpy(float)[-1]))
                sources.append(f"{release.release}, {last} persisted")
            else:
                recent = gcb[comp].loc[last - 4 : last]
                slope, icept = np.polyfit(recent.index.to_numpy(float), recent.to_numpy(float), 1)
                values.append(float(slope * y + icept))
                sources.append(f"{release.release}, {last - 4}-{last} linear trend")
        rows[comp] = values
        rows[f"{comp}_source"] = sources
    table = pd.DataFrame(rows, index=pd.Index(years, name="year"))
    table["EFOS_sigma"] = EFOS_RELATIVE_SIGMA * table["EFOS"].abs()
    table["ELUC_sigma"] = ELUC_SIGMA
    return Emissions(table)


def _values(series: pd.Series, years: list[int] | pd.Index) -> np.ndarray:
    """``series`` at ``years`` as floats, NaN where it has no value."""
    return series.reindex(years).to_numpy(dtype=float, na_value=np.nan)


def reference_sink(
    release: GcbRelease, component: str, window: tuple[int, int], statistic: str = "median"
) -> float:
    """The release's ``SLAND`` or ``SOCEAN`` over ``window`` (inclusive years), GtC/yr.

    Each model's mean over the window, then the median (or mean) across models. SLAND uses
    the DGVMs; SOCEAN the GOBMs and the fCO2 data products (the GCB's ocean sink rests on
    both).

    Raises
    ------
    ConfigError
        An unknown statistic or component, or a window the release does not cover.
    """
    if statistic not in ("median", "mean"):
        raise ConfigError(f"unknown statistic {statistic!r}; use median or mean")
    if component == "SLAND":
        models = release.land_models
    elif component == "SOCEAN":
        models = pd.concat([release.ocean_models, release.ocean_products], axis=1)
    else:
        raise ConfigError(f"no reference for {component}; only SLAND and SOCEAN are adjusted")
    lo, hi = window
    if lo < models.index.min() or hi > models.index.max():
        raise ConfigError(
            f"{release.release} covers {models.index.min()}..{models.index.max()}, not the "
            f"reference window {lo}-{hi}; choose a window inside it (--reference-start/--end)"
        )
    per_model = models.loc[lo:hi].mean(skipna=False).dropna()
    return float(per_model.median() if statistic == "median" else per_model.mean())


def adjust(
    emulated: pd.Series, reference: float, window: tuple[int, int]
) -> tuple[pd.Series, float]:
    """Shift annual ``emulated`` totals so their mean over ``window`` equals ``reference``.

    Returns the adjusted series and the offset added (GtC/yr).

    Raises
    ------
    ConfigError
        If ``emulated`` does not cover the whole window.
    """
    lo, hi = window
    span = list(range(lo, hi + 1))
    missing = [y for y, v in zip(span, _values(emulated, span), strict=True) if not np.isfinite(v)]
    if missing:
        raise ConfigError(
            f"the sink map lacks the reference year(s) {missing[0]}..{missing[-1]} of {lo}-{hi}; "
            "map them first (carbonsink infer) or move the reference window"
        )
    offset = reference - float(emulated.loc[lo:hi].mean())
    return emulated + offset, offset


def assemble(
    years: list[int] | list[pd.Period],
    emis: Emissions,
    gatm: pd.DataFrame,
    sinks: Mapping[str, pd.Series],
    sink_sigmas: Mapping[str, pd.Series | float],
) -> pd.DataFrame:
    """The budget table: components, BIM as the residual, 1-sigma uncertainties.

    Parameters
    ----------
    gatm
        ``GATM`` and ``GATM_sigma`` by year.
    sinks
        ``SOCEAN`` and ``SLAND`` by year (GtC/yr, positive into the ocean / land).
    sink_sigmas
        Their 1-sigma uncertainties by year (or one value for every year).

    Raises
    ------
    ConfigError
        A component missing for one of ``years``.
    """
    index = pd.Index(list(years), name="year")
    out = pd.DataFrame(index=index)
    parts: dict[str, pd.Series] = {
        "EFOS": emis.table["EFOS"], "ELUC": emis.table["ELUC"], "GATM": gatm["GATM"],
        "SOCEAN": sinks["SOCEAN"], "SLAND": sinks["SLAND"],
    }  # fmt: skip
    for name, series in parts.items():
        got = _values(series, index)
        missing = [y for y, v in zip(years, got, strict=True) if not np.isfinite(v)]
        if missing:
            raise ConfigError(
                f"no {name} for {missing[0]}"
                + (f"..{missing[-1]}" if len(missing) > 1 else "")
                + "; shorten the window or supply the component"
            )
        out[name] = got
    out["BIM"] = out["EFOS"] + out["ELUC"] - out["GATM"] - out["SOCEAN"] - out["SLAND"]
    out["EFOS_sigma"] = emis.table.loc[index, "EFOS_sigma"].to_numpy(float)
    out["ELUC_sigma"] = emis.table.loc[index, "ELUC_sigma"].to_numpy(float)
    out["GATM_sigma"] = gatm.loc[index, "GATM_sigma"].to_numpy(float)
    for name in ("SOCEAN", "SLAND"):
        s = sink_sigmas[name]
        out[f"{name}_sigma"] = (
            s.loc[index].to_numpy(float) if isinstance(s, pd.Series) else float(s)
        )
    sig = [f"{c}_sigma" for c in COMPONENTS[:-1]]
    out["BIM_sigma"] = np.sqrt((out[sig] ** 2).sum(axis=1))
    check_identity(out)
    out["EFOS_source"] = emis.table.loc[index, "EFOS_source"].to_numpy()
    out["ELUC_source"] = emis.table.loc[index, "ELUC_source"].to_numpy()
    return out


def check_identity(table: pd.DataFrame, tolerance: float = 1e-9) -> None:
    """Raise if EFOS + ELUC differs from GATM + SOCEAN + SLAND + BIM in any row."""
    gap = (table["EFOS"] + table["ELUC"]) - (
        table["GATM"] + table["SOCEAN"] + table["SLAND"] + table["BIM"]
    )
    worst = float(gap.abs().max()) if len(gap) else 0.0
    if worst > tolerance:
        raise ValueError(f"the budget identity fails by {worst:.3g} GtC/yr")
