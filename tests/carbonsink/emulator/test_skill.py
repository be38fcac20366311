"""Skill figures: totals in PgC, relative errors, per-cell R^2."""

import numpy as np
import pandas as pd
import pytest

from carbonsink.emulator.skill import SkillAccumulator, month_total_pgc
from carbonsink.grid import ModelGrid


def test_month_total_in_pgc():
    g = ModelGrid(10.0)
    flux = np.full(g.shape, 1e-9)  # kg C m-2 s-1 everywhere
    total = month_total_pgc(flux, g.cell_area, pd.Period("2021-02", freq="M"))
    expected = 1e-9 * 4 * np.pi * 6_371_000.0**2 * 28 * 86400 / 1e12
    assert total == pytest.approx(expected, rel=1e-12)


def test_perfect_and_imperfect_emulators():
    g = ModelGrid(30.0)
    rng = np.random.default_rng(0)
    perfect, biased = SkillAccumulator(g.cell_area), SkillAccumulator(g.cell_area)
    for m in pd.period_range("2021-01", "2022-12", freq="M"):
        t = rng.normal(1e-8, 3e-9, g.shape)
        t[0, 0] = np.nan  # a cell without labels is left out of both sides
        perfect.add(m, t, t)
        biased.add(m, t, t * 1.05)
    p, b = perfect.summary(), biased.summary()
    assert p["years"] == [2021, 2022]
    assert p["mean_relative_error"] == 0 and p["r2_median"] == 1.0
    assert b["mean_relative_error"] == pytest.approx(0.05, rel=1e-9)
    assert 0.5 < b["r2_median"] < 1.0
    assert np.isnan(biased.r2_map()[0, 0])
