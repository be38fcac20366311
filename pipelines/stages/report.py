"""``carbonsink report``: figures and the one-page HTML report of the published budget.

Reads the lake's published ``budget`` store (budget, regional sums) and ``sinkmap`` and writes,
under ``<lake>/reports/budget-<run>/``: the annual land + ocean sink anomaly map of the
newest year, the budget as stacked bars, the GATM history with the newest year highlighted,
the regional anomaly bars, and ``report.html`` showing them with the tables and provenance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import zarr

from carbonsink.errors import LakeError
from carbonsink.lake.flux_store import ENSEMBLE_MEDIAN
from carbonsink.lake.lake import Lake
from carbonsink.lake.sinkmap import open_sinkmap
from carbonsink.lake.table_store import read_table
from carbonsink.reference.noaa import annual_growth, gatm_annual
from carbonsink.report import figures
from carbonsink.report.page import render
from pipelines.lake.transaction import new_run_id
from pipelines.options import (
    ConfigOpt,
    LakeOpt,
    echo,
    settings,
)
from pipelines.progress import console, progress_bar
from pipelines.settings import Settings
from pipelines.stages.budget import run_budget


@dataclass
class ReportOutput:
    """Where the report went."""

    url: str
    files: list[str]
    seconds: float


def run_report(settings: Settings) -> ReportOutput:
    """Draw the figures and write the report of the lake's published budget.

    The report goes to ``reports/budget-<run>/``, ``<run>`` being the budget's own run
    (its tables' ``run``), so a budget and the report drawn from it pair by name; drawing
    the report again replaces it, file by file, atomically.

    Raises
    ------
    LakeError
        No published budget (run ``carbonsink budget`` first).
    """
    t0 = time.perf_counter()
    lake = Lake(settings.lake, settings.lake_storage)
    repo = lake.open_repo("budget")
    if repo is None:
        raise LakeError(f"the lake {lake.url} has no budget tables; run carbonsink budget first")
    store = repo.readonly_session("main").store
    budget, provenance = read_table(store, "budget")
    regions, rinfo = read_table(store, "regions_annual")
    trailing = (
        read_table(store, "budget_12m")[0]
        if "budget_12m" in zarr.open_group(store, mode="r")
        else None
    )
    run_id = str(provenance.get("run", "")) or new_run_id()
    data = str(provenance.get("data", ""))
    synthetic = bool(provenance.get("synthetic", False))
    mark = " [SYNTHETIC SAMPLE DATA]" if synthetic else ""
    sinkmap = open_sinkmap(lake)
    newest = int(budget.index.max())
    base_label = str(rinfo.get("anomaly_baseline", "")).split(" ")[0]
    b0, b1 = (int(v) for v in base_label.split("-"))
    with progress_bar() as bar:
        task = bar.add_task("report figures", total=b1 - b0 + 5)
        base_years = [y for y in range(b0, b1 + 1)]
        base = None
        for y in base_years:
            f = sinkmap.annual_mean(y)
            base = f if base is None else base + f
            bar.advance(task)
        assert base is not None
        anomaly = sinkmap.annual_mean(newest) - base / len(base_years)
        area_ok = np.isfinite(anomaly)
        anomaly[~area_ok] = np.nan
        figs = {}
        figs[f"Sink anomaly map, {newest}"] = figures.anomaly_map(
            anomaly, newest, base_label, mark=mark
        )
        bar.advance(task)
        figs["The global carbon budget"] = figures.budget_bars(
            budget, str(provenance.get("gcb_release", "")), mark=mark
        )
        bar.advance(task)
        history = gatm_annual(list(annual_growth(settings.budget.noaa_site).index))["GATM"]
        figs["Atmospheric growth (GATM)"] = figures.gatm_history(history.loc[:newest], newest)
        bar.advance(task)
        year = regions.loc[[newest]]
        anomalies = year[year["statistic"] == "anomaly"]
        figs[f"Regional anomalies, {newest}"] = figures.region_bars(
            anomalies, newest, base_label, mark=mark
        )
        bar.advance(task)
    components = ["EFOS", "ELUC", "GATM", "SOCEAN", "SLAND", "BIM"]
    table = budget[components + [f"{c}_sigma" for c in components]].copy()
    regional = (
        year.pivot_table(index=["group", "region", "flux"], columns="statistic", values="value")
        .reindex(columns=["total", "anomaly"])
        .rename(columns={"total": f"{newest} total", "anomaly": f"{newest} anomaly"})
    )
    last = budget.loc[newest]
    offsets = provenance.get("offsets_GtC_per_yr", {}).get(ENSEMBLE_MEDIAN, {})
    warning = "SYNTHETIC SAMPLE DATA, NOT THE REAL WORLD: a demonstration of the machinery. "
    headline = (
        (warning if synthetic else "")
        + f"{newest}: EFOS {last.EFOS:.2f} + ELUC {last.ELUC:.2f} = GATM {last.GATM:.2f} + "
        f"SOCEAN {last.SOCEAN:.2f} +- {last.SOCEAN_sigma:.2f} + SLAND {last.SLAND:.2f} +- "
        f"{last.SLAND_sigma:.2f} + BIM {last.BIM:.2f} +- {last.BIM_sigma:.2f} GtC/yr. "
        f"Sinks emulated by carbonsink and adjusted to {provenance.get('gcb_release')} over "
        f"{provenance.get('reference_window')}."
    )
    notes = [
        f"Drivers: {data}." if data else "",
        "Adjusted: the budget's SOCEAN and SLAND (and the trailing 12-month budgets) are the "
        "ensemble median's global sums shifted so that their mean over the reference window "
        f"equals the GCB's ({provenance.get('statistic', '')}); the offsets for the median are "
        + ", ".join(f"{k} {float(v):+.2f} GtC/yr" for k, v in offsets.items())
        + ". Unadjusted: the regional sums and the regional map, which is why the latitude "
        "bands do not add up to the budget's sinks (by those offsets); anomalies are the same "
        "either way. The per-member tables (sinks_annual, sinks_monthly) hold both.",
        f"Budget run {run_id}: its tables are under exports/budget-{run_id}/.",
    ]
    tables = {
        "Budget (GtC/yr, 1 sigma; sinks adjusted)": table,
        "Regional sums and anomalies (GtC/yr, unadjusted)": regional,
    }
    if trailing is not None and len(trailing):
        end = trailing.index[-1]
        t = trailing.iloc[-1]
        headline += (
            f" The 12 months to {end}: EFOS {t.EFOS:.2f} + ELUC {t.ELUC:.2f} = GATM "
            f"{t.GATM:.2f} + SOCEAN {t.SOCEAN:.2f} + SLAND {t.SLAND:.2f} + BIM {t.BIM:.2f} "
            f"+- {t.BIM_sigma:.2f} GtC/yr (GATM: {t.GATM_source})."
        )
        recent = trailing[components + [f"{c}_sigma" for c in components]].iloc[-12:]
        tables["Trailing 12-month budgets, newest windows (GtC/yr, 1 sigma; adjusted)"] = recent
    page = render(
        "carbonsink: land and ocean CO2 sinks and the global carbon budget" + mark,
        headline,
        figs,
        tables,
        {**provenance, **{k: v for k, v in rinfo.items() if k == "anomaly_baseline"}},
        notes=[n for n in notes if n],
        warning=synthetic,
    )
    prefix = f"reports/budget-{run_id}"
    names = ["anomaly_map.png", "budget.png", "gatm.png", "regions.png"]
    files = [
        lake.write_file(f"{prefix}/{name}", png)
        for name, png in zip(names, figs.values(), strict=True)
    ]
    files.append(lake.write_file(f"{prefix}/report.html", page.encode()))
    return ReportOutput(f"{lake.url.rstrip('/')}/{prefix}", files, time.perf_counter() - t0)


def budget_and_report(settings: Settings) -> list[tuple[str, str]]:
    """``carbonsink budget`` then ``report``; ``(label, path)`` of what a user opens."""
    budget = run_budget(settings)
    for line in budget.lines:
        console.print(line)
    report = run_report(settings)
    exports = {p.rsplit("/", 1)[1]: p for p in budget.exports}
    return [
        ("data", str(budget.provenance["data"])),
        ("sink map", Lake(settings.lake, settings.lake_storage).store_location("sinkmap").url),
        ("budget", exports["budget.csv"]),
        ("regions", exports["regions_annual.csv"]),
        ("report", next(p for p in report.files if p.endswith(".html"))),
        *[("figure", p) for p in report.files if p.endswith(".png")],
    ]


def command(lake: LakeOpt = None, config: ConfigOpt = None) -> None:
    """Draw the figures and the one-page HTML report of the lake's published budget.

    The sink anomaly map of the newest year, the budget as stacked bars, the GATM history
    and the regional anomalies, with the tables and their provenance. Example:

    \b
        carbonsink report --lake output/lake
    """
    out = run_report(settings(config, lake=lake))
    for path in out.files:
        echo(f"report: {path}")
