"""The Global Carbon Budget: the official Excel workbook and its CSV exports.

Users download a new release every year, and the layout moves between releases (header
rows, units, model lists, model names, blank spacer columns, an empty year cell in the last
row of one sheet; ``data/gcb/README.md``). So the reader finds what it needs by content:

- sheets by name ("Global Carbon Budget", "Terrestrial Sink", "Ocean Sink"), ignoring others;
- the header row as the first row whose first cell is ``year`` (any case, stripped), and the
  unit from the cells above it (``GtC/yr`` or ``MtC/yr``, converted to GtC/yr);
- columns by header text, never by position; models as the columns between the release's
  own estimate (``GCB``, ``GCB unadjusted``, ``1 sigma uncertainty``) and ``Multi-model
  mean``; ocean data products after ``Model Spread (sd)`` up to their average;
- data rows until the first row with neither a year nor a value (a row with values but no
  year takes the previous year + 1).

Model names go through an alias table, so a model keeps one name across releases.
CSV exports (one file per sheet, ``<release>_global_carbon_budget.csv``,
``..._terrestrial_sink.csv``, ``..._ocean_sink.csv``) are read by the same parser.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from carbonsink.errors import ConfigError

#: Budget components as carbonsink names them, from the workbook's header text.
BUDGET_COLUMNS = {
    "fossil emissions excluding carbonation": "EFOS",
    "land-use change emissions": "ELUC",
    "atmospheric growth": "GATM",
    "ocean sink": "SOCEAN",
    "land sink": "SLAND",
    "cement carbonation sink": "SCEMENT",
    "budget imbalance": "BIM",
}

#: One name per model across releases (headers are stripped first).
ALIASES = {
    # GOBMs: long names in 2023-2024, short names from 2025
    "NEMO3.6-PISCESv2-gas (CNRM)": "CNRM",
    "FESOM-2.1-REcoM3": "FESOM-REcoM",
    "NEMO-PISCES (IPSL)": "IPSL",
    "MOM6-COBALT (Princeton)": "Princeton",
    "MRI-ESM2-21": "MRI",
    "MRI-ESM2-2": "MRI",
    "MICOM-HAMOCC (NorESM1-OCv1.2)": "NorESM",
    "NEMO-PlankTOM12": "PlankTOM",
    "MPIOM-HAMOCC6": "MPIOM",
    "ACCESS (CSIRO)": "ACCESS",
    # fCO2 products
    "MPI-SOMFFN": "VLIZ-SOMFFN",
    "OS_ETH_Gracer": "OceanSODA-ETHZv2",
    "UOEx-Watson": "UoEx-Watson",
    "UoEX-UEPFFNU (former called Watson)": "UoEx-Watson",
    # DGVMs
    "JULES": "JULES-ES",
    "LPX-Bern": "LPX",
    "Orchidee": "ORCHIDEE",
    "ORCHIDEE-v3": "ORCHIDEE",
    "ORCHIDEEv3": "ORCHIDEE",
    "OCNv2": "OCN",
    "EDv3": "ED",
}

_UNITS = {"gtc/yr": 1.0, "mtc/yr": 1e-3}
SHEETS = {
    "budget": "Global Carbon Budget",
    "land": "Terrestrial Sink",
    "ocean": "Ocean Sink",
}
#: The release packaged with carbonsink (data to 2024).
DEFAULT_RELEASE = "GCB2025v1.0"


@dataclass(frozen=True)
class GcbRelease:
    """The tables carbonsink uses from one GCB release, in GtC/yr, indexed by year.

    Attributes
    ----------
    release
        The release's name, e.g. ``GCB2024v1.0``; every figure taken from it records it.
    budget
        ``EFOS, ELUC, GATM, SOCEAN, SLAND, SCEMENT, BIM`` (EFOS excludes cement
        carbonation, whose sink is SCEMENT).
    land_models
        The release's DGVMs (S2 net land flux), one column per model.
    ocean_models
        The release's GOBMs.
    ocean_products
        The release's fCO2-based data products (NaN before they start).
    land_gcb, ocean_gcb
        The release's own SLAND and SOCEAN estimates (after its adjustments).
    """

    release: str
    budget: pd.DataFrame
    land_models: pd.DataFrame
    ocean_models: pd.DataFrame
    ocean_products: pd.DataFrame
    land_gcb: pd.Series
    ocean_gcb: pd.Series

    @property
    def years(self) -> range:
        """Years of the budget table."""
        return range(int(self.budget.index.min()), int(self.budget.index.max()) + 1)


def canonical(name: str) -> str:
    """A model's name across releases."""
    name = name.strip()
    return ALIASES.get(name, name)


def _cell(v: Any) -> str:
    return "" if v is None else str(v).strip()


def _number(v: Any) -> float:
    if v is None or (isinstance(v, str) and not v.strip()):
        return float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def parse_table(rows: Iterable[Sequence[Any]], where: str) -> tuple[pd.DataFrame, float]:
    """A year-indexed table from a sheet's rows, and the unit factor to GtC/yr.

    Raises
    ------
    ConfigError
        No header row, no unit, or years that are not contiguous.
    """
    rows = [list(r) for r in rows]
    header_at = next((i for i, r in enumerate(rows) if r and _cell(r[0]).lower() == "year"), None)
    if header_at is None:
        raise ConfigError(
            f"{where}: no header row starting with 'Year'; is this a Global Carbon Budget "
            "file of a known layout? Download the release again or pass its CSV exports"
        )
    factor = 1.0  # CSV exports carry no unit cell: they are GtC/yr (data/gcb/README.md)
    for r in reversed(rows[:header_at]):
        units = [_UNITS[c.lower()] for c in map(_cell, r) if c.lower() in _UNITS]
        if units:
            factor = units[0]
            break
        if any(_cell(c).lower().endswith("/yr") for c in r):
            raise ConfigError(f"{where}: unknown unit {r[0]!r}; expected GtC/yr or MtC/yr")
    names = [_cell(c) for c in rows[header_at]]
    keep = [j for j, n in enumerate(names) if j > 0 and n and n.lower() != "none"]
    years: list[int] = []
    values: list[list[float]] = []
    for raw in rows[header_at + 1 :]:
        r = list(raw) + [None] * (len(names) - len(raw))
        row = [_number(r[j]) for j in keep]
        year = _number(r[0])
        has_values = any(v == v for v in row)
        if year != year:
            if not has_values or not years:
                break  # the end of the table (stray cells further down are ignored)
            year = years[-1] + 1  # a row with values but an empty year cell
        years.append(int(year))
        values.append(row)
    if not years:
        raise ConfigError(f"{where}: the table under the header row holds no years")
    if years != list(range(years[0], years[0] + len(years))):
        raise ConfigError(f"{where}: the years are not contiguous ({years[0]}..{years[-1]})")
    frame = pd.DataFrame(
        values, index=pd.Index(years, name="year"), columns=[names[j] for j in keep]
    )
    return frame * factor, factor


def _select(
    frame: pd.DataFrame, where: str, kind: str
) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
    """The release's estimate, its models and (ocean) its data products."""
    cols = list(frame.columns)
    low = [c.lower() for c in cols]
    if "gcb" not in low or "multi-model mean" not in low:
        raise ConfigError(
            f"{where}: the {kind} sheet lacks a 'GCB' or 'Multi-model mean' column; "
            "unknown layout, download the release again"
        )
    own = {"gcb", "gcb unadjusted", "1 sigma uncertainty"}
    start = max(i for i, c in enumerate(low) if c in own) + 1
    mmm = low.index("multi-model mean")
    models = frame.iloc[:, start:mmm]
    spread = next((i for i, c in enumerate(low) if c.startswith("model spread")), mmm)
    products = frame.iloc[:, spread + 1 :]
    products = products.loc[
        :, [c for c in products.columns if not re.match(r"^(average|sd)\b", c.lower())]
    ]
    models = models.rename(columns=canonical)
    products = products.rename(columns=canonical)
    if models.shape[1] == 0:
        raise ConfigError(f"{where}: no model columns found in the {kind} sheet")
    return frame[cols[low.index("gcb")]], models, products


def _budget(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    found = {}
    for c in frame.columns:
        key = c.lower()
        if key in BUDGET_COLUMNS:
            found[BUDGET_COLUMNS[key]] = frame[c]
    missing = [v for v in BUDGET_COLUMNS.values() if v not in found]
    if missing:
        raise ConfigError(
            f"{where}: the budget sheet lacks {', '.join(missing)}; unknown layout, download "
            "the release again"
        )
    return pd.DataFrame(found)[list(BUDGET_COLUMNS.values())]


def release_name(path: Path) -> str:
    """``GCB2024v1.0`` from ``Global_Carbon_Budget_2024_v1.0.xlsx`` or ``GCB2025v1.0_*.csv``."""
    m = re.search(r"(20\d\d)[ _]?v?(\d+\.\d+)", path.name)
    if not m:
        raise ConfigError(
            f"cannot tell the GCB release from the file name {path.name}; keep the official "
            "name (e.g. Global_Carbon_Budget_2024_v1.0.xlsx)"
        )
    return f"GCB{m.group(1)}v{m.group(2)}"


def read_workbook(path: str | Path) -> GcbRelease:
    """Read a GCB release from its official Excel workbook.

    Raises
    ------
    ConfigError
        A missing file, a missing sheet or a layout the reader does not recognise.
    """
    import openpyxl

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"GCB workbook {path} not found; download it from globalcarbonbudget.org")
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise ConfigError(f"{path.name} is not a readable Excel workbook ({exc})") from exc
    try:
        missing = [sheet for sheet in SHEETS.values() if sheet not in wb.sheetnames]
        if missing:
            raise ConfigError(
                f"{path.name} has no sheet {missing[0]!r} (it has {', '.join(wb.sheetnames)}); "
                "unknown layout, download the release again"
            )
        tables = {
            key: parse_table(wb[sheet].iter_rows(values_only=True), f"{path.name}/{sheet}")[0]
            for key, sheet in SHEETS.items()
        }
    finally:
        wb.close()
    return _release(release_name(path), tables, path.name)


def read_csv_exports(budget_csv: str | Path) -> GcbRelease:
    """Read a GCB release from its CSV exports, named like ``GCB2025v1.0_global_carbon_budget.csv``.

    The land and ocean sheets are the files next to it ending ``_terrestrial_sink.csv`` and
    ``_ocean_sink.csv``.
    """
    path = Path(budget_csv)
    stem = path.name.removesuffix("_global_carbon_budget.csv")
    files = {
        "budget": path,
        "land": path.with_name(f"{stem}_terrestrial_sink.csv"),
        "ocean": path.with_name(f"{stem}_ocean_sink.csv"),
    }
    tables = {}
    for key, f in files.items():
        if not f.is_file():
            raise ConfigError(
                f"GCB CSV export {f} not found; export that sheet next to {path.name}"
            )
        with f.open(newline="", encoding="utf-8") as fh:
            tables[key], _ = parse_table(csv.reader(fh), f.name)
    return _release(release_name(path), tables, path.name)


def _release(name: str, tables: dict[str, pd.DataFrame], where: str) -> GcbRelease:
    budget = _budget(tables["budget"], where)
    land_gcb, land, _ = _select(tables["land"], where, "land")
    ocean_gcb, ocean, products = _select(tables["ocean"], where, "ocean")
    return GcbRelease(
        release=name,
        budget=budget,
        land_models=land,
        ocean_models=ocean,
        ocean_products=products,
        land_gcb=land_gcb.rename("SLAND"),
        ocean_gcb=ocean_gcb.rename("SOCEAN"),
    )


def packaged_release(release: str = DEFAULT_RELEASE) -> GcbRelease:
    """A release shipped with carbonsink: ``GCB2025v1.0`` (CSV) or ``GCB2024v1.0`` (workbook)."""
    root = resources.files("carbonsink").joinpath("data/gcb")
    with resources.as_file(root) as folder:
        if release == "GCB2025v1.0":
            return read_csv_exports(folder / "GCB2025v1.0_global_carbon_budget.csv")
        if release == "GCB2024v1.0":
            return read_workbook(folder / "Global_Carbon_Budget_2024_v1.0.xlsx")
    raise ConfigError(
        f"GCB release {release} is not packaged (GCB2025v1.0, GCB2024v1.0 are); pass the "
        "release's workbook with --gcb PATH"
    )


def load_release(source: str | None) -> GcbRelease:
    """A packaged release by name (default: the newest), or a workbook / CSV export by path."""
    if source is None:
        return packaged_release()
    if re.fullmatch(r"GCB20\d\dv\d+\.\d+", source):
        return packaged_release(source)
    path = Path(source)
    if path.suffix.lower() == ".xlsx":
        return read_workbook(path)
    if path.name.endswith("_global_carbon_budget.csv"):
        return read_csv_exports(path)
    raise ConfigError(
        f"unknown GCB source {source}; pass a release name (GCB2025v1.0), an .xlsx workbook or "
        "a <release>_global_carbon_budget.csv export"
    )
