"""Reader of ERA5 as downloaded from the Copernicus Climate Data Store (GRIB or NetCDF).

CDS files differ from ARCO-ERA5 in every detail that matters to a reader, and this module
normalises them to the ARCO form (:mod:`carbonsink.sources.base`):

- variable names: GRIB/NetCDF short names (``t2m``, ``z``) become ARCO names
  (``2m_temperature``, ``geopotential``), found by GRIB parameter id, then short name, in
  the ARCO-ERA5 variable table shipped as package data;
- time: ``valid_time`` (new CDS NetCDF) or cfgrib's ``time`` + ``step`` (accumulations come
  as forecast base time x step and are unstacked to one valid-time axis);
- levels: ``isobaricInhPa`` (cfgrib) and ``pressure_level`` (CDS NetCDF) become ``level``;
- ERA5T: the new NetCDF's ``expver`` coordinate (``0005``) marks preliminary stamps; the
  legacy NetCDF's ``expver`` dimension (ERA5 and ERA5T side by side, NaN where the other
  holds data) is folded into one time axis, marked the same way;
- units: ECMWF notation kept, as ARCO-ERA5 stores it;
- the product (hourly, daily statistics, monthly means, monthly means by hour of day) is
  recognised from the files' metadata and stamps (:mod:`carbonsink.sources.products`) and
  decides how stamps and accumulations are read: the monthly means' ``tp`` of 3.1e-3 is
  3.1 mm a day, the hourly product's 3.1 mm an hour.

The legacy NetCDF (``grib_to_netcdf``, NetCDF3 with packed integers) is read with SciPy's
NetCDF3 reader, the new one (NetCDF4/HDF5) with h5netcdf.
"""

from __future__ import annotations

import csv
import glob
import re
import warnings
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from carbonsink.drivers import SOURCE_VARIABLES
from carbonsink.errors import SourceError, SourceUnreachableError, brief
from carbonsink.sources.base import SourceSelection, TimeSemantics, ValidRange
from carbonsink.sources.common import Step, axis_range, select_window
from carbonsink.sources.products import Era5Product, Evidence, classify, era5t_stamps, evidence_of
from carbonsink.storage import StorageOptions, parse_location
from carbonsink.timeutil import MonthWindow

CDS_SUFFIXES = (".grib", ".grb", ".grib1", ".grib2", ".grb2", ".nc", ".nc4", ".netcdf")
_GRIB_SUFFIXES = CDS_SUFFIXES[:5]
_LEVEL_NAMES = ("isobaricInhPa", "pressure_level", "plev")
_DROP_SCALARS = (
    "number",
    "step",
    "surface",
    "heightAboveGround",
    "depthBelowLandLayer",
    "meanSea",
    "entireAtmosphere",
)
#: Keys cfgrib adds as ``GRIB_*`` attributes beyond its defaults: they tell the products
#: apart (:mod:`carbonsink.sources.products`).
_GRIB_READ_KEYS = ["stream", "class"]


# ERA5 pressure-level parameters (GRIB1 parameter id -> ARCO name, GRIB short name). The
# ARCO README's table gives GRIB2-style ids for some of them and omits geopotential.
_PRESSURE_LEVEL: dict[int, tuple[str, str]] = {
    60: ("potential_vorticity", "pv"),
    129: ("geopotential", "z"),
    130: ("temperature", "t"),
    131: ("u_component_of_wind", "u"),
    132: ("v_component_of_wind", "v"),
    133: ("specific_humidity", "q"),
    135: ("vertical_velocity", "w"),
    138: ("vorticity", "vo"),
    155: ("divergence", "d"),
    157: ("relative_humidity", "r"),
    203: ("ozone_mass_mixing_ratio", "o3"),
    246: ("specific_cloud_liquid_water_content", "clwc"),
    247: ("specific_cloud_ice_water_content", "ciwc"),
    248: ("fraction_of_cloud_cover", "cc"),
}
_PARAM_RE = re.compile(r"(?:param-db/|id=)(\d+)")


@cache
def _arco_table() -> list[dict[str, str]]:
    """Single-level rows of the ARCO-ERA5 variable table (main 0.25 degree store)."""
    path = resources.files("carbonsink") / "data" / "arco_era5_readme_variable_tables.csv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [
        r
        for r in rows
        if r["dataset_section"].startswith("0.25\N{DEGREE SIGN}") and "_sl_" in r["config"]
    ]


def _param_id(row: dict[str, str]) -> int | None:
    m = _PARAM_RE.search(row["docs"])
    return int(m.group(1)) if m else None


def arco_name(var: str, attrs: dict[str, Any], *, on_levels: bool) -> str | None:
    """The ARCO-ERA5 name of a CDS variable, or None if it has none.

    Looks up the GRIB parameter id, then the GRIB short name, then carbonsink's aliases
    (NetCDF names such as ``t2m``). ``on_levels`` prefers pressure-level fields where a
    short name is shared (``z``: geopotential vs geopotential_at_surface).
    """
    raw_pid = attrs.get("GRIB_paramId")
    pid = int(raw_pid) if raw_pid is not None else None
    short = str(attrs.get("GRIB_shortName", var))
    if on_levels:
        for p, (name, sn) in _PRESSURE_LEVEL.items():
            if pid == p or (pid is None and var in (sn, name)):
                return name
    for spec in SOURCE_VARIABLES.values():
        if pid is not None and pid in spec.param_ids:
            return spec.name
    rows = _arco_table()
    match = [r for r in rows if pid is not None and _param_id(r) == pid]
    match = match or [r for r in rows if r["short name"] in (short, var)]
    if match:
        return match[0]["name"]
    for spec in SOURCE_VARIABLES.values():
        if var in spec.aliases or var == spec.name:
            return spec.name
    return None


def _fold_expver(ds: xr.Dataset) -> xr.Dataset:
    """The legacy NetCDF's ``expver`` dimension folded into one time axis.

    Where a download spans final ERA5 and preliminary ERA5T, the legacy CDS wrote both
    side by side along ``expver`` (1 and 5), NaN where the other holds the data. Each stamp
    takes the first version with data; an ``expver`` coordinate along time remembers which.
    """
    if "expver" not in ds.dims:
        return ds
    codes = np.asarray(ds["expver"].values)
    probe = next((v for v in ds.data_vars.values() if "expver" in v.dims), None)
    if probe is None or "time" not in probe.dims:
        return ds.isel(expver=0, drop=True)
    other = [d for d in probe.dims if d not in ("time", "expver")]
    has = probe.notnull().any(other).transpose("time", "expver").values
    choice = np.where(has.any(axis=1), has.argmax(axis=1), 0)
    folded = ds.isel(expver=xr.DataArray(choice, dims="time"), drop=True)
    labels = np.array([f"{int(float(c)):04d}" for c in codes[choice]])
    return folded.assign_coords(expver=("time", labels))


def normalise_cds(ds: xr.Dataset, *, url: str) -> xr.Dataset:
    """Bring a CDS GRIB/NetCDF dataset to ARCO-ERA5 names and dimensions."""
    for lev in _LEVEL_NAMES:
        if lev in ds.dims or lev in ds.coords:
            ds = ds.rename({lev: "level"})
    if "valid_time" in ds.dims:
        # New CDS NetCDF: valid_time is the time axis; a scalar 'time' may linger.
        if "time" in ds.coords and "time" not in ds.dims:
            ds = ds.drop_vars("time")
        ds = ds.rename({"valid_time": "time"})
    elif "step" in ds.dims and "time" in ds.dims:
        # cfgrib accumulations: forecast base time x step -> one valid-time axis.
        ds = ds.stack(_vt=("time", "step"))
        valid = np.asarray(ds["valid_time"].values).ravel()
        ds = ds.drop_vars(["time", "step", "valid_time", "_vt"]).rename({"_vt": "time"})
        ds = ds.assign_coords(time=("time", valid))
        ds = ds.isel(time=np.flatnonzero(~np.isnat(valid)))
        ds = ds.sortby("time").transpose("time", ...)
    elif "valid_time" in ds.coords:
        if "time" in ds.dims:
            ds = ds.assign_coords(time=("time", np.asarray(ds["valid_time"].values).ravel()))
        ds = ds.drop_vars("valid_time")
    elif "time" in ds.coords and "time" not in ds.dims:
        ds = ds.expand_dims("time")
    ds = _fold_expver(ds)
    if "number" in ds.dims and ds.sizes["number"] == 1:
        ds = ds.isel(number=0)
    drop = [c for c in _DROP_SCALARS if c in ds.coords and c not in ds.dims]
    ds = ds.drop_vars(drop)
    renames = {}
    on_levels = "level" in ds.dims
    for name, da in ds.data_vars.items():
        long = arco_name(str(name), dict(da.attrs), on_levels=on_levels and "level" in da.dims)
        if long is None:
            raise SourceError(
                f"variable {name!r} of {url} is not an ERA5 variable carbonsink knows; "
                "download ERA5 single-level or pressure-level fields"
            )
        renames[name] = long
        if "units" not in da.attrs and "GRIB_units" in da.attrs:
            da.attrs["units"] = da.attrs["GRIB_units"]
    ds = ds.rename(renames)
    if "level" in ds.coords:
        ds["level"].attrs.setdefault("units", "hPa")
    return ds


def _netcdf_engine(path: str) -> str:
    """h5netcdf for NetCDF4 (the new CDS), SciPy's reader for NetCDF3 (the legacy CDS)."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    return "scipy" if magic[:3] == b"CDF" else "h5netcdf"


class CdsEra5Source:
    """ERA5 files from the Copernicus data store: one path, or a glob of paths.

    Parameters
    ----------
    url
        Local path or ``file://`` URL; wildcards select several files (one per month, or
        the instantaneous and accumulated files of one new-CDS download), which are combined
        along time. All of them must hold the same ERA5 product.
    storage
        Unused for local files; accepted for a uniform interface.
    """

    def __init__(self, url: str, storage: StorageOptions | None = None) -> None:
        loc = parse_location(url)
        if not loc.is_local:
            raise SourceError(
                f"CDS files are read from local paths, not {loc.scheme}://; download them first "
                "or convert them to an ARCO-style Zarr store"
            )
        self.url = loc.url
        self.paths = (
            sorted(glob.glob(loc.path)) if any(c in loc.path for c in "*?[") else [loc.path]
        )
        self.storage = storage or StorageOptions()

    def _open_one(self, path: str) -> tuple[xr.Dataset, Evidence]:
        if not Path(path).is_file():
            raise SourceUnreachableError(f"cannot open {path}: no such file; check the path")
        try:
            if path.lower().endswith(_GRIB_SUFFIXES):
                import cfgrib

                with warnings.catch_warnings():
                    # cfgrib merges its hypercubes with xarray's changing defaults.
                    warnings.simplefilter("ignore", FutureWarning)
                    raw = cfgrib.open_datasets(
                        path, backend_kwargs={"indexpath": "", "read_keys": _GRIB_READ_KEYS}
                    )
                evidence = Evidence()
                for part in raw:
                    evidence = evidence.merge(evidence_of(part, Path(path).name))
                parts = [normalise_cds(p, url=path) for p in raw]
                return xr.merge(parts, compat="override", join="outer"), evidence
            ds = xr.open_dataset(path, engine=_netcdf_engine(path), chunks=None)
            return normalise_cds(ds, url=path), evidence_of(ds, Path(path).name)
        except SourceError:
            raise
        except Exception as exc:
            raise SourceUnreachableError(
                f"cannot read {path} as ERA5 GRIB/NetCDF: {brief(exc)}; check the file"
            ) from exc

    @cached_property
    def _opened(self) -> tuple[xr.Dataset, Evidence]:
        if not self.paths:
            raise SourceUnreachableError(f"no files match {self.url}; check the path or pattern")
        opened = [self._open_one(p) for p in self.paths]
        parts = [ds for ds, _ in opened]
        evidence = opened[0][1]
        for _, ev in opened[1:]:
            evidence = evidence.merge(ev)
        if len(parts) == 1:
            return parts[0], evidence
        try:
            ds = xr.combine_by_coords(
                parts, compat="no_conflicts", join="outer", combine_attrs="override"
            )
        except ValueError as exc:
            raise SourceError(
                f"the files of {self.url} do not combine into one dataset ({brief(exc)}); "
                "pass files of one download, with the same grid and variables per period"
            ) from exc
        assert isinstance(ds, xr.Dataset)
        return ds, evidence

    @property
    def dataset(self) -> xr.Dataset:
        """All files, normalised and combined along time."""
        return self._opened[0]

    @cached_property
    def product(self) -> Era5Product:
        """The ERA5 product the files hold (:mod:`carbonsink.sources.products`).

        Raises
        ------
        carbonsink.errors.SourceError
            Files of no product carbonsink reads, or that do not say which.
        """
        ds, evidence = self._opened
        if "time" not in ds.coords:
            raise SourceError(f"source {self.url} has no 'time' coordinate")
        return classify(evidence, np.atleast_1d(ds["time"].values), url=self.url)

    def available(self) -> ValidRange:
        """The range the files' time axis spans (CDS files carry no ``valid_time_*``).

        Stamps of preliminary ERA5T data (``expver`` 0005) end the final part.
        """
        product = self.product
        times = np.atleast_1d(self.dataset["time"].values)
        full = axis_range(times, url=self.url, monthly=product.layout.startswith("monthly"))
        if "expver" not in self.dataset.coords:
            return full
        prelim = era5t_stamps(np.atleast_1d(self.dataset["expver"].values))
        if not prelim.any():
            return full
        # ERA5T takes over at a day boundary; an accumulation stamped 01:00 is its first hour.
        stop = pd.Timestamp(times.astype("datetime64[ns]")[prelim].min()).floor("D")
        return ValidRange(full.start, min(stop, full.stop), full.stop_era5t)

    def _semantics(self, name: str, da: xr.DataArray, step: Step) -> TimeSemantics:
        product = self.product
        spec = SOURCE_VARIABLES.get(name)
        period = product.accumulation if spec is not None and spec.accumulated else None
        if product.layout == "hourly":
            if period is None:
                return TimeSemantics("instant", step)
            return TimeSemantics("accumulated", period, period)
        if product.layout == "daily":
            return TimeSemantics("period_mean", pd.Timedelta(days=1), period)
        if product.layout == "monthly":
            return TimeSemantics("period_mean", pd.offsets.MonthBegin(), period)
        return TimeSemantics("hour_of_day_mean", step, period)

    def select(self, variables: list[str], window: MonthWindow) -> SourceSelection:
        """Validate and select ``variables`` for the complete months of ``window``."""
        sel = select_window(
            self.dataset, variables, window, url=self.url, valid=self.available(),
            rule=self._semantics,
        )  # fmt: skip
        sel.attrs["source_product"] = f"{self.product.title} ({self.product.request})"
        sel.attrs["source_synthetic"] = "false"
        return sel
