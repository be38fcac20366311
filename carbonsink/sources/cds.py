"""Reader of ERA5 as downloaded from the Copernicus Climate Data Store (GRIB or NetCDF).

CDS files differ from ARCO-ERA5 in every detail that matters to a reader, and this module
normalises them to the ARCO form (:mod:`carbonsink.sources.base`):

- variable names: GRIB/NetCDF short names (``t2m``, ``z``) become ARCO names
  (``2m_temperature``, ``geopotential``), found by GRIB parameter id, then short name, in
  the ARCO-ERA5 variable table shipped as package data;
- time: ``valid_time`` (new CDS NetCDF) or cfgrib's ``time`` + ``step`` (accumulations come
  as forecast base time x step and are unstacked to one valid-time axis);
- levels: ``isobaricInhPa`` (cfgrib) and ``pressure_level`` (CDS NetCDF) become ``level``;
- units: ECMWF notation kept, as ARCO-ERA5 stores it.
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
import xarray as xr

from carbonsink.drivers import SOURCE_VARIABLES
from carbonsink.errors import SourceError, SourceUnreachableError, brief
from carbonsink.sources.base import SourceSelection
from carbonsink.sources.common import ValidRange, axis_range, select_window
from carbonsink.storage import StorageOptions, parse_location
from carbonsink.timeutil import MonthWindow

CDS_SUFFIXES = (".grib", ".grb", ".grib1", ".grib2", ".grb2", ".nc", ".nc4", ".netcdf")
_GRIB_SUFFIXES = CDS_SUFFIXES[:5]
_LEVEL_NAMES = ("isobaricInhPa", "pressure_level", "plev")
_DROP_SCALARS = (
    "step",
    "surface",
    "heightAboveGround",
    "depthBelowLandLayer",
    "meanSea",
    "entireAtmosphere",
    "expver",
)


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


class CdsEra5Source:
    """ERA5 files from the Copernicus data store: one path, or a glob of paths.

    Parameters
    ----------
    url
        Local path or ``file://`` URL; wildcards select several files (one per month,
        say), which are combined along time.
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

    def _open_one(self, path: str) -> xr.Dataset:
        if not Path(path).is_file():
            raise SourceUnreachableError(f"cannot open {path}: no such file; check the path")
        try:
            if path.lower().endswith(_GRIB_SUFFIXES):
                import cfgrib

                with warnings.catch_warnings():
                    # cfgrib merges its hypercubes with xarray's changing defaults.
                    warnings.simplefilter("ignore", FutureWarning)
                    parts = cfgrib.open_datasets(path, backend_kwargs={"indexpath": ""})
                parts = [normalise_cds(p, url=path) for p in parts]
                return xr.merge(parts, compat="override", join="outer")
            return normalise_cds(xr.open_dataset(path, engine="h5netcdf", chunks=None), url=path)
        except SourceError:
            raise
        except Exception as exc:
            raise SourceUnreachableError(
                f"cannot read {path} as ERA5 GRIB/NetCDF: {brief(exc)}; check the file"
            ) from None

    @cached_property
    def dataset(self) -> xr.Dataset:
        """All files, normalised and combined along time."""
        if not self.paths:
            raise SourceUnreachableError(f"no files match {self.url}; check the path or pattern")
        parts = [self._open_one(p) for p in self.paths]
        ds = parts[0] if len(parts) == 1 else xr.combine_by_coords(parts, combine_attrs="override")
        assert isinstance(ds, xr.Dataset)
        return ds

    def available(self) -> ValidRange:
        """The range the files' time axis spans (CDS files carry no ``valid_time_*``)."""
        if "time" not in self.dataset.coords:
            raise SourceError(f"source {self.url} has no 'time' coordinate")
        return axis_range(self.dataset["time"].values, url=self.url)

    def select(self, variables: list[str], window: MonthWindow) -> SourceSelection:
        """Validate and select ``variables`` for the complete months of ``window``."""
        return select_window(self.dataset, variables, window, url=self.url, valid=None)
