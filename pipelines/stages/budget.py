"""``carbonsink budget``: from the sink map to the global carbon budget.

1. Global monthly and annual SLAND and SOCEAN of each member and of the ensemble median
   (the sink map times cell areas; GtC).
2. Bias adjustment: each series is shifted so that its mean over the reference window
   matches the GCB release's statistic (median of the per-model values by default) over
   that window; the release, window, statistic and offsets are written with the tables.
3. GATM from NOAA, EFOS and ELUC from the release (extended past it by the stated rule or
   a user series), BIM as the residual; 1-sigma uncertainties in quadrature, the sinks'
   including the ensemble spread of the adjusted members.
4. Tables (``budget``, ``budget_12m``, ``sinks_*``, ``regions_*``) in the lake's ``budget``
   store, on the run's branch, published by compare-and-swap with a tag; then exported as
   Parquet and CSV (with the provenance as JSON) under ``<lake>/exports/budget-<run>/``.
   Every table says its unit and what its drivers rest on (ERA5, or carbonsink's synthetic
   sample data) in columns, and which of its numbers are adjusted
   (:mod:`carbonsink.budget.tables`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import pandas as pd

from carbonsink.budget.build import (
    annual_budget,
    band_totals,
    identity_line,
    read_user_emissions,
    regional_tables,
    trailing_budget,
)
from carbonsink.budget.regions import RegionIndex
from carbonsink.budget.tables import GTC_PER_YEAR, member_sinks
from carbonsink.budget.totals import monthly_totals
from carbonsink.lake.features_store import snapshot_metadata
from carbonsink.lake.flux_store import ENSEMBLE_MEDIAN
from carbonsink.lake.lake import Lake
from carbonsink.lake.sinkmap import SinkMap, open_sinkmap
from carbonsink.lake.table_store import to_csv, to_parquet, write_table
from carbonsink.reference.gcb import load_release
from carbonsink.reference.noaa import RELEASE as NOAA_RELEASE
from carbonsink.reference.noaa import read_monthly
from pipelines.lake.transaction import StoreTransaction, new_run_id
from pipelines.options import (
    ConfigOpt,
    LakeOpt,
    NoaaMonthlyOpt,
    echo,
    setting,
    settings,
)
from pipelines.progress import tracked
from pipelines.settings import Settings


@dataclass
class BudgetReport:
    """What a budget run published."""

    store: str
    exports: list[str]
    budget: pd.DataFrame
    provenance: dict[str, Any]
    seconds: float
    lines: list[str] = field(default_factory=list)


def sink_totals(sinkmap: SinkMap) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Monthly global totals (GtC per month) and the median's regional sums.

    The totals cover every group but the spread, in the sink map's order; the regional
    sums are by ``(region, sink)``. The median is read once, for the regional sums; its
    global totals are those of the latitude bands, which partition the globe.
    """
    names = sinkmap.member_names
    out = {}
    with tracked("global sink totals", len(names)) as progress:
        for done, name in enumerate(names, 1):
            out[name] = monthly_totals(sinkmap.reader(name), sinkmap.months_of(name), sinkmap.area)
            progress(done, len(names))
    with tracked("regional sums", 1) as progress:
        regional = monthly_totals(
            sinkmap.reader(ENSEMBLE_MEDIAN), sinkmap.months, sinkmap.area,
            RegionIndex(sinkmap.layout.grid),
        )  # fmt: skip
        progress(1, 1)
    out[ENSEMBLE_MEDIAN] = band_totals(regional)
    return {name: out[name] for name in sinkmap.names}, regional


def run_budget(settings: Settings) -> BudgetReport:
    """Build and publish the budget tables from the lake's sink map.

    Raises
    ------
    carbonsink.errors.CarbonsinkError
        Bad input, with a one-line message; nothing is then published.
    """
    t0 = time.perf_counter()
    b = settings.budget
    lake = Lake(settings.lake, settings.lake_storage)
    release = load_release(b.gcb)
    user = read_user_emissions(b.emissions) if b.emissions else None
    trend = read_monthly(b.noaa_monthly) if b.noaa_monthly else None
    window = (b.reference_start, b.reference_end)
    sinkmap = open_sinkmap(lake)
    monthly, regional_monthly = sink_totals(sinkmap)
    annual = annual_budget(
        monthly, ENSEMBLE_MEDIAN, release, window, b.statistic, b.noaa_site, b.extension, user
    )
    budget, offsets, noaa_years = annual.table, annual.offsets, annual.years
    trailing, trailing_lines = trailing_budget(
        monthly, ENSEMBLE_MEDIAN, offsets, release, b.extension, user, trend
    )
    origin = sinkmap.origin
    provenance = {
        "data": origin.label,
        "synthetic": origin.synthetic,
        "gcb_release": release.release,
        "reference_window": f"{window[0]}-{window[1]}",
        "statistic": f"{b.statistic} of the release's per-model values",
        "reference_GtC_per_yr": annual.references,
        "offsets_GtC_per_yr": offsets,
        "gatm": f"NOAA {b.noaa_site} Jan-Dec growth x 2.124 GtC/ppm ({NOAA_RELEASE})",
        "gatm_12m": "NOAA 12-month growth of the monthly trend x 2.124 GtC/ppm, from "
        + (b.noaa_monthly or f"the packaged record ({NOAA_RELEASE})")
        + "; Mauna Loa's where the global trend ends (see GATM_source)",
        "efos_eluc": f"{release.release}; after it: {b.extension}"
        + ("; user series from " + b.emissions if b.emissions else ""),
        "sinks": (
            f"carbonsink sink map (ensemble median), adjusted to {release.release} "
            f"({b.statistic} of its per-model values) over {window[0]}-{window[1]}"
        ),
        "members": annual.members,
        "sinkmap_snapshot": sinkmap.snapshot,
        "variant": sinkmap.variant,
    }
    regions_monthly, regions_annual, region_info = regional_tables(
        regional_monthly, (b.baseline_start, b.baseline_end)
    )
    adjusted_note = "SOCEAN and SLAND adjusted to the GCB over the reference window"
    both_note = "unadjusted and adjusted (the annual offset; a twelfth of it each month)"
    unadjusted_note = "unadjusted (the GCB gives no regional reference); anomalies are the same"
    frames: dict[str, tuple[pd.DataFrame, dict[str, Any]]] = {
        "budget": (budget, {"units": GTC_PER_YEAR, "values": adjusted_note}),
        "regions_annual": (regions_annual, {**region_info, "values": unadjusted_note}),
        "regions_monthly": (regions_monthly, {**region_info, "values": unadjusted_note}),
        "sinks_annual": (
            member_sinks(annual.raw_annual, offsets, monthly=False),
            {"values": both_note},
        ),
        "sinks_monthly": (member_sinks(monthly, offsets, monthly=True), {"values": both_note}),
    }
    if trailing is not None:
        frames["budget_12m"] = (
            trailing,
            {"units": "GtC/yr over the 12 months to each window_end", "values": adjusted_note},
        )
    for frame, attrs in frames.values():
        if "unit" not in frame.columns:
            frame["unit"] = GTC_PER_YEAR
        frame["data"] = origin.label
        attrs.update(provenance)
    run_id = new_run_id()
    with StoreTransaction(lake, "budget", run_id) as tx:
        session = tx.session()
        for name, (frame, attrs) in frames.items():
            write_table(session.store, name, frame, {**attrs, "run": run_id})
        session.commit(
            f"budget {noaa_years[0]}-{noaa_years[-1]}",
            metadata=snapshot_metadata(run=run_id, stage="budget", **provenance),
        )
        tx.publish()
    exports = []
    for name, (frame, attrs) in frames.items():
        prefix = f"exports/budget-{run_id}/{name}"
        exports.append(lake.write_file(f"{prefix}.parquet", to_parquet(frame, attrs)))
        exports.append(lake.write_file(f"{prefix}.csv", to_csv(frame)))
    exports.append(
        lake.write_file(
            f"exports/budget-{run_id}/provenance.json",
            json.dumps(provenance, indent=2, default=str).encode(),
        )
    )
    last = budget.iloc[-1]
    lines = [
        *([f"data: {origin.label}"] if origin.synthetic else []),
        f"budget {noaa_years[0]}-{noaa_years[-1]} ({release.release}, reference "
        f"{window[0]}-{window[1]}, {b.statistic}); {noaa_years[-1]}: " + identity_line(last),
        *trailing_lines,
    ]
    return BudgetReport(
        store=lake.store_location("budget").url,
        exports=exports,
        budget=budget,
        provenance=provenance,
        seconds=time.perf_counter() - t0,
        lines=lines,
    )


def command(
    lake: LakeOpt = None,
    gcb: Annotated[
        str | None,
        setting(
            "--gcb",
            path="budget.gcb",
            help="GCB release name (GCB2025v1.0, GCB2024v1.0), workbook .xlsx or "
            "<release>_global_carbon_budget.csv (default: the newest packaged).",
        ),
    ] = None,
    reference_start: Annotated[
        int | None,
        setting(
            "--reference-start",
            path="budget.reference_start",
            help="First year of the bias-adjustment window.",
        ),
    ] = None,
    reference_end: Annotated[
        int | None,
        setting(
            "--reference-end",
            path="budget.reference_end",
            help="Last year of the bias-adjustment window.",
        ),
    ] = None,
    statistic: Annotated[
        str | None,
        setting(
            "--statistic",
            path="budget.statistic",
            help="GCB per-model statistic to match: median or mean.",
        ),
    ] = None,
    extension: Annotated[
        str | None,
        setting(
            "--extension",
            path="budget.extension",
            help="EFOS/ELUC after the release: persistence or trend.",
        ),
    ] = None,
    emissions: Annotated[
        str | None,
        setting(
            "--emissions",
            path="budget.emissions",
            help="CSV of year,EFOS,ELUC (GtC/yr) overriding the release.",
        ),
    ] = None,
    noaa_monthly: NoaaMonthlyOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Build the global carbon budget from the lake's sink map.

    SLAND and SOCEAN from the emulated map (adjusted to the GCB release over the reference
    window), GATM from NOAA, EFOS and ELUC from the release, BIM as the residual, with 1-sigma
    uncertainties. Tables go to the lake (published in one transaction) and are exported as
    Parquet and CSV. Example:

    \b
        carbonsink budget --lake output/lake --reference-start 2019 --reference-end 2022
    """
    s = settings(
        config, lake=lake,
        budget={"gcb": gcb, "reference_start": reference_start, "reference_end": reference_end,
                "statistic": statistic, "extension": extension, "emissions": emissions,
                "noaa_monthly": noaa_monthly},
    )  # fmt: skip
    report = run_budget(s)
    for line in report.lines:
        echo(line)
    echo(f"tables: {report.store}")
    for path in report.exports:
        echo(f"export: {path}")
