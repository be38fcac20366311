"""The budget identity, GCB reproduction, extension rules and the bias adjustment."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonsink.budget.core import (
    adjust,
    assemble,
    check_identity,
    emissions,
    reference_sink,
)
from carbonsink.errors import ConfigError
from carbonsink.reference.gcb import packaged_release


@pytest.mark.parametrize("name", ["GCB2024v1.0", "GCB2025v1.0"])
def test_fed_the_gcb_components_the_budget_reproduces_its_imbalance(name):
    r = packaged_release(name)
    years = list(r.years)
    b = r.budget
    gatm = pd.DataFrame({"GATM": b["GATM"], "GATM_sigma": 0.02})
    table = assemble(
        years, emissions(r, years), gatm, {"SOCEAN": b["SOCEAN"], "SLAND": b["SLAND"]},
        {"SOCEAN": 0.4, "SLAND": 0.5},
    )  # fmt: skip
    assert len(table) == len(years)
    np.testing.assert_allclose(table["BIM"], b["BIM"].loc[years], atol=1e-3, rtol=0)
    assert (table["EFOS_source"] == name).all()
    # quadrature of the components
    expected = np.sqrt((0.05 * table["EFOS"]) ** 2 + 0.7**2 + 0.02**2 + 0.4**2 + 0.5**2)
    np.testing.assert_allclose(table["BIM_sigma"], expected, rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(*(st.floats(-20, 20, allow_nan=False) for _ in range(5))),
        min_size=1,
        max_size=8,
    )
)
def test_the_identity_holds_in_every_row(rows):
    years = list(range(2000, 2000 + len(rows)))
    a = np.array(rows)
    r = packaged_release("GCB2025v1.0")
    user = pd.DataFrame({"EFOS": a[:, 0], "ELUC": a[:, 1]}, index=years)
    gatm = pd.DataFrame({"GATM": a[:, 2], "GATM_sigma": 0.1}, index=years)
    sinks = {"SOCEAN": pd.Series(a[:, 3], years), "SLAND": pd.Series(a[:, 4], years)}
    t = assemble(years, emissions(r, years, user=user), gatm, sinks, {"SOCEAN": 0.4, "SLAND": 0.5})
    lhs = t["EFOS"] + t["ELUC"]
    rhs = t["GATM"] + t["SOCEAN"] + t["SLAND"] + t["BIM"]
    assert np.abs(lhs - rhs).max() <= 1e-12 * max(1.0, np.abs(a).max())
    assert (t["EFOS_source"] == "user series").all()


def test_years_after_the_release_follow_the_stated_rule():
    r = packaged_release("GCB2025v1.0")
    net = r.budget["EFOS"] - r.budget["SCEMENT"]
    e = emissions(r, [2024, 2025, 2026]).table
    assert e.at[2025, "EFOS"] == e.at[2026, "EFOS"] == pytest.approx(net[2024])
    assert e.at[2026, "EFOS_source"] == "GCB2025v1.0, 2024 persisted"
    t = emissions(r, [2025], rule="trend").table
    slope, icept = np.polyfit(np.arange(2020, 2025.0), net.loc[2020:2024].to_numpy(), 1)
    assert t.at[2025, "EFOS"] == pytest.approx(slope * 2025 + icept)
    assert "linear trend" in t.at[2025, "EFOS_source"]
    with pytest.raises(ConfigError, match="unknown extension rule"):
        emissions(r, [2025], rule="guess")
    with pytest.raises(ConfigError, match="starts in 1959"):
        emissions(r, [1900])


def test_reference_and_adjustment():
    r = packaged_release("GCB2025v1.0")
    window = (2019, 2022)
    per_model = r.land_models.loc[2019:2022].mean()
    assert reference_sink(r, "SLAND", window) == pytest.approx(per_model.median())
    assert reference_sink(r, "SLAND", window, "mean") == pytest.approx(per_model.mean())
    ocean = pd.concat([r.ocean_models, r.ocean_products], axis=1).loc[2019:2022].mean()
    assert reference_sink(r, "SOCEAN", window) == pytest.approx(ocean.median())
    emulated = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], index=range(2018, 2024))
    adjusted, offset = adjust(emulated, 10.0, window)
    assert adjusted.loc[2019:2022].mean() == pytest.approx(10.0)
    assert offset == pytest.approx(10.0 - 3.5)
    np.testing.assert_allclose(np.diff(adjusted), np.diff(emulated))  # anomalies kept
    with pytest.raises(ConfigError, match="lacks the reference year"):
        adjust(emulated.drop(2020), 10.0, window)
    with pytest.raises(ConfigError, match="not the reference window"):
        reference_sink(r, "SLAND", (2019, 2030))
    with pytest.raises(ConfigError, match="use median or mean"):
        reference_sink(r, "SLAND", window, "mode")


def test_missing_components_and_broken_identities_are_caught():
    r = packaged_release("GCB2025v1.0")
    gatm = pd.DataFrame({"GATM": [5.0], "GATM_sigma": [0.1]}, index=[2020])
    sinks = {"SOCEAN": pd.Series([3.0], [2020]), "SLAND": pd.Series([], dtype=float)}
    with pytest.raises(ConfigError, match="no SLAND for 2020"):
        assemble([2020], emissions(r, [2020]), gatm, sinks, {"SOCEAN": 0.4, "SLAND": 0.5})
    bad = pd.DataFrame({c: [1.0] for c in ["EFOS", "ELUC", "GATM", "SOCEAN", "SLAND", "BIM"]})
    with pytest.raises(ValueError, match="identity fails"):
        check_identity(bad)
