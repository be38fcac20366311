"""The budget from monthly totals: adjustment to the GCB, spread, identity, trailing windows."""

import numpy as np
import pandas as pd
import pytest

from carbonsink.budget.build import annual_budget, band_totals, identity_line, trailing_budget
from carbonsink.budget.core import reference_sink
from carbonsink.budget.regions import BANDS
from carbonsink.errors import ConfigError
from carbonsink.reference.gcb import packaged_release

MONTHS = pd.period_range("2018-01", "2023-12", freq="M", name="month")


def monthly(land: float, ocean: float, months=MONTHS) -> pd.DataFrame:
    """Constant totals in GtC per month (a twelfth of the annual value)."""
    return pd.DataFrame({"SLAND": land / 12, "SOCEAN": ocean / 12}, index=months)


def series() -> dict[str, pd.DataFrame]:
    return {
        "a": monthly(1.0, 2.0),
        "ensemble-median": monthly(2.0, 2.5),
        "b": monthly(3.0, 3.0),
    }


def test_the_sinks_are_adjusted_to_the_release_over_the_window():
    release = packaged_release()
    out = annual_budget(
        series(), "ensemble-median", release, (2019, 2022), "median", "gl", "persistence", None
    )
    for sink in ("SLAND", "SOCEAN"):
        ref = reference_sink(release, sink, (2019, 2022), "median")
        assert out.table.loc[2019:2022, sink].mean() == pytest.approx(ref, abs=1e-12)
        assert out.references[sink] == ref
    # Member order is kept, and the spread is that of the adjusted members (shifts cancel
    # for constant series: the spread of constants is zero).
    assert list(out.raw_annual) == ["a", "ensemble-median", "b"]
    assert out.members == ["a", "b"]
    np.testing.assert_allclose(out.table["SLAND_spread"], 0.0, atol=1e-12)
    identity = out.table.EFOS + out.table.ELUC - out.table.GATM - out.table.SOCEAN
    np.testing.assert_allclose(identity - out.table.SLAND, out.table.BIM, atol=1e-12)
    assert identity_line(out.table.iloc[-1]).startswith("EFOS ")


def test_a_map_without_the_reference_years_is_refused():
    short = {"ensemble-median": monthly(1.0, 1.0, MONTHS[:6])}
    with pytest.raises(ConfigError, match="lacks the reference year"):
        annual_budget(
            short, "ensemble-median", packaged_release(), (2019, 2022), "median", "gl",
            "persistence", None,
        )  # fmt: skip


def test_trailing_windows_use_the_annual_offsets():
    release = packaged_release()
    data = series()
    out = annual_budget(
        data, "ensemble-median", release, (2019, 2022), "median", "gl", "persistence", None
    )
    table, lines = trailing_budget(
        data, "ensemble-median", out.offsets, release, "persistence", None
    )
    assert table is not None
    # A calendar-year window of constant months equals the adjusted annual value.
    dec = pd.Period("2020-12", "M")
    assert table.loc[dec, "SLAND"] == pytest.approx(out.table.loc[2020, "SLAND"], abs=1e-12)
    assert lines[-1].startswith(f"12 months to {table.index[-1]}")


def test_global_totals_are_the_sum_of_the_bands():
    cols = pd.MultiIndex.from_tuples([(b.name, s) for b in BANDS for s in ("SLAND", "SOCEAN")])
    regional = pd.DataFrame(np.arange(len(cols) * 2.0).reshape(2, -1), columns=cols)
    total = band_totals(regional)
    assert total["SLAND"].tolist() == [
        sum(regional[(b.name, "SLAND")].iloc[i] for b in BANDS) for i in range(2)
    ]
