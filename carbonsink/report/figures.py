"""The budget's figures (PNG bytes), drawn with matplotlib's object API (no pyplot state).

- ``anomaly_map``: the annual land + ocean sink anomaly of a year against a baseline, on a
  symmetric colour scale set by the data (the 99.5th percentile of the anomalies' size, so
  one extreme cell does not wash the map out) and stated on the figure with the extremes
  beyond it.
- ``budget_bars``: sources (EFOS, ELUC) stacked up, their fate (GATM, SOCEAN, SLAND)
  stacked down, as the GCB draws its budget, with 1-sigma bars on the sinks; the budget
  imbalance in a panel of its own, where its sign reads at a glance.
- ``gatm_history``: the atmospheric growth, the newest year highlighted.
- ``region_bars``: the regional anomalies of a year, one panel per kind of region (latitude
  bands, continents, ocean basins, hotspots): nested regions are never ranked together.

``mark`` (e.g. `` [SYNTHETIC SAMPLE DATA]``) is appended to every title.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from carbonsink.budget.tables import GROUPS

#: Colours of the budget components (close to the GCB's own figures).
COLOURS = {
    "EFOS": "#4d4d4d",
    "ELUC": "#b08d57",
    "GATM": "#5b8fd9",
    "SOCEAN": "#1f4e8c",
    "SLAND": "#3c9a45",
    "BIM": "#d9d9d9",
}
TO_G_PER_YEAR = 1e3 * 86400 * 365.25  # kg C m-2 s-1 -> g C m-2 yr-1


def _figure(width: float, height: float) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots()


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


#: Share of the anomalies' sizes inside the map's colour scale: one cell in 200 saturates.
#: (The 98th percentile saturated the Amazon and southern Africa on the default map.)
MAP_PERCENTILE = 99.5


def anomaly_scale(field: np.ndarray) -> float:
    """Half-width of the anomaly map's symmetric colour scale: a percentile of |anomaly|."""
    finite = np.abs(field[np.isfinite(field)])
    lim = float(np.percentile(finite, MAP_PERCENTILE)) if finite.size else 0.0
    return lim if lim > 0 else 1.0


def anomaly_map(anomaly: np.ndarray, year: int, baseline: str, *, mark: str = "") -> bytes:
    """Map of an annual sink anomaly (kg C m-2 s-1, lat ascending, lon from -180)."""
    field = anomaly * TO_G_PER_YEAR
    lim = anomaly_scale(field)
    lo, hi = float(np.nanmin(field)), float(np.nanmax(field))
    fig, ax = _figure(11, 5.8)
    im = ax.imshow(field, origin="lower", extent=(-180, 180, -90, 90), cmap="RdBu",
                   vmin=-lim, vmax=lim)  # fmt: skip
    ax.set_title(
        f"Land + ocean CO2 sink anomaly, {year} vs {baseline} (ensemble median){mark}\n"
        f"colour scale +-{lim:.3g} g C m-2 yr-1, the {MAP_PERCENTILE:g}th percentile of "
        f"|anomaly|; the anomalies range from {lo:.3g} to {hi:.3g}",
        fontsize=11,
    )
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    fig.colorbar(im, ax=ax, shrink=0.8, extend="both",
                 label="g C m-2 yr-1 (+ = more uptake)")  # fmt: skip
    return _png(fig)


def budget_bars(budget: pd.DataFrame, release: str, *, mark: str = "") -> bytes:
    """Stacked annual budget, sources up and sinks down, and the imbalance below (GtC/yr)."""
    years = budget.index.to_numpy()
    fig = Figure(figsize=(11, 7.6), layout="constrained")
    ax, bim_ax = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    up = np.zeros(len(years))
    for c in ("EFOS", "ELUC"):
        v = budget[c].to_numpy()
        ax.bar(years, v, bottom=up, color=COLOURS[c], label=c, width=0.8)
        up += v
    down = np.zeros(len(years))
    for c in ("GATM", "SOCEAN", "SLAND"):
        v = budget[c].to_numpy()
        ax.bar(years, -v, bottom=down, color=COLOURS[c], label=c, width=0.8)
        down -= v
        if f"{c}_sigma" in budget and c != "GATM":
            # 1 sigma of this sink, at the edge of its segment.
            ax.errorbar(years, down, yerr=budget[f"{c}_sigma"].to_numpy(), fmt="none",
                        ecolor="black", elinewidth=1, capsize=3)  # fmt: skip
    ax.plot(years, -(budget["EFOS"] + budget["ELUC"]), "k_", markersize=16, mew=2,
            label="-(EFOS + ELUC):\nwhere the sinks\nwould close\nthe budget")  # fmt: skip
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("GtC/yr")
    ax.set_title(
        "Global carbon budget: EFOS + ELUC = GATM + SOCEAN + SLAND + BIM"
        f"{mark}\nsinks emulated and adjusted to {release}; error bars 1 sigma"
    )
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bim = budget["BIM"].to_numpy()
    colours = np.where(bim < 0, "#c0392b", "#7f7f7f")
    bim_ax.bar(years, bim, color=colours, width=0.8)
    if "BIM_sigma" in budget:
        bim_ax.errorbar(years, bim, yerr=budget["BIM_sigma"].to_numpy(), fmt="none",
                        ecolor="black", elinewidth=1, capsize=3)  # fmt: skip
    bim_ax.axhline(0, color="black", lw=0.8)
    bim_ax.set_ylabel("BIM (GtC/yr)")
    bim_ax.set_title(
        "Budget imbalance BIM = (EFOS + ELUC) - (GATM + SOCEAN + SLAND): red < 0, the sinks "
        "take up more than the sources emit; grey > 0, less",
        fontsize=10,
    )
    for y, v in zip(years, bim, strict=True):
        # The value on the other side of the zero line, clear of the bar and its error bar.
        bim_ax.annotate(f"{v:+.2f}", (y, 0), ha="center", fontsize=8,
                        va="top" if v >= 0 else "bottom",
                        xytext=(0, -3 if v >= 0 else 3), textcoords="offset points")  # fmt: skip
    bim_ax.set_xticks(years)
    return _png(fig)


def gatm_history(gatm: pd.Series, newest: int) -> bytes:
    """Bars of GATM (GtC/yr) by year, ``newest`` in red."""
    fig, ax = _figure(11, 4.5)
    colours = ["#c0392b" if y == newest else COLOURS["GATM"] for y in gatm.index]
    ax.bar(gatm.index, gatm.to_numpy(), color=colours, width=0.8)
    ax.set_ylabel("GtC/yr")
    ax.set_title(f"Atmospheric CO2 growth (NOAA, x 2.124 GtC/ppm); {newest} in red: "
                 f"{float(gatm.loc[newest]):.2f} GtC/yr")  # fmt: skip
    return _png(fig)


def region_bars(anomalies: pd.DataFrame, year: int, baseline: str, *, mark: str = "") -> bytes:
    """Regional anomalies (GtC/yr), one panel per kind of region, each ranked on its own.

    ``anomalies`` is the year's rows of the long regional table (``region``, ``group``,
    ``flux``, ``value``).
    """
    groups = [g for g in GROUP_TITLES if g in set(anomalies["group"])]
    sizes = [int((anomalies["group"] == g).sum()) for g in groups]
    fig = Figure(figsize=(10, 0.3 * sum(sizes) + 1.2 * len(groups) + 1), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(groups), 1, height_ratios=[n + 1.5 for n in sizes]))
    lim = float(np.nanmax(np.abs(anomalies["value"].to_numpy()))) * 1.1 or 1.0
    for ax, group in zip(axes, groups, strict=True):
        rows = anomalies[anomalies["group"] == group].sort_values("value")
        colours = [COLOURS[f] for f in rows["flux"]]
        labels = [f"{r} ({f})" for r, f in zip(rows["region"], rows["flux"], strict=True)]
        ax.barh(labels, rows["value"].to_numpy(), color=colours)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlim(-lim, lim)
        ax.set_title(GROUP_TITLES[group], fontsize=10, loc="left")
    axes[-1].set_xlabel("GtC/yr (+ = more uptake than the baseline)")
    axes[0].legend(
        handles=[Patch(color=COLOURS["SLAND"], label="land sink (SLAND)"),
                 Patch(color=COLOURS["SOCEAN"], label="ocean sink (SOCEAN)")],
        loc="lower right", fontsize=9,
    )  # fmt: skip
    fig.suptitle(
        f"Regional sink anomalies, {year} vs {baseline} (ensemble median, unadjusted){mark}"
    )
    return _png(fig)


#: Panels of the regional figure, in the tables' order of region kinds, and their titles.
GROUP_TITLES = {
    GROUPS["band"]: "Latitude bands (they partition the globe)",
    GROUPS["continent"]: "Continents (they partition the land)",
    GROUPS["basin"]: "Ocean basins (they partition the ocean)",
    GROUPS["hotspot"]: "Hotspots (inside the regions above; not to be added to them)",
}
