"""Months and windows of months, the unit of work of carbonsink."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from carbonsink.errors import ConfigError

_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")


def parse_month(value: str | pd.Period, *, what: str = "month") -> pd.Period:
    """Parse ``YYYY-MM`` into a monthly :class:`pandas.Period`.

    Raises
    ------
    ConfigError
        With a one-line message if the text is not a valid month.
    """
    if isinstance(value, pd.Period):
        return value.asfreq("M")
    text = str(value).strip()
    if not _MONTH_RE.match(text):
        raise ConfigError(f"{what} {value!r} is not a month; write it as YYYY-MM, e.g. 2024-01")
    try:
        return pd.Period(text, freq="M")
    except (ValueError, pd.errors.OutOfBoundsDatetime) as exc:
        raise ConfigError(
            f"{what} {value!r} is not a valid month ({exc}); use YYYY-MM with MM 01-12"
        ) from exc


@dataclass(frozen=True)
class MonthWindow:
    """An inclusive range of months, e.g. ``2015-01 .. 2024-12``."""

    start: pd.Period
    end: pd.Period

    @classmethod
    def parse(cls, start: str | pd.Period, end: str | pd.Period) -> MonthWindow:
        """Build a window from two ``YYYY-MM`` strings, checking their order."""
        s = parse_month(start, what="start month")
        e = parse_month(end, what="end month")
        if e < s:
            raise ConfigError(
                f"end month {e} is before start month {s}; swap them or fix the window"
            )
        return cls(s, e)

    @property
    def months(self) -> pd.PeriodIndex:
        """Every month of the window, in order."""
        return pd.period_range(self.start, self.end, freq="M")

    def __len__(self) -> int:
        return len(self.months)

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"

    @property
    def first_instant(self) -> pd.Timestamp:
        """00:00 on the first day of the window."""
        return self.start.start_time

    @property
    def end_instant(self) -> pd.Timestamp:
        """00:00 on the first day after the window (exclusive end)."""
        return (self.end + 1).start_time


def month_starts(months: pd.PeriodIndex) -> np.ndarray:
    """``datetime64[ns]`` stamps at 00:00 on the first day of each month."""
    return months.to_timestamp(how="start").values.astype("datetime64[ns]")
