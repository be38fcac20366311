"""How far a source reaches: the newest complete month, final and preliminary."""

import numpy as np
import pandas as pd
import pytest

from carbonsink.errors import SourceError
from carbonsink.sources import ArcoEra5Source
from carbonsink.sources.common import (
    ValidRange,
    axis_range,
    final_months,
    newest_complete_month,
)

T = pd.Timestamp


@pytest.mark.parametrize(
    ("stop", "newest"),
    [
        ("2026-11-01", "2026-10"),  # ARCO: midnight after the last day
        ("2026-10-31 23:00:01", "2026-10"),  # an hourly axis ending at 23:00
        ("2026-10-31", "2026-09"),  # the last day is missing
        ("2026-10-15", "2026-09"),
    ],
)
def test_newest_complete_month(stop, newest):
    valid = ValidRange(T("2026-01-01"), T("2026-06-01"), T(stop))
    assert str(newest_complete_month(valid)) == newest
    assert str(final_months(valid)) == "2026-05"


def test_no_complete_month():
    valid = ValidRange(T("2026-10-03"), T("2026-10-20"), T("2026-11-01"))
    assert newest_complete_month(valid) is None and final_months(valid) is None


def test_axis_range_opens_one_more_step():
    hourly = np.arange("2015-06-01T00", "2015-08-01T00", dtype="datetime64[h]")
    assert axis_range(hourly, url="x").stop_era5t == T("2015-08-01")
    monthly = pd.date_range("2015-01-01", "2016-12-01", freq="MS").values
    r = axis_range(monthly, url="x")
    assert r.stop == r.stop_era5t == T("2017-01-01")
    assert str(newest_complete_month(r)) == "2016-12"
    with pytest.raises(SourceError, match="empty time axis"):
        axis_range(np.array([], dtype="datetime64[ns]"), url="x")


def test_arco_attributes_give_the_final_and_preliminary_ends(monthly_store, hourly_store):
    valid = ArcoEra5Source(monthly_store).available()
    assert str(newest_complete_month(valid)) == "2016-12"
    assert str(final_months(valid)) == "2016-10"  # two ERA5T months
    assert str(newest_complete_month(ArcoEra5Source(hourly_store).available())) == "2015-07"
