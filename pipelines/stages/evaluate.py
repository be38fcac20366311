"""``carbonsink evaluate``: the skill report of the trained emulators on held-out years.

Every emulator in the ``models`` store predicts every held-out month over the whole globe
at the model grid (tiles with halos, as in production), and is compared with its member's
labels: relative error of the global annual land and ocean totals, and per-cell R^2 of the
monthly series, for each member, for the ensemble median, and for the supervised-only
baselines when they were trained. The report (JSON, Markdown and two PNGs) is written under
``<lake>/reports/skill-<run>/`` and the figures into each checkpoint's metadata.
"""

from __future__ import annotations

import io
import json
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from carbonsink.emulator.base import Emulator
from carbonsink.emulator.checkpoint import (
    json_safe,
    list_checkpoints,
    load_checkpoint,
    update_metrics,
)
from carbonsink.emulator.inputs import StaticFields, feature_channels, month_channels
from carbonsink.emulator.skill import SkillAccumulator
from carbonsink.emulator.tiles import predict_global
from carbonsink.errors import ConfigError, LakeError
from carbonsink.lake.features_store import open_published_features, read_static, snapshot_metadata
from carbonsink.lake.flux_store import (
    ENSEMBLE_MEDIAN as MEDIAN,
)
from carbonsink.lake.flux_store import (
    FLUXES,
    ensemble_median,
    member_months,
    open_labels,
    read_flux,
)
from carbonsink.lake.lake import Lake
from pipelines.lake.transaction import StoreTransaction, new_run_id
from pipelines.options import (
    ConfigOpt,
    HoldoutEndOpt,
    HoldoutStartOpt,
    LakeOpt,
    echo,
    settings,
)
from pipelines.progress import progress_bar
from pipelines.settings import Settings

GOAL_RELATIVE_ERROR = 0.02
GOAL_R2 = 0.9


@dataclass
class EvaluateReport:
    """Where the skill report went and its headline figures."""

    report_url: str
    files: list[str]
    skill: dict[str, Any]
    seconds: float
    lines: list[str] = field(default_factory=list)


def _domain_mask(pred: np.ndarray, land_fraction: np.ndarray) -> np.ndarray:
    out = pred.copy()
    out[0][land_fraction <= 0] = np.nan
    out[1][land_fraction >= 1] = np.nan
    return out


def run_evaluate(settings: Settings) -> EvaluateReport:
    """Evaluate every emulator of the lake on the held-out window.

    Raises
    ------
    carbonsink.errors.CarbonsinkError
        No models, no labels for the held-out months, or models that do not fit the data.
    """
    t0 = time.perf_counter()
    lake = Lake(settings.lake, settings.lake_storage)
    features, layout = open_published_features(lake)
    labels, flayout = open_labels(lake)
    repo = lake.open_repo("models")
    if repo is None:
        raise LakeError(f"the lake {lake.url} has no models store; run carbonsink train first")
    models = repo.readonly_session("main")
    found = list_checkpoints(models.store)
    if not found:
        raise LakeError("the models store holds no emulator; run carbonsink train first")
    emulators: dict[tuple[str, str], Emulator] = {
        (v, m): load_checkpoint(models.store, m, v, grid=layout.grid, drivers=layout.drivers)
        for v, m in found
    }
    members = sorted({m for _, m in found})
    holdout = settings.emulator.holdout
    months = list(holdout.months)
    for m in members:
        have = set(member_months(labels.store, flayout, m))
        missing = [mo for mo in months if mo not in have]
        if missing:
            raise ConfigError(
                f"member {m} has no labels for held-out month(s) {missing[0]}..{missing[-1]}; "
                "choose a held-out window inside the labelled months (--holdout-start/--end)"
            )
    channels = feature_channels(next(iter(emulators.values())).metadata.channels)
    if any(feature_channels(e.metadata.channels) != channels for e in emulators.values()):
        raise LakeError(
            "the models store mixes emulators trained on different inputs; retrain them together"
        )
    input_group = _input_groups(emulators)
    area = read_static(features.store, "cell_area")
    drivers = sorted({d for e in emulators.values() for d in e.metadata.drivers})
    statics = StaticFields.from_store(features.store, layout.grid, drivers)
    lf = statics.fields["land_fraction"]
    variants = sorted({v for v, _ in found})
    keys = [(v, m) for v, m in found] + [(v, MEDIAN) for v in variants if len(members) > 1]
    acc = {(k, f): SkillAccumulator(area) for k in keys for f in FLUXES}
    rng = np.random.default_rng(settings.emulator.seed)
    scatter: dict[str, list[np.ndarray]] = defaultdict(list)
    map_month = months[len(months) // 2]
    maps: dict[str, np.ndarray] = {}
    tile = (layout.tiling.nlat, layout.tiling.nlon)
    with progress_bar() as bar:
        task = bar.add_task(f"skill on {holdout}", total=len(months))

        def read(month: pd.Period) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            index = layout.month_index(month)
            raw = month_channels(features.store, channels, index, month, statics)
            targets = {
                m: np.stack([read_flux(labels.store, m, f, index) for f in FLUXES]) for m in members
            }
            return raw, targets

        # Read the next month while this one is predicted: decompression overlaps the
        # forward passes (a sixth of the time per month).
        pool = ThreadPoolExecutor(1)
        ahead = pool.submit(read, months[0])
        for n, month in enumerate(months):
            raw, targets = ahead.result()
            if n + 1 < len(months):
                ahead = pool.submit(read, months[n + 1])
            preds: dict[tuple[str, str], np.ndarray] = {}
            prepared: dict[int, np.ndarray] = {}
            by_group = sorted(emulators.items(), key=lambda kv: input_group[kv[0]])
            for (v, m), emu in by_group:
                group = input_group[(v, m)]
                if group not in prepared:
                    prepared = {group: emu.prepare(raw, month.month)}  # one member at a time
                x = prepared[group]
                preds[(v, m)] = _domain_mask(
                    predict_global(emu.predict_numpy, x, emu.halo, tile, batch=4), lf
                )
            for v in variants:
                if len(members) > 1:
                    preds[(v, MEDIAN)] = ensemble_median([preds[(v, m)] for m in members])
            target_median = ensemble_median(list(targets.values()))
            for pkey, pred in preds.items():
                target = target_median if pkey[1] == MEDIAN else targets[pkey[1]]
                for k, f in enumerate(FLUXES):
                    acc[(pkey, f)].add(month, target[k], pred[k])
            # A random sample of cells for the scatter plot, and one month's maps.
            main = ("mean-teacher", MEDIAN if len(members) > 1 else members[0])
            ref = target_median if main[1] == MEDIAN else targets[main[1]]
            for k, f in enumerate(FLUXES):
                ok = np.flatnonzero(np.isfinite(ref[k]) & np.isfinite(preds[main][k]))
                pick = rng.choice(ok, size=min(1500, ok.size), replace=False)
                scatter[f].append(np.stack([ref[k].ravel()[pick], preds[main][k].ravel()[pick]]))
            if month == map_month:
                maps = {"target": ref, "emulated": preds[main]}
            bar.advance(task)
        pool.shutdown()
    skill = _summarise(acc, keys)
    run_id = new_run_id()
    files = _write_report(lake, run_id, skill, holdout, maps, map_month, scatter, layout.grid)
    with StoreTransaction(lake, "models", run_id) as tx:
        session = tx.session()
        for v, m in found:
            update_metrics(session.store, m, v, {"holdout": str(holdout), **skill[v][m]})
        session.commit("skill", metadata=snapshot_metadata(run=run_id, stage="evaluate"))
        tx.publish()
    report_url = f"{lake.url.rstrip('/')}/reports/skill-{run_id}"
    return EvaluateReport(report_url, files, skill, time.perf_counter() - t0, _lines(skill))


def _input_groups(emulators: dict[tuple[str, str], Emulator]) -> dict[tuple[str, str], int]:
    """Emulators that read identical inputs share a group number.

    Both variants of a member are trained on the same normalisation and baseline, so their
    inputs are prepared once (normalising the global inputs cost as much as the forward pass).
    """
    groups: list[Emulator] = []
    out = {}
    for key, emu in emulators.items():
        for n, other in enumerate(groups):
            if (
                other.metadata.channels == emu.metadata.channels
                and other.metadata.normalisation == emu.metadata.normalisation
                and (other.baseline is None) == (emu.baseline is None)
                and (
                    emu.baseline is None
                    or np.array_equal(other.baseline.fields, emu.baseline.fields, equal_nan=True)  # type: ignore[union-attr]
                )
            ):
                out[key] = n
                break
        else:
            out[key] = len(groups)
            groups.append(emu)
    return out


def _summarise(
    acc: dict[tuple[tuple[str, str], str], SkillAccumulator], keys: list[tuple[str, str]]
) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for v, m in keys:
        out[v][m] = {f: acc[((v, m), f)].summary() for f in FLUXES}
    return dict(out)


def _lines(skill: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    lines = []
    for v, by_member in skill.items():
        for m, s in by_member.items():
            parts = []
            for f in FLUXES:
                d = s[f]
                parts.append(
                    f"{f.split('_')[0]}: annual total error {100 * d['mean_relative_error']:.2f} % "
                    f"({', '.join(f'{t:.2f}' for t in d['target_pgc_per_year'])} PgC/yr target), "
                    f"median cell R2 {d['r2_median']:.3f}"
                )
            lines.append(f"{m} ({v}): " + "; ".join(parts))
    return lines


def _markdown(skill: dict[str, dict[str, dict[str, Any]]], holdout: Any) -> str:
    rows = [
        f"# Emulator skill on held-out months {holdout}",
        "",
        f"Goals: relative error of the global annual total below {100 * GOAL_RELATIVE_ERROR:.0f} %"
        f", median per-cell monthly R2 above {GOAL_R2}.",
        "",
        "| variant | member | flux | target PgC/yr | emulated PgC/yr | mean rel. error | "
        "median R2 | area with R2 > 0.9 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v, by_member in skill.items():
        for m, s in by_member.items():
            for f in FLUXES:
                d = s[f]
                rows.append(
                    f"| {v} | {m} | {f} | "
                    f"{' / '.join(f'{t:.3f}' for t in d['target_pgc_per_year'])} | "
                    f"{' / '.join(f'{t:.3f}' for t in d['emulated_pgc_per_year'])} | "
                    f"{100 * d['mean_relative_error']:.2f} % | {d['r2_median']:.3f} | "
                    f"{100 * d['r2_fraction_above_0_9']:.0f} % |"
                )
    return "\n".join(rows) + "\n"


def _write_report(
    lake: Lake,
    run_id: str,
    skill: dict[str, Any],
    holdout: Any,
    maps: dict[str, np.ndarray],
    map_month: pd.Period,
    scatter: dict[str, list[np.ndarray]],
    grid: Any,
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prefix = f"reports/skill-{run_id}"
    files: dict[str, bytes] = {
        "skill.json": json.dumps(
            json_safe({"holdout": str(holdout), "skill": skill}), indent=2, allow_nan=False
        ).encode(),
        "skill.md": _markdown(skill, holdout).encode(),
    }
    to_g = 1e3 * 86400 * 365.25  # kg C m-2 s-1 -> g C m-2 yr-1
    fig, axes = plt.subplots(2, 2, figsize=(13, 6.5), constrained_layout=True)
    extent = (-180.0, 180.0, -90.0, 90.0)
    for row, (k, f) in enumerate(zip((0, 1), FLUXES, strict=True)):
        t = maps["target"][k] * to_g
        lim = float(np.nanpercentile(np.abs(t), 98)) or 1.0
        for col, name in enumerate(("target", "emulated")):
            ax = axes[row, col]
            im = ax.imshow(maps[name][k] * to_g, origin="lower", extent=extent, cmap="RdBu",
                           vmin=-lim, vmax=lim)  # fmt: skip
            ax.set_title(f"{f} {name}, {map_month} (g C m-2 yr-1, + = uptake)")
        fig.colorbar(im, ax=axes[row, :], shrink=0.8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    files["map.png"] = buf.getvalue()
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), constrained_layout=True)
    for ax, f in zip(axes, FLUXES, strict=True):
        pts = np.concatenate(scatter[f], axis=1) * to_g
        ax.scatter(pts[0], pts[1], s=2, alpha=0.3)
        lo, hi = np.nanpercentile(pts, [0.5, 99.5])
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("target (g C m-2 yr-1)")
        ax.set_ylabel("emulated (g C m-2 yr-1)")
        ax.set_title(f"{f}: cells x held-out months (sample)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    files["scatter.png"] = buf.getvalue()
    return [lake.write_file(f"{prefix}/{name}", data) for name, data in files.items()]


def command(
    lake: LakeOpt = None,
    holdout_start: HoldoutStartOpt = None,
    holdout_end: HoldoutEndOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Skill report of the trained emulators on the held-out months.

    Relative error of the global annual land and ocean totals and per-cell monthly R2, per
    member, for the ensemble median and for the supervised-only baselines; written to
    LAKE/reports/skill-<run>/ (skill.json, skill.md, map.png, scatter.png).
    """
    s = settings(
        config, lake=lake, emulator={"holdout_start": holdout_start, "holdout_end": holdout_end}
    )
    report = run_evaluate(s)
    for line in report.lines:
        echo(line)
    echo(f"evaluated in {report.seconds:.0f} s")
    for f in report.files:
        echo(f"report: {f}")
