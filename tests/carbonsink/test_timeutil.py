import pandas as pd
import pytest

from carbonsink.errors import ConfigError
from carbonsink.timeutil import MonthWindow, month_starts, parse_month


def test_parse_and_window():
    w = MonthWindow.parse("2015-11", "2016-02")
    assert len(w) == 4 and str(w) == "2015-11..2016-02"
    assert w.first_instant == pd.Timestamp("2015-11-01")
    assert w.end_instant == pd.Timestamp("2016-03-01")
    assert month_starts(w.months).dtype == "datetime64[ns]"


@pytest.mark.parametrize("bad", ["2015-13", "2015-1", "15-01", "2015/01", "", "2015-00"])
def test_bad_months_name_the_format(bad):
    with pytest.raises(ConfigError, match="YYYY-MM"):
        parse_month(bad)


def test_reversed_window():
    with pytest.raises(ConfigError, match="before start month"):
        MonthWindow.parse("2016-01", "2015-12")
