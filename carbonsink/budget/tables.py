"""The budget's per-member and regional tables in long (tidy) form, units on every row.

Many series (members x sinks, regions x sinks x statistics) go into long tables: one row per
value, its identifiers in columns (``member`` or ``region``, ``flux``, ``statistic``), the
value, and its ``unit``, so that a data lake or a data frame library takes them as they are
and nothing hides in a column name.

Adjustment. The budget's SLAND and SOCEAN are each member's global sums shifted by one
offset per sink so that the reference window matches the GCB (:func:`carbonsink.budget.core
.adjust`). The per-member tables carry both the ``unadjusted`` sums and the ``adjusted`` ones
(monthly: the annual offset spread evenly over the twelve months, so that any twelve
consecutive months add up to the trailing budget's sinks). The regional tables are
unadjusted: the GCB gives no regional reference, and spreading a global offset over regions
would invent one. Their anomalies are the same adjusted or not, the offset being constant.
"""

from __future__ import annotations

import pandas as pd

from carbonsink.budget.regions import region

#: Units of the tables' values.
GTC_PER_YEAR = "GtC/yr"
GTC_PER_MONTH = "GtC per month"
#: Human names of the region kinds, in the order figures and tables show them.
GROUPS = {
    "band": "latitude band",
    "continent": "continent",
    "basin": "ocean basin",
    "hotspot": "hotspot",
}


def member_sinks(
    totals: dict[str, pd.DataFrame], offsets: dict[str, dict[str, float]], *, monthly: bool
) -> pd.DataFrame:
    """Global sinks of every member, unadjusted and adjusted, one row per value.

    Parameters
    ----------
    totals
        Per member (and the ensemble median), a table of ``SLAND`` and ``SOCEAN`` indexed
        by year (GtC/yr) or month (GtC per month).
    offsets
        Per member, the adjustment of each sink (GtC/yr).
    monthly
        Whether ``totals`` are monthly: the annual offset is then spread over 12 months.

    Returns
    -------
    pandas.DataFrame
        Indexed by year or month; columns ``member``, ``flux``, ``unadjusted``,
        ``adjusted``, ``unit``.
    """
    parts = []
    for member, table in totals.items():
        for flux in table.columns:
            shift = offsets[member][flux] / (12 if monthly else 1)
            parts.append(
                pd.DataFrame(
                    {
                        "member": member,
                        "flux": flux,
                        "unadjusted": table[flux].to_numpy(),
                        "adjusted": table[flux].to_numpy() + shift,
                        "unit": GTC_PER_MONTH if monthly else GTC_PER_YEAR,
                    },
                    index=table.index,
                )
            )
    return pd.concat(parts)


def regional(values: pd.DataFrame, anomalies: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Regional sums and anomalies, one row per value (unadjusted: see the module note).

    Parameters
    ----------
    values, anomalies
        Columns ``(region, sink)``; indexed by year or month.
    unit
        The unit of both.

    Returns
    -------
    pandas.DataFrame
        Indexed as the inputs; columns ``region``, ``group`` (latitude band, continent,
        ocean basin, hotspot), ``flux``, ``statistic`` (``total`` or ``anomaly``),
        ``value``, ``unit``, ``adjustment``.
    """
    parts = []
    for statistic, table in (("total", values), ("anomaly", anomalies)):
        for column in table.columns:
            name, flux = (str(part) for part in column)
            parts.append(
                pd.DataFrame(
                    {
                        "region": name,
                        "group": GROUPS[region(name).kind],
                        "flux": flux,
                        "statistic": statistic,
                        "value": table[column].to_numpy(),
                        "unit": unit,
                        "adjustment": "unadjusted",
                    },
                    index=table.index,
                )
            )
    return pd.concat(parts)
