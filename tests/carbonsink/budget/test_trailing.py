"""Trailing 12-month budgets: windows, sums, month-weighted emissions."""

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsink.budget.core import emissions
from carbonsink.budget.totals import annual_totals
from carbonsink.budget.trailing import (
    member_spread,
    trailing_ends,
    trailing_sums,
    window_emissions,
    year_weights,
)
from carbonsink.reference.gcb import packaged_release

months = st.integers(min_value=0, max_value=40).map(lambda k: pd.Period("2015-01", "M") + k)


@settings(max_examples=60, deadline=None)
@given(st.sets(months, max_size=40))
def test_trailing_windows_are_exactly_the_fully_mapped_ones(have):
    ends = trailing_ends(have)
    for e in ends:
        assert all(e - k in have for k in range(12))
    for m in have:
        if all(m - k in have for k in range(12)):
            assert m in ends
    assert ends == sorted(ends)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=0, max_value=11),
    st.integers(min_value=0, max_value=2**31 - 1),
)
def test_trailing_sums_conserve_the_monthly_totals(n_years, skew, seed):
    """A December window equals the calendar year; consecutive windows differ by two months."""
    idx = pd.period_range("2000-01", periods=12 * n_years + skew, freq="M")
    rng = np.random.default_rng(seed)
    monthly = pd.DataFrame({"SLAND": rng.normal(size=len(idx))}, index=idx)
    ends = trailing_ends(idx)
    sums = trailing_sums(monthly, ends)
    annual = annual_totals(monthly)
    for year in annual.index:
        end = pd.Period(f"{year}-12", "M")
        assert sums.at[end, "SLAND"] == pytest.approx(annual.at[year, "SLAND"])
    for a, b in itertools.pairwise(ends):
        step = monthly.at[b, "SLAND"] - monthly.at[a - 11, "SLAND"]
        assert sums.at[b, "SLAND"] - sums.at[a, "SLAND"] == pytest.approx(step, abs=1e-9)


@given(months)
def test_year_weights_share_the_window(end):
    w = year_weights(end)
    assert sum(w.values()) == pytest.approx(1.0)
    assert w[end.year] == pytest.approx(end.month / 12)
    assert len(w) == (1 if end.month == 12 else 2)


def test_window_emissions_weight_the_years_by_their_months():
    r = packaged_release("GCB2025v1.0")
    annual = emissions(r, [2022, 2023])
    ends = [pd.Period("2023-03", "M"), pd.Period("2023-12", "M")]
    t = window_emissions(annual, ends).table
    a = annual.table
    mar = 0.75 * a.at[2022, "EFOS"] + 0.25 * a.at[2023, "EFOS"]
    assert t.at[ends[0], "EFOS"] == pytest.approx(mar)
    assert t.at[ends[1], "ELUC"] == pytest.approx(a.at[2023, "ELUC"])
    assert t.at[ends[1], "ELUC_sigma"] == pytest.approx(a.at[2023, "ELUC_sigma"])
    assert "2022: GCB2025v1.0" in t.at[ends[0], "EFOS_source"]


def test_member_spread():
    idx = pd.PeriodIndex(["2020-12"], freq="M")
    sums = {
        "a": pd.DataFrame({"SLAND": [1.0], "SOCEAN": [2.0]}, index=idx),
        "b": pd.DataFrame({"SLAND": [3.0], "SOCEAN": [2.0]}, index=idx),
    }
    s = member_spread(sums, ["SLAND", "SOCEAN"])
    assert s.at[idx[0], "SLAND"] == pytest.approx(np.sqrt(2.0))
    assert s.at[idx[0], "SOCEAN"] == 0.0
    assert (member_spread({"a": sums["a"]}, ["SLAND"]) == 0.0).all().all()
