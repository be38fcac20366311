"""The GCB reader: packaged releases, and workbooks whose layout moves."""

import numpy as np
import openpyxl
import pytest

from carbonsink.errors import ConfigError
from carbonsink.reference.gcb import (
    canonical,
    load_release,
    packaged_release,
    parse_table,
    read_workbook,
)


@pytest.mark.parametrize(
    ("release", "first", "last", "dgvms", "gobms", "products"),
    [("GCB2024v1.0", 1959, 2023, 20, 10, 9), ("GCB2025v1.0", 1959, 2024, 22, 10, 9)],
)
def test_packaged_releases(release, first, last, dgvms, gobms, products):
    r = packaged_release(release)
    assert r.release == release and r.years == range(first, last + 1)
    assert r.land_models.shape == (last - first + 1, dgvms)
    assert r.ocean_models.shape[1] == gobms and r.ocean_products.shape[1] == products
    b = r.budget
    gap = b.EFOS + b.ELUC - b.GATM - b.SOCEAN - b.SLAND - b.SCEMENT - b.BIM
    assert gap.abs().max() < 1e-12  # the release's own identity
    # one name per model across releases
    assert {"CNRM", "IPSL", "Princeton", "ACCESS"} <= set(r.ocean_models.columns)
    assert "JULES-ES" in r.land_models.columns and "ORCHIDEE" in r.land_models.columns
    assert r.land_gcb.loc[first:last].notna().all()


def test_known_values_of_both_releases():
    r24, r25 = packaged_release("GCB2024v1.0"), packaged_release("GCB2025v1.0")
    assert r24.budget.at[2023, "GATM"] == pytest.approx(5.926, abs=1e-3)
    assert r25.budget.at[2024, "BIM"] == pytest.approx(-1.69186306041634, abs=1e-12)
    # ocean products start in 1990 except LDEO-HPD and Jena-MLS
    p = r25.ocean_products
    assert np.isnan(p.at[1980, "JMA-MLR"]) and np.isfinite(p.at[1980, "LDEO-HPD"])
    assert load_release(None).release == "GCB2025v1.0"
    assert load_release("GCB2024v1.0").release == "GCB2024v1.0"


def _sheet(wb, title, unit_row, header, rows, unit="GtC/yr"):
    ws = wb.create_sheet(title)
    ws.cell(1, 2, "Notes and citations live up here in the real workbooks")
    ws.cell(unit_row, 1, unit)
    for j, h in enumerate(header, start=1):
        if h is not None:
            ws.cell(unit_row + 1, j, h)
    for i, r in enumerate(rows, start=unit_row + 2):
        for j, v in enumerate(r, start=1):
            if v is not None:
                ws.cell(i, j, v)
    return ws


def _workbook(path, *, budget_unit="GtC/yr", scale=1.0, blank_last_year=False, stray=False):
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    wb.create_sheet("Export Summary")  # third-party copies carry extra sheets
    years = [2000, 2001, 2002]
    head = ["Year", "fossil emissions excluding carbonation", "land-use change emissions",
            "atmospheric growth", "ocean sink", "land sink", "cement carbonation sink",
            "budget imbalance", "fossil emissions including carbonation"]  # fmt: skip
    rows = []
    for k, y in enumerate(years):
        efos, eluc, gatm, so, sl, sc = 7 + k, 1.5, 4.0, 2.0, 2.5 - k, 0.1
        rows.append([y, *(scale * v for v in (efos, eluc, gatm, so, sl, sc)),
                     scale * (efos + eluc - gatm - so - sl - sc), scale * (efos - sc)])  # fmt: skip
    if blank_last_year:
        rows[-1][0] = None
    ws = _sheet(wb, "Global Carbon Budget", 12, head, rows, unit=budget_unit)
    if stray:
        ws.cell(900, 1, "stray")
        ws.cell(950, 3, 1.0)
    land_head = ["Year ", "GCB", None, "CABLE-POP ", "JULES", "Orchidee", None,
                 "Multi-model mean", "Model Spread (sd)"]  # fmt: skip
    land = [[y, 2.0, None, 1.0, 2.0, 3.0, None, 2.0, 1.0] for y in years]
    _sheet(wb, "Terrestrial Sink", 30, land_head, land)
    ocean_head = ["year", "GCB", "1 sigma uncertainty", None, "NEMO-PISCES (IPSL)",
                  "ACCESS (CSIRO)", None, "Multi-model mean", "Model Spread (sd)", None,
                  "MPI-SOMFFN", "Average data-products (excl. Watson.)",
                  "sd data-products (excl. Watson.)"]  # fmt: skip
    ocean = [[y, 2.0, 0.4, None, 1.5, 2.5, None, 2.0, 0.5, None, 2.2, 2.2, 0.0] for y in years]
    _sheet(wb, "Ocean Sink", 5, ocean_head, ocean)
    wb.save(path)
    return path


def test_reader_finds_tables_by_content(tmp_path):
    r = read_workbook(_workbook(tmp_path / "Global_Carbon_Budget_2031_v1.0.xlsx", stray=True))
    assert r.release == "GCB2031v1.0" and r.years == range(2000, 2003)
    assert list(r.land_models.columns) == ["CABLE-POP", "JULES-ES", "ORCHIDEE"]
    assert list(r.ocean_models.columns) == ["IPSL", "ACCESS"]
    assert list(r.ocean_products.columns) == ["VLIZ-SOMFFN"]
    assert r.budget.at[2002, "SLAND"] == pytest.approx(0.5)


def test_reader_converts_megatonnes_and_infers_a_missing_last_year(tmp_path):
    path = _workbook(
        tmp_path / "Global_Carbon_Budget_2031_v1.0.xlsx", budget_unit="MtC/yr", scale=1000.0,
        blank_last_year=True,
    )  # fmt: skip
    r = read_workbook(path)
    assert list(r.budget.index) == [2000, 2001, 2002]
    assert r.budget.at[2002, "EFOS"] == pytest.approx(9.0)


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([["GtC/yr"], ["Jahr", "a"], [2000, 1.0]], "no header row starting with 'Year'"),
        ([["PgC/yr"], ["Year", "a"], [2000, 1.0]], "unknown unit"),
        ([["GtC/yr"], ["Year", "a"], [2000, 1.0], [2002, 1.0]], "not contiguous"),
        ([["GtC/yr"], ["Year", "a"]], "holds no years"),
    ],
)
def test_bad_tables_are_refused(rows, match):
    with pytest.raises(ConfigError, match=match):
        parse_table(rows, "test")


def test_unknown_layouts_and_files_are_refused(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "Global Carbon Budget"
    path = tmp_path / "Global_Carbon_Budget_2031_v1.0.xlsx"
    wb.save(path)
    with pytest.raises(ConfigError, match="has no sheet 'Terrestrial Sink'"):
        read_workbook(path)
    with pytest.raises(ConfigError, match="not found"):
        read_workbook(tmp_path / "missing.xlsx")
    with pytest.raises(ConfigError, match="unknown GCB source"):
        load_release(str(tmp_path / "budget.txt"))
    with pytest.raises(ConfigError, match="not packaged"):
        load_release("GCB2019v1.0")
    assert canonical(" LPJ-GUESS ") == "LPJ-GUESS" and canonical("OCNv2") == "OCN"
