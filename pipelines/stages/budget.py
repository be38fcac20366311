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
from functools import cached_property
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
from carbonsink.budget.regions import BANDS, REGIONS, RegionIndex
from carbonsink.budget.tables import GTC_PER_MONTH, GTC_PER_YEAR, member_sinks, regional
from carbonsink.budget.totals import SINKS, annual_totals, monthly_totals
from carbonsink.budget.trailing import (
    LENGTH,
    member_spread,
    trailing_ends,
    trailing_sums,
    window_emissions,
)
from carbonsink.config import BudgetSettings, Settings
from carbonsink.errors import ConfigError, LakeError
from carbonsink.lake.features_store import (
    DataOrigin,
    data_origin,
    open_published_features,
    read_attrs,
    read_static,
    snapshot_metadata,
)
from carbonsink.lake.flux_store import (
    ENSEMBLE_MEDIAN,
    ENSEMBLE_SPREAD,
    FluxLayout,
    member_months,
    members,
    read_flux,
)
from carbonsink.lake.lake import Lake
from carbonsink.lake.table_store import to_csv, to_parquet, write_table
from carbonsink.reference.gcb import GcbRelease, load_release
from carbonsink.reference.noaa import RELEASE as NOAA_RELEASE
from carbonsink.reference.noaa import (
    WindowGatm,
    annual_growth,
    gatm_annual,
    read_monthly,
    window_gatm,
)
from pipelines.lake.transaction import StoreTransaction, new_run_id
from pipelines.progress import progress_bar


@dataclass
class BudgetReport:
    """What a budget run published."""

    store: str
    exports: list[str]
    budget: pd.DataFrame
    provenance: dict[str, Any]
    seconds: float
    lines: list[str] = field(default_factory=list)


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


@dataclass
class SinkMap:
    """The published sink map: store, layout, cell areas, groups and mapped months."""

    store: Any
    layout: FluxLayout
    area: np.ndarray
    names: list[str]
    months: list[pd.Period]
    snapshot: str
    variant: str
    origin: DataOrigin

    @cached_property
    def regional(self) -> pd.DataFrame:
        """Monthly sums (GtC) of the ensemble median by ``(region, sink)``: one read of it."""
        with progress_bar() as bar:
            task = bar.add_task("regional sums", total=1)
            out = monthly_totals(
                self.reader(ENSEMBLE_MEDIAN), self.months, self.area, RegionIndex(self.layout.grid)
            )
            bar.advance(task)
        return out

    def reader(self, name: str) -> Any:
        """``read(month, flux)`` of one group."""

        def read(month: pd.Period, flux: str) -> np.ndarray:
            return read_flux(self.store, name, flux, self.layout.month_index(month))

        return read


def open_sinkmap(lake: Lake) -> SinkMap:
    """The lake's published sink map.

    Raises
    ------
    LakeError
        No published sink map, or one without mapped months.
    """
    import zarr

    repo = lake.open_repo("sinkmap")
    if repo is None:
        raise LakeError(f"the lake {lake.url} has no sink map; run carbonsink infer first")
    store = repo.readonly_session("main").store
    layout = FluxLayout.from_attrs(read_attrs(store))
    features, _ = open_published_features(lake)
    names = [m for m in members(store) if m != ENSEMBLE_SPREAD]
    if ENSEMBLE_MEDIAN not in names:
        raise LakeError("the sink map has no ensemble median; run carbonsink infer again")
    months = list(member_months(store, layout, ENSEMBLE_MEDIAN))
    if not months:
        raise LakeError("the sink map holds no mapped month; run carbonsink infer first")
    variant = str(zarr.open_group(store, path=names[0], mode="r").attrs.get("variant", ""))
    return SinkMap(
        store, layout, read_static(features.store, "cell_area"), names, months,
        repo.lookup_branch("main"), variant, data_origin(features.store, months),
    )  # fmt: skip


def sink_totals(sinkmap: SinkMap) -> dict[str, pd.DataFrame]:
    """Monthly global totals (GtC per month) of every group of the sink map but the spread.

    The ensemble median is read once, for the regional sums; its global totals are the sums
    of the latitude bands, which partition the globe.
    """
    out = {}
    members_only = [n for n in sinkmap.names if n != ENSEMBLE_MEDIAN]
    with progress_bar() as bar:
        task = bar.add_task("global sink totals", total=len(members_only))
        for name in members_only:
            have = set(member_months(sinkmap.store, sinkmap.layout, name))
            use = [m for m in sinkmap.months if m in have]
            out[name] = monthly_totals(sinkmap.reader(name), use, sinkmap.area)
            bar.advance(task)
    out[ENSEMBLE_MEDIAN] = pd.DataFrame(
        {s: sum(sinkmap.regional[(r.name, s)] for r in BANDS) for s in SINKS.values()}
    )
    return {name: out[name] for name in sinkmap.names}


def regional_tables(
    sinkmap: SinkMap, baseline: tuple[int, int]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Regional sums of the ensemble median: monthly and annual, with anomalies.

    Long tables (:func:`carbonsink.budget.tables.regional`): totals in GtC per month / per
    year, unadjusted, and anomalies against the baseline years the map covers (monthly
    anomalies against the calendar month's mean).
    """
    monthly = sinkmap.regional
    keep = [(r.name, s) for r in REGIONS for s in r.sinks]
    monthly = monthly.loc[:, keep]
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


def trailing_budget(
    monthly: dict[str, pd.DataFrame],
    offsets: dict[str, dict[str, float]],
    member_names: list[str],
    release: GcbRelease,
    b: BudgetSettings,
    user: pd.DataFrame | None,
    trend: pd.Series | None = None,
) -> tuple[pd.DataFrame | None, list[str]]:
    """The trailing 12-month budget for every mapped window NOAA's records reach.

    ``trend`` is a user's current NOAA global monthly trend (default: the packaged one).
    Returns the table (None when no window has both 12 mapped months and GATM) and lines
    that say what it holds, or why its newest window is missing.
    """
    med = monthly[ENSEMBLE_MEDIAN]
    ends = trailing_ends(med.index)
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
    emis = window_emissions(emissions(release, years, b.extension, user), keep)
    sinks = list(SINKS.values())
    sums = {}
    for name in [ENSEMBLE_MEDIAN, *member_names]:
        if set(keep) <= set(trailing_ends(monthly[name].index)):
            s = trailing_sums(monthly[name][sinks], keep)
            sums[name] = s + pd.Series(offsets[name])[sinks]
    spread = member_spread({m: sums[m] for m in member_names if m in sums}, sinks)
    sigma = {"SOCEAN": SOCEAN_SIGMA, "SLAND": SLAND_SIGMA}
    table = assemble(
        keep, emis,
        pd.DataFrame(
            {"GATM": [gatm[e].gatm for e in keep], "GATM_sigma": [gatm[e].sigma for e in keep]},
            index=pd.PeriodIndex(keep, freq="M"),
        ),
        {s: sums[ENSEMBLE_MEDIAN][s] for s in ("SOCEAN", "SLAND")},
        {s: np.sqrt(sigma[s] ** 2 + spread[s] ** 2) for s in ("SOCEAN", "SLAND")},
    )  # fmt: skip
    table.index.name = "window_end"
    table["SOCEAN_spread"] = spread["SOCEAN"].to_numpy()
    table["SLAND_spread"] = spread["SLAND"].to_numpy()
    table["GATM_source"] = [gatm[e].source for e in keep]
    last, end = table.iloc[-1], keep[-1]
    lines.append(
        f"12 months to {end} ({end - (LENGTH - 1)}..{end}): EFOS {last.EFOS:.2f} + ELUC "
        f"{last.ELUC:.2f} = GATM {last.GATM:.2f} + SOCEAN {last.SOCEAN:.2f} + SLAND "
        f"{last.SLAND:.2f} + BIM {last.BIM:.2f} +- {last.BIM_sigma:.2f} GtC/yr"
    )
    return table, lines


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
    monthly = sink_totals(sinkmap)
    info = {"sinkmap_snapshot": sinkmap.snapshot, "variant": sinkmap.variant}
    member_names = [m for m in monthly if m != ENSEMBLE_MEDIAN]
    references = {
        sink: reference_sink(release, sink, window, b.statistic) for sink in SINKS.values()
    }
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
    years = sorted(set(annual[ENSEMBLE_MEDIAN].index))
    if not years:
        raise LakeError(
            "the sink map holds no complete year; map all twelve months of a year "
            "(carbonsink infer --start YYYY-01 --end YYYY-12)"
        )
    spread = (
        pd.concat({m: annual[m] for m in member_names}, axis=1).T.groupby(level=1).std(ddof=1).T
        if len(member_names) > 1
        else pd.DataFrame(0.0, index=years, columns=list(SINKS.values()))
    )
    sigmas = {
        "SOCEAN": np.sqrt(SOCEAN_SIGMA**2 + spread["SOCEAN"] ** 2),
        "SLAND": np.sqrt(SLAND_SIGMA**2 + spread["SLAND"] ** 2),
    }
    last_noaa = int(annual_growth(b.noaa_site).index.max())
    noaa_years = [y for y in years if y <= last_noaa]
    if not noaa_years:
        raise ConfigError(
            f"NOAA's annual growth does not reach the mapped years {years[0]}..{years[-1]}; "
            "update carbonsink's NOAA data"
        )
    gatm = gatm_annual(noaa_years, b.noaa_site)
    emis = emissions(release, noaa_years, b.extension, user)
    med = annual[ENSEMBLE_MEDIAN]
    budget = assemble(
        noaa_years, emis, gatm, {s: med[s] for s in ("SOCEAN", "SLAND")},
        {s: sigmas[s] for s in ("SOCEAN", "SLAND")},
    )  # fmt: skip
    budget["SOCEAN_spread"] = spread["SOCEAN"].loc[noaa_years].to_numpy()
    budget["SLAND_spread"] = spread["SLAND"].loc[noaa_years].to_numpy()
    trailing, trailing_lines = trailing_budget(
        monthly, offsets, member_names, release, b, user, trend
    )
    origin = sinkmap.origin
    provenance = {
        "data": origin.label,
        "synthetic": origin.synthetic,
        "gcb_release": release.release,
        "reference_window": f"{window[0]}-{window[1]}",
        "statistic": f"{b.statistic} of the release's per-model values",
        "reference_GtC_per_yr": references,
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
        "members": member_names,
        **info,
    }
    regions_monthly, regions_annual, region_info = regional_tables(
        sinkmap, (b.baseline_start, b.baseline_end)
    )
    adjusted_note = "SOCEAN and SLAND adjusted to the GCB over the reference window"
    both_note = "unadjusted and adjusted (the annual offset; a twelfth of it each month)"
    unadjusted_note = "unadjusted (the GCB gives no regional reference); anomalies are the same"
    frames: dict[str, tuple[pd.DataFrame, dict[str, Any]]] = {
        "budget": (budget, {"units": GTC_PER_YEAR, "values": adjusted_note}),
        "regions_annual": (regions_annual, {**region_info, "values": unadjusted_note}),
        "regions_monthly": (regions_monthly, {**region_info, "values": unadjusted_note}),
        "sinks_annual": (member_sinks(raw_annual, offsets, monthly=False), {"values": both_note}),
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
        f"{window[0]}-{window[1]}, {b.statistic}); {noaa_years[-1]}: EFOS {last.EFOS:.2f} + "
        f"ELUC {last.ELUC:.2f} = GATM {last.GATM:.2f} + SOCEAN {last.SOCEAN:.2f} + SLAND "
        f"{last.SLAND:.2f} + BIM {last.BIM:.2f} +- {last.BIM_sigma:.2f} GtC/yr",
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
