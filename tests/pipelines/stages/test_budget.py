"""carbonsink budget on a real lake whose sink map is written with known fluxes (4 deg)."""

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from carbonsink.budget.core import reference_sink
from carbonsink.budget.regions import BASINS, CONTINENTS
from carbonsink.budget.totals import KG_PER_GT
from carbonsink.errors import ConfigError, LakeError
from carbonsink.lake.features_store import (
    SYNTHETIC_LABEL,
    open_published_features,
    read_static,
)
from carbonsink.lake.flux_store import ENSEMBLE_MEDIAN, ENSEMBLE_SPREAD, write_member_flags
from carbonsink.lake.lake import Lake
from carbonsink.lake.sinkmap import prepare_store, sinkmap_layout
from carbonsink.lake.table_store import read_table
from carbonsink.reference.gcb import packaged_release
from carbonsink.reference.noaa import GTC_PER_PPM, annual_growth
from pipelines.lake.transaction import StoreTransaction
from pipelines.stages.budget import run_budget
from pipelines.stages.report import run_report
from tests.tiny_lake import settings

pytestmark = pytest.mark.integration
#: Uniform fluxes (kg C m-2 s-1) of three members; the ensemble median is the middle one.
LAND = {"a": 1e-9, "b": 2e-9, "c": 4e-9}
OCEAN = {"a": 3e-10, "b": 2e-10, "c": 1e-10}
WINDOW = {"reference_start": 2015, "reference_end": 2015}


@pytest.fixture(scope="module")
def mapped_template(lake, tmp_path_factory):
    """A copy of the tiny lake with a sink map of 2015-01..2016-12, written directly."""
    root = tmp_path_factory.mktemp("budget") / "lake"
    shutil.copytree(lake, root)
    lk = Lake(str(root))
    features, flayout = open_published_features(lk)
    lf = read_static(features.store, "land_fraction")
    layout = sinkmap_layout(flayout)
    months = list(pd.period_range("2015-01", "2016-12", freq="M"))
    with StoreTransaction(lk, "sinkmap", "test") as tx:
        session = tx.session()
        groups = {m: {"kind": "member", "variant": "mean-teacher"} for m in LAND}
        groups[ENSEMBLE_MEDIAN] = {"kind": "median"}
        groups[ENSEMBLE_SPREAD] = {"kind": "spread"}
        prepare_store(session, layout, groups)
        import zarr

        spread = {
            "land": np.std(list(LAND.values()), ddof=1),
            "ocean": np.std(list(OCEAN.values()), ddof=1),
        }
        for name in [*LAND, ENSEMBLE_MEDIAN, ENSEMBLE_SPREAD]:
            if name == ENSEMBLE_SPREAD:
                land, ocean = spread["land"] * (lf > 0), spread["ocean"] * (lf < 1)
            else:
                land = LAND.get(name, LAND["b"]) * (lf > 0)
                ocean = OCEAN.get(name, OCEAN["b"]) * (lf < 1)
            for month in months:
                i = layout.month_index(month)
                zarr.open_array(session.store, path=f"{name}/land_flux", mode="r+")[i] = land
                zarr.open_array(session.store, path=f"{name}/ocean_flux", mode="r+")[i] = ocean
            write_member_flags(session.store, layout, name, months)
        session.commit("known fluxes")
        tx.publish()
    area = read_static(features.store, "cell_area")
    return root, area, lf


@pytest.fixture
def mapped_lake(mapped_template, tmp_path):
    """A fresh copy of the mapped lake for each test."""
    root, area, lf = mapped_template
    shutil.copytree(root, tmp_path / "lake")
    return tmp_path / "lake", area, lf


def totals(flux, area, mask, year):
    seconds = sum(p.days_in_month for p in pd.period_range(f"{year}-01", f"{year}-12", freq="M"))
    return flux * float((area * mask).sum()) * seconds * 86400 / KG_PER_GT


def test_budget_from_the_sink_map(mapped_lake):
    root, area, lf = mapped_lake
    report = run_budget(settings(root, budget=WINDOW))
    b = report.budget
    assert list(b.index) == [2015, 2016]
    release = packaged_release()
    # the adjustment: the median's reference-window mean equals the GCB statistic
    for sink in ("SLAND", "SOCEAN"):
        assert b.at[2015, sink] == pytest.approx(reference_sink(release, sink, (2015, 2015)))
    # anomalies survive the adjustment: 2016 has one day more than 2015
    raw = {y: totals(LAND["b"], area, lf > 0, y) for y in (2015, 2016)}
    assert b.at[2016, "SLAND"] - b.at[2015, "SLAND"] == pytest.approx(raw[2016] - raw[2015])
    # (rel=1e-6 below: the sink map stores float32)
    offset = report.provenance["offsets_GtC_per_yr"][ENSEMBLE_MEDIAN]["SLAND"]
    assert b.at[2015, "SLAND"] - offset == pytest.approx(raw[2015], rel=1e-6)
    # GATM from NOAA, EFOS/ELUC from the release, the identity and the uncertainties
    assert b.at[2016, "GATM"] == pytest.approx(annual_growth().at[2016, "growth"] * GTC_PER_PPM)
    net = release.budget["EFOS"] - release.budget["SCEMENT"]
    assert b.at[2016, "EFOS"] == pytest.approx(net[2016])
    gap = b.EFOS + b.ELUC - (b.GATM + b.SOCEAN + b.SLAND + b.BIM)
    assert gap.abs().max() < 1e-12
    # the spread of the members after each is adjusted: their disagreement on the change
    # since the reference window (the level is the release's, with its own uncertainty)
    change = [totals(v, area, lf > 0, 2016) - totals(v, area, lf > 0, 2015) for v in LAND.values()]
    spread = np.std(change, ddof=1)
    assert b.at[2016, "SLAND_spread"] == pytest.approx(spread, rel=1e-6)
    assert b.at[2016, "SLAND_sigma"] == pytest.approx(np.hypot(0.5, spread), rel=1e-6)
    # published with its provenance, tagged, exported
    lk = Lake(str(root))
    repo = lk.open_repo("budget")
    stored, attrs = read_table(repo.readonly_session("main").store, "budget")
    np.testing.assert_allclose(stored["BIM"], b["BIM"])
    assert attrs["gcb_release"] == "GCB2025v1.0" and attrs["reference_window"] == "2015-2015"
    assert any(t.startswith("run-") for t in repo.list_tags())
    parquet = next(p for p in report.exports if p.endswith("budget.parquet"))
    table = pq.read_table(parquet.removeprefix("file://"))
    assert json.loads(table.schema.metadata[b"carbonsink"])["gcb_release"] == "GCB2025v1.0"
    csv = pd.read_csv(
        next(p for p in report.exports if p.endswith("budget.csv")).removeprefix("file://")
    )
    assert list(csv["year"]) == [2015, 2016]
    # the tiny lake rests on sample data: every table and export says so, with its unit
    assert set(csv["data"]) == {SYNTHETIC_LABEL} and set(csv["unit"]) == {"GtC/yr"}
    assert report.provenance["synthetic"] is True
    regions_csv = pd.read_csv(
        next(p for p in report.exports if p.endswith("regions_annual.csv")).removeprefix("file://")
    )
    assert {"region", "flux", "statistic", "value", "unit"} <= set(regions_csv.columns)
    assert set(regions_csv["data"]) == {SYNTHETIC_LABEL}
    # per-member sinks, long: unadjusted and adjusted, the monthly offset a twelfth of the
    # annual one, so twelve months add up to the adjusted year
    monthly, mattrs = read_table(repo.readonly_session("main").store, "sinks_monthly")
    med = monthly[(monthly["member"] == ENSEMBLE_MEDIAN) & (monthly["flux"] == "SLAND")]
    assert len(med) == 24 and set(med["unit"]) == {"GtC per month"}
    in_2015 = med[[p.year == 2015 for p in med.index]]
    assert in_2015["adjusted"].sum() == pytest.approx(b.at[2015, "SLAND"], rel=1e-9)
    assert in_2015["unadjusted"].sum() == pytest.approx(raw[2015], rel=1e-6)
    assert "unadjusted and adjusted" in mattrs["values"]
    annual_rows, _ = read_table(repo.readonly_session("main").store, "sinks_annual")
    a = annual_rows[(annual_rows["member"] == ENSEMBLE_MEDIAN) & (annual_rows["flux"] == "SLAND")]
    np.testing.assert_allclose(a["adjusted"], b["SLAND"])
    assert set(a["unit"]) == {"GtC/yr"}
    # regions, long: continents add up to the (unadjusted) global sink; anomalies vs the
    # baseline; every row says its unit, its group and that it is unadjusted
    regions, rattrs = read_table(repo.readonly_session("main").store, "regions_annual")
    assert list(regions.columns[:7]) == [
        "region", "group", "flux", "statistic", "value", "unit", "adjustment"
    ]  # fmt: skip
    assert set(regions["unit"]) == {"GtC/yr"} and set(regions["adjustment"]) == {"unadjusted"}

    def value(region, flux, statistic, year):
        row = regions[(regions["region"] == region) & (regions["flux"] == flux)
                      & (regions["statistic"] == statistic)]  # fmt: skip
        return float(row.loc[year, "value"])

    land = sum(value(r.name, "SLAND", "total", 2016) for r in CONTINENTS)
    assert land == pytest.approx(raw[2016], rel=1e-6)
    ocean = sum(value(r.name, "SOCEAN", "total", 2015) for r in BASINS)
    assert ocean == pytest.approx(totals(OCEAN["b"], area, lf < 1, 2015), rel=1e-6)
    assert rattrs["anomaly_baseline"] == "2015-2016 (asked 2015-2022)"
    assert "unadjusted" in rattrs["values"]
    amazon = [value("Amazon", "SLAND", "anomaly", y) for y in (2015, 2016)]
    assert sum(amazon) == pytest.approx(0.0, abs=1e-12) and amazon[1] > 0  # leap year
    assert set(regions.loc[2016, "group"]) == {"latitude band", "continent", "ocean basin",
                                               "hotspot"}  # fmt: skip


def test_report_of_the_published_budget(mapped_lake):
    root, _, _ = mapped_lake
    s = settings(root, budget=WINDOW)
    with pytest.raises(LakeError, match="no budget tables; run carbonsink budget"):
        run_report(s)
    budget = run_budget(s)
    out = run_report(s)
    # the report is filed under the budget's own run: the pair shares one id
    run = next(p for p in budget.exports if p.endswith("budget.csv")).split("/")[-2]
    assert out.url.endswith(f"reports/{run}")
    names = sorted(p.rsplit("/", 1)[1] for p in out.files)
    assert names == ["anomaly_map.png", "budget.png", "gatm.png", "regions.png", "report.html"]
    for p in out.files:
        data = open(p.removeprefix("file://"), "rb").read()  # noqa: SIM115
        if p.endswith(".png"):
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        else:
            page = data.decode()
            assert page.count("data:image/png;base64,") == 4
            assert "2016: EFOS" in page and "GCB2025v1.0" in page and "Amazon" in page
            assert "Unadjusted: the regional sums" in page
            assert "SYNTHETIC SAMPLE DATA, NOT THE REAL WORLD" in page


def test_budget_with_user_emissions_and_the_trend_rule(mapped_lake, tmp_path):
    root, _, _ = mapped_lake
    user = tmp_path / "emissions.csv"
    user.write_text("year,EFOS\n2016,11.5\n")
    report = run_budget(settings(root, budget={**WINDOW, "emissions": str(user)}))
    assert report.budget.at[2016, "EFOS"] == 11.5
    assert report.budget.at[2016, "EFOS_source"] == "user series"
    assert report.budget.at[2015, "EFOS_source"] == "GCB2025v1.0"


@pytest.mark.parametrize(
    ("budget", "error", "match"),
    [
        ({"reference_start": 2019, "reference_end": 2022}, ConfigError, "lacks the reference"),
        ({**WINDOW, "gcb": "GCB2001v1.0"}, ConfigError, "not packaged"),
        ({**WINDOW, "emissions": "/nonexistent/e.csv"}, ConfigError, "not found"),
    ],
)
def test_bad_budget_input_publishes_nothing(mapped_lake, budget, error, match):
    root, _, _ = mapped_lake
    with pytest.raises(error, match=match):
        run_budget(settings(root, budget=budget))
    assert Lake(str(root)).open_repo("budget") is None


def test_budget_needs_a_sink_map(lake, tmp_path):
    root = tmp_path / "lake"
    shutil.copytree(lake, root)
    with pytest.raises(LakeError, match="no sink map; run carbonsink infer"):
        run_budget(settings(root, budget=WINDOW))


def test_export_a_window_as_netcdf_and_zarr(mapped_lake, tmp_path):
    import xarray as xr

    from pipelines.stages.export import run_export

    root, _, lf = mapped_lake
    s = settings(root, start="2016-01", end="2016-03")
    nc = tmp_path / "sinks.nc"
    report = run_export(s, str(nc), "netcdf")
    assert report.months == 3 and report.members[:3] == ["a", "b", "c"]
    with xr.open_dataset(nc, engine="h5netcdf") as ds:
        assert ds["land_flux"].dims == ("member", "time", "lat", "lon")
        assert ds["land_flux"].attrs["units"] == "kg m-2 s-1"
        a = ds["land_flux"].sel(member="a").isel(time=1).to_numpy()
        np.testing.assert_allclose(a[lf > 0], LAND["a"], rtol=1e-6)
        assert str(ds["time"].to_numpy()[0])[:10] == "2016-01-01"
        assert ds.attrs["carbonsink_synthetic"] == 1 and "SYNTHETIC" in ds.attrs["title"]
        assert ds.attrs["carbonsink_data"] == SYNTHETIC_LABEL
    zarr_out = tmp_path / "sinks.zarr"
    run_export(s, str(zarr_out), "zarr")
    with xr.open_zarr(zarr_out, consolidated=False) as z:
        med = z["ocean_flux"].sel(member=ENSEMBLE_MEDIAN).isel(time=0).to_numpy()
        np.testing.assert_allclose(med[lf < 1], OCEAN["b"], rtol=1e-6)
    with pytest.raises(ConfigError, match="exists; choose a new path"):
        run_export(s, str(nc), "netcdf")
    with pytest.raises(LakeError, match="lacks 2017-01"):
        run_export(settings(root, start="2016-12", end="2017-01"), str(tmp_path / "x.nc"), "netcdf")
    with pytest.raises(ConfigError, match="unknown export format"):
        run_export(s, str(tmp_path / "y.csv"), "csv")
    assert not (tmp_path / "x.nc").exists()
