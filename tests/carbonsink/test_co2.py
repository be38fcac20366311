"""The packaged NOAA CO2 record."""

import numpy as np
import pandas as pd
import pytest

from carbonsink.co2 import co2_for, monthly_record
from carbonsink.errors import ConfigError


def test_record_parses_six_fields_not_the_four_header_names():
    rec = monthly_record()
    # 1979-01 global mean is 336.56 ppm; a 4-name header read would put 1979.042 there.
    assert rec[pd.Period("1979-01", freq="M")] == pytest.approx(336.56)
    # Mauna Loa fills the years before the global record.
    assert rec.index[0] == pd.Period("1958-03", freq="M")
    assert rec[pd.Period("1958-03", freq="M")] == pytest.approx(315.71)
    assert rec.index.is_monotonic_increasing and not rec.index.has_duplicates
    assert rec.min() > 300 and rec.max() < 450


def test_extrapolation_keeps_the_seasonal_cycle_and_the_recent_growth():
    rec = monthly_record()
    last = rec.index[-1]
    after = pd.period_range(last + 1, last + 24, freq="M")
    s = co2_for(after)
    assert s.extrapolated.all()
    growth = rec.iloc[-12:].mean() - rec.iloc[-24:-12].mean()
    assert 1.5 < growth < 3.5  # ppm/yr, the observed range of the last decades
    # Same calendar month a year apart differs by exactly the growth.
    np.testing.assert_allclose(s.ppm[12:] - s.ppm[:12], growth)
    inside = co2_for(rec.index[-3:])
    assert not inside.extrapolated.any()
    np.testing.assert_allclose(inside.ppm, rec.iloc[-3:].to_numpy())


def test_months_before_the_record_are_refused():
    with pytest.raises(ConfigError, match="no CO2 record before 1958-03"):
        co2_for([pd.Period("1950-01", freq="M")])
