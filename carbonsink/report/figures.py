"""The budget's figures (PNG bytes), drawn with matplotlib's object API (no pyplot state).

- ``anomaly_map``: the annual land + ocean sink anomaly of a year against a baseline.
- ``budget_bars``: sources (EFOS, ELUC) stacked up, their fate (GATM, SOCEAN, SLAND, BIM)
  stacked down, as the GCB draws its budget; the sinks close on -(EFOS + ELUC).
- ``gatm_history``: the atmospheric growth, the newest year highlighted.
- ``region_bars``: the regional anomalies of a year.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

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


def anomaly_map(anomaly: np.ndarray, year: int, baseline: str) -> bytes:
    """Map of an annual sink anomaly (kg C m-2 s-1, lat ascending, lon from -180)."""
    field = anomaly * TO_G_PER_YEAR
    finite = field[np.isfinite(field)]
    lim = float(np.percentile(np.abs(finite), 98)) if finite.size else 1.0
    fig, ax = _figure(11, 5.6)
    im = ax.imshow(field, origin="lower", extent=(-180, 180, -90, 90), cmap="RdBu",
                   vmin=-lim or -1, vmax=lim or 1)  # fmt: skip
    ax.set_title(f"Land + ocean CO2 sink anomaly, {year} vs {baseline} (ensemble median)")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    fig.colorbar(im, ax=ax, shrink=0.8, label="g C m-2 yr-1 (+ = more uptake)")
    return _png(fig)


def budget_bars(budget: pd.DataFrame, release: str) -> bytes:
    """Stacked annual budget: sources up, sinks and imbalance down (GtC/yr)."""
    years = budget.index.to_numpy()
    fig, ax = _figure(11, 5.6)
    up = np.zeros(len(years))
    for c in ("EFOS", "ELUC"):
        v = budget[c].to_numpy()
        ax.bar(years, v, bottom=up, color=COLOURS[c], label=c, width=0.8)
        up += v
    down_pos = np.zeros(len(years))
    down_neg = np.zeros(len(years))
    for c in ("GATM", "SOCEAN", "SLAND", "BIM"):
        v = -budget[c].to_numpy()
        bottom = np.where(v < 0, down_neg, down_pos)
        ax.bar(years, v, bottom=bottom, color=COLOURS[c], label=c, width=0.8,
               edgecolor="#999999" if c == "BIM" else None, linewidth=0.5)  # fmt: skip
        down_neg = np.where(v < 0, down_neg + v, down_neg)
        down_pos = np.where(v >= 0, down_pos + v, down_pos)
    ax.plot(years, -(budget["EFOS"] + budget["ELUC"]), "k_", markersize=14,
            label="-(EFOS + ELUC)")  # fmt: skip
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("GtC/yr")
    ax.set_title(
        "Global carbon budget: EFOS + ELUC = GATM + SOCEAN + SLAND + BIM "
        f"(sinks emulated, adjusted to {release})"
    )
    ax.legend(ncol=4, fontsize=9, loc="lower left")
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


def region_bars(anomalies: pd.Series, year: int, baseline: str) -> bytes:
    """Horizontal bars of regional anomalies (GtC/yr), index ``<region>|<sink>``."""
    a = anomalies.sort_values()
    fig, ax = _figure(10, 0.32 * len(a) + 1.5)
    colours = [COLOURS["SLAND"] if k.endswith("SLAND") else COLOURS["SOCEAN"] for k in a.index]
    ax.barh([k.replace("|", " ") for k in a.index], a.to_numpy(), color=colours)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("GtC/yr (+ = more uptake than the baseline)")
    ax.set_title(f"Regional sink anomalies, {year} vs {baseline} (unadjusted ensemble median)")
    return _png(fig)
