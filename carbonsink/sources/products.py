"""Which ERA5 product a Copernicus data store download holds, from its data and metadata.

The CDS serves ERA5's single-level fields as several products whose time stamps, and
whose accumulated variables (``tp``, ``ssrd``), mean different things (ECMWF's "ERA5: data
documentation" and its conversion table for accumulated variables):

=====================================  ======================  ==============================
product (CDS dataset, request)         stamps                  an accumulated value is
=====================================  ======================  ==============================
hourly reanalysis                      every hour              the sum over the hour ending
(``reanalysis-era5-single-levels``,                            at the stamp
``product_type: reanalysis``)
daily statistics, daily mean           00:00 of each day       the day's mean hourly sum
(``derived-era5-single-levels-daily-
statistics``, ``daily_statistic:
daily_mean``)
monthly averaged reanalysis            00:00 on the 1st        the month's mean *daily* sum
(``reanalysis-era5-single-levels-                              ("m of water per day")
monthly-means``, ``product_type:
monthly_averaged_reanalysis``)
monthly averaged by hour of day        00:00..23:00 on the     the month's mean hourly sum
(same dataset, ``product_type:         1st                     at that hour of day
monthly_averaged_reanalysis_by_hour_
of_day``)
=====================================  ======================  ==============================

A file says which in several ways, each optional: GRIB keys (``stream``: ``oper``,
``moda``, ``mnth``, or ``enda``/``edmo``/``edmm`` for the ensemble; ``class``: ``ea`` for
ERA5, ``l5`` for ERA5-Land; ``stepType``: ``accum`` for hourly sums, ``avgad`` for
averaged daily sums, ``avgas``/``avgid``/``avgua`` for the other averages), the same keys
in the new CDS NetCDF (the ``GRIB_*`` attributes, the ``history`` line with cfgrib's
``filter_by_keys``, and file names such as ``data_stream-moda_stepType-avgad.nc``), and
always the time stamps themselves. The legacy NetCDF (``grib_to_netcdf``) carries none of
the keys, so its stamps decide. Metadata and stamps must agree; a file that fits no product,
mixes products, or holds one carbonsink does not read (ERA5-Land, the ensemble) is refused
with one line saying what was found and what to download instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from carbonsink.errors import SourceError

Layout = Literal["hourly", "daily", "monthly", "monthly_by_hour"]


@dataclass(frozen=True)
class Era5Product:
    """One of ERA5's products on the CDS, and how its accumulated values are read.

    Attributes
    ----------
    layout
        How its stamps lie: ``hourly`` (every hour, or a regular sub-daily subsample),
        ``daily`` (00:00 of each day), ``monthly`` (00:00 on the 1st) or
        ``monthly_by_hour`` (00:00..23:00 on the 1st).
    title
        Its name, for messages and provenance.
    request
        The CDS dataset and product type that deliver it.
    accumulation
        The period an accumulated value sums over.
    """

    layout: Layout
    title: str
    request: str
    accumulation: pd.Timedelta


HOURLY = Era5Product(
    "hourly",
    "ERA5 hourly reanalysis",
    "reanalysis-era5-single-levels, product_type reanalysis",
    pd.Timedelta(hours=1),
)
DAILY = Era5Product(
    "daily",
    "ERA5 daily statistics (daily mean)",
    "derived-era5-single-levels-daily-statistics, daily_statistic daily_mean, frequency 1_hourly",
    pd.Timedelta(hours=1),
)
MONTHLY = Era5Product(
    "monthly",
    "ERA5 monthly averaged reanalysis",
    "reanalysis-era5-single-levels-monthly-means, product_type monthly_averaged_reanalysis",
    pd.Timedelta(days=1),
)
MONTHLY_BY_HOUR = Era5Product(
    "monthly_by_hour",
    "ERA5 monthly averaged reanalysis by hour of day",
    "reanalysis-era5-single-levels-monthly-means, product_type "
    "monthly_averaged_reanalysis_by_hour_of_day",
    pd.Timedelta(hours=1),
)
PRODUCTS: dict[Layout, Era5Product] = {
    p.layout: p for p in (HOURLY, DAILY, MONTHLY, MONTHLY_BY_HOUR)
}

#: MARS streams of the products carbonsink reads.
_STREAMS: dict[str, Era5Product] = {"oper": HOURLY, "moda": MONTHLY, "mnth": MONTHLY_BY_HOUR}
#: MARS streams of the ERA5 ensemble (members, mean, spread), hourly and monthly.
_ENSEMBLE_STREAMS = {"enda", "edmo", "edmm", "elda", "ewda", "ewmo", "ewmm"}
#: GRIB step types that only one product uses for its accumulated variables.
_STEP_TYPES: dict[str, Era5Product] = {
    "accum": HOURLY,
    "avgad": MONTHLY,
    "avgas": MONTHLY_BY_HOUR,
    "avgid": MONTHLY_BY_HOUR,
}
#: GRIB data types of ensemble output (control, perturbed, mean, spread).
_ENSEMBLE_TYPES = {"cf", "pf", "em", "es"}
_DAILY_OTHER = re.compile(r"daily[_ ](maximum|minimum|max|min|sum)", re.IGNORECASE)
_LAND = re.compile(r"era5[-_ ]?land", re.IGNORECASE)
_FILTER = re.compile(r"\{.*\}")
_NAME_KEYS = re.compile(r"(stream|stepType)-([A-Za-z0-9]+)")

_HOW_TO_FIX = (
    "download ERA5 single levels as 'reanalysis' (hourly) or 'monthly_averaged_reanalysis' "
    "from the CDS"
)


@dataclass
class Evidence:
    """What a file's metadata say about its product (everything optional).

    Attributes
    ----------
    streams
        MARS streams (``oper``, ``moda``, ...).
    classes
        MARS classes (``ea``, ``l5``, ...).
    step_types
        GRIB step types, by where they were found (a variable, a file name, a history line).
    data_types
        GRIB data types (``an``, ``fc``, ``em``, ...).
    members
        Ensemble members in the file (1 for the reanalysis).
    hints
        Free text (``history``, titles, file names) searched for ERA5-Land and for daily
        statistics other than the mean.
    """

    streams: set[str] = field(default_factory=set)
    classes: set[str] = field(default_factory=set)
    step_types: dict[str, str] = field(default_factory=dict)
    data_types: set[str] = field(default_factory=set)
    members: int = 1
    hints: list[str] = field(default_factory=list)

    def merge(self, other: Evidence) -> Evidence:
        """The evidence of two files of one download."""
        return Evidence(
            self.streams | other.streams,
            self.classes | other.classes,
            {**self.step_types, **other.step_types},
            self.data_types | other.data_types,
            max(self.members, other.members),
            self.hints + other.hints,
        )


def evidence_of(ds: xr.Dataset, name: str) -> Evidence:
    """Read a file's metadata: cfgrib's ``GRIB_*`` attributes, ``history``, its name.

    Parameters
    ----------
    ds
        The file as opened (GRIB through cfgrib with ``stream`` and ``class`` among its
        read keys, or NetCDF), before any renaming.
    name
        The file's name (the new CDS names its files after stream and step type).
    """
    ev = Evidence(hints=[name])
    for key, value in _NAME_KEYS.findall(name):
        if key == "stream":
            ev.streams.add(value)
        else:
            ev.step_types[f"file {name}"] = value
    for key in ("history", "title", "source", "GRIB_subCentre", "institution"):
        if key in ds.attrs:
            ev.hints.append(str(ds.attrs[key]))
    for match in _FILTER.findall(str(ds.attrs.get("history", ""))):
        try:
            keys = json.loads(match).get("filter_by_keys", {})
        except (ValueError, AttributeError):
            continue
        ev.streams.update(_as_list(keys.get("stream")))
        for st in _as_list(keys.get("stepType")):
            ev.step_types[f"history of {name}"] = st
    for var, da in ds.data_vars.items():
        a = da.attrs
        if "GRIB_stream" in a:
            ev.streams.add(str(a["GRIB_stream"]))
        for key in ("GRIB_class", "GRIB_marsClass"):
            if key in a:
                ev.classes.add(str(a[key]))
        if "GRIB_stepType" in a:
            ev.step_types[str(var)] = str(a["GRIB_stepType"])
        if "GRIB_dataType" in a:
            ev.data_types.add(str(a["GRIB_dataType"]))
        for key in ("long_name", "cell_methods"):
            if key in a:
                ev.hints.append(str(a[key]))
    if "number" in ds.dims:
        ev.members = int(ds.sizes["number"])
    return ev


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def layout_of(times: np.ndarray) -> Layout | None:
    """How a file's stamps lie, or None if like no ERA5 product.

    One stamp at 00:00 on the 1st reads as one month of monthly means; stamps that all lie
    on the 1st, several a month at whole hours, as monthly means by hour of day (a file of
    hourly data holding only the first day of a month cannot make a complete month anyway).
    """
    t = pd.DatetimeIndex(np.unique(np.asarray(times).astype("datetime64[ns]"))).dropna()
    if t.size == 0:
        return None
    midnight = bool(((t.hour == 0) & (t.minute == 0) & (t.second == 0)).all())
    first = bool((t.day == 1).all())
    months = t.to_period("M")
    if first and midnight and months.is_unique:
        return "monthly"
    if first and t.size > 1 and not months.is_unique and bool((t.minute == 0).all()):
        # Every month the same hours of day, evenly spread over the whole day.
        hours = np.sort(pd.Index(t.hour).unique().to_numpy())
        per_month = pd.Series(1, index=months).groupby(level=0).sum()
        spacing = 24 // len(hours)
        if (
            (per_month == len(hours)).all()
            and len(hours) * spacing == 24
            and np.array_equal(hours, np.arange(hours[0], 24, spacing))
        ):
            return "monthly_by_hour"
    if t.size < 2:
        return None
    steps = np.diff(t.asi8) // 10**9
    common = float(np.median(steps))
    if midnight and common == 86400:
        return "daily"
    if common < 86400 and 86400 % common == 0:
        return "hourly"
    return None


def classify(evidence: Evidence, times: np.ndarray, *, url: str) -> Era5Product:
    """The ERA5 product a download holds.

    Raises
    ------
    SourceError
        ERA5-Land, the ERA5 ensemble, daily statistics other than the mean, metadata that
        disagree with each other or with the stamps, or stamps like no ERA5 product.
    """
    text = " ".join(evidence.hints)
    if "l5" in evidence.classes or _LAND.search(text):
        raise SourceError(
            f"{url} holds ERA5-Land (class l5 or named so): its accumulations run from 00 UTC "
            "and it has no ocean fields; download reanalysis-era5-single-levels (or its "
            "monthly means) instead"
        )
    ensemble = evidence.streams & _ENSEMBLE_STREAMS or evidence.data_types & _ENSEMBLE_TYPES
    if ensemble or evidence.members > 1:
        found = ", ".join(sorted(ensemble)) or f"{evidence.members} members"
        raise SourceError(
            f"{url} holds the ERA5 ensemble ({found}), not the reanalysis; {_HOW_TO_FIX}"
        )
    if _DAILY_OTHER.search(text):
        raise SourceError(
            f"{url} holds daily maxima, minima or sums, not daily means; request "
            "daily_statistic daily_mean (or the hourly or monthly means) from the CDS"
        )
    said: dict[str, Era5Product] = {}
    for stream in sorted(evidence.streams):
        if stream not in _STREAMS:
            raise SourceError(
                f"{url} holds ERA5 stream {stream!r}, which carbonsink does not read; {_HOW_TO_FIX}"
            )
        said[f"stream {stream}"] = _STREAMS[stream]
    for st in sorted(set(evidence.step_types.values())):
        if st in _STEP_TYPES:
            said[f"stepType {st}"] = _STEP_TYPES[st]
    if len(set(said.values())) > 1:
        parts = "; ".join(f"{k}: {p.title}" for k, p in said.items())
        raise SourceError(
            f"{url} mixes ERA5 products ({parts}); ingest one product at a time (one "
            "download, or a glob of files of one product)"
        )
    layout = layout_of(times)
    by_stamps = PRODUCTS[layout] if layout is not None else None
    by_meta = next(iter(said.values()), None)
    if by_meta is not None and by_stamps is not None and by_meta is not by_stamps:
        why = ", ".join(said)
        raise SourceError(
            f"{url}: its metadata ({why}) say {by_meta.title} but its time stamps lie like "
            f"{by_stamps.title}; re-download the file (one product per request)"
        )
    product = by_meta or by_stamps
    if product is None or by_stamps is None:
        raise SourceError(
            f"cannot tell which ERA5 product {url} holds: {describe_stamps(times)}; {_HOW_TO_FIX}"
        )
    return product


def describe_stamps(times: np.ndarray) -> str:
    """A short account of a time axis, for messages."""
    t = pd.DatetimeIndex(np.asarray(times).astype("datetime64[ns]")).dropna()
    if t.size == 0:
        return "no time stamps"
    if t.size == 1:
        return f"one time stamp ({t[0]})"
    steps = pd.to_timedelta(np.diff(np.sort(t.asi8)), unit="ns")
    return f"{t.size} time stamps {t.min()} .. {t.max()}, steps {steps.min()} to {steps.max()}"


def era5t_stamps(expver: np.ndarray) -> np.ndarray:
    """Which stamps hold preliminary ERA5T data, from ``expver`` (``0005``/``5``)."""
    values = np.asarray(expver).astype(str)
    return np.char.lstrip(np.char.strip(values), "0") == "5"
