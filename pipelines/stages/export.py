"""``carbonsink export``: a window of the sink map as NetCDF or plain Zarr v3.

For users whose tools do not read Icechunk: one dataset with ``land_flux`` and
``ocean_flux`` over ``(member, time, lat, lon)`` (the members, the ensemble median and the
spread), CF attributes and bounds, read from the published sink map. The file is written
next to nothing else in the lake (any path or URL the user gives).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import xarray as xr

from carbonsink import __version__
from carbonsink.errors import ConfigError, LakeError
from carbonsink.lake.features_store import DataOrigin, data_origin
from carbonsink.lake.flux_store import FLUXES, members, open_member
from carbonsink.lake.lake import Lake
from carbonsink.timeutil import MonthWindow
from pipelines.options import (
    ConfigOpt,
    EndOpt,
    LakeOpt,
    StartOpt,
    echo,
    setting,
    settings,
)
from pipelines.settings import Settings

FORMATS = ("netcdf", "zarr")


@dataclass
class ExportReport:
    """What was exported."""

    path: str
    members: list[str]
    months: int
    seconds: float


def window_dataset(lake: Lake, window: MonthWindow) -> xr.Dataset:
    """The sink map's groups over ``window`` as one lazy Dataset with a ``member`` axis.

    Raises
    ------
    LakeError
        No sink map, or a window it does not fully cover.
    """
    repo = lake.open_repo("sinkmap")
    if repo is None:
        raise LakeError(f"the lake {lake.url} has no sink map; run carbonsink infer first")
    session = repo.readonly_session("main")
    names = members(session.store)
    wanted = np.array([np.datetime64(m.start_time.date(), "ns") for m in window.months])
    parts = []
    opened = [open_member(session, name) for name in names]
    for name, ds in zip(names, opened, strict=True):
        have = np.isin(wanted, ds["time"].to_numpy())
        if not have.all():
            first = window.months[int(np.flatnonzero(~have)[0])]
            raise LakeError(
                f"the sink map's {name} lacks {first} of {window}; map the window first "
                "(carbonsink infer) or export a mapped window"
            )
        parts.append(ds[list(FLUXES)].sel(time=wanted))
    out = xr.concat(parts, dim=xr.Variable("member", names, {"long_name": "emulated model"}))
    for c in ("lat_bounds", "lon_bounds"):
        out = out.assign_coords({c: opened[0][c]})
    origin = _origin(lake, window)
    title = "carbonsink sink map: land and ocean CO2 flux per emulated model"
    out.attrs = {
        "Conventions": "CF-1.10",
        "title": f"{title} [SYNTHETIC SAMPLE DATA]" if origin.synthetic else title,
        "source": f"carbonsink {__version__}, sinkmap snapshot {repo.lookup_branch('main')}",
        "window": str(window),
        "carbonsink_data": origin.label,
        "carbonsink_synthetic": int(origin.synthetic),
        "comment": "unadjusted emulated fluxes: the budget's adjustment to the GCB is global "
        "and annual and is not applied to maps",
    }
    return out


def _origin(lake: Lake, window: MonthWindow) -> DataOrigin:
    """What the window's drivers rest on (the features store's record)."""
    repo = lake.open_repo("features")
    if repo is None:
        return DataOrigin(False, ())
    return data_origin(repo.readonly_session("main").store, list(window.months))


def run_export(settings: Settings, out: str, fmt: str) -> ExportReport:
    """Write the window ``settings.start..end`` of the sink map to ``out``.

    Raises
    ------
    carbonsink.errors.CarbonsinkError
        A bad format, window or destination; nothing is written then.
    """
    t0 = time.perf_counter()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use {' or '.join(FORMATS)}")
    if not (settings.start and settings.end):
        raise ConfigError("export needs a window: pass --start YYYY-MM and --end YYYY-MM")
    window = MonthWindow.parse(settings.start, settings.end)
    local = "://" not in out or out.startswith("file://")
    path = Path(out.removeprefix("file://")) if local else None
    if path is not None and path.exists():
        raise ConfigError(f"{out} exists; choose a new path (exports never overwrite)")
    if path is not None and not path.parent.is_dir():
        raise ConfigError(
            f"the folder {path.parent} of --out does not exist; create it or choose another path"
        )
    if fmt == "netcdf" and path is None:
        raise ConfigError("NetCDF exports go to a local path; use --format zarr for URLs")
    ds = window_dataset(Lake(settings.lake, settings.lake_storage), window)
    if fmt == "netcdf":
        assert path is not None
        encoding = {f: {"zlib": True, "complevel": 4} for f in FLUXES}
        tmp = path.with_name(path.name + ".partial")
        try:
            ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
            tmp.rename(path)  # a reader never sees half a file
        finally:
            tmp.unlink(missing_ok=True)
    else:
        ds = ds.chunk({"member": 1, "time": 1, "lat": -1, "lon": -1})
        for v in ds.variables.values():
            v.encoding = {}
        ds.to_zarr(out, mode="w-", zarr_format=3, consolidated=False)
    return ExportReport(
        out, [str(m) for m in ds["member"].values], len(window), time.perf_counter() - t0
    )


def command(
    lake: LakeOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    out: Annotated[
        str | None,
        setting("--out", path="export.out", help="File (NetCDF) or store path/URL (Zarr)."),
    ] = None,
    fmt: Annotated[
        str | None,
        setting("--format", path="export.format", help="netcdf or zarr (plain Zarr v3)."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Export a window of the sink map (members, median, spread) as NetCDF or Zarr v3.

    Example:

    \b
        carbonsink export --lake output/lake --start 2024-01 --end 2024-12 --out sinks-2024.nc
    """
    s = settings(config, lake=lake, start=start, end=end, export={"out": out, "format": fmt})
    if not s.export.out:
        raise ConfigError("export needs --out PATH (or CARBONSINK_EXPORT__OUT)")
    report = run_export(s, s.export.out, s.export.format)
    echo(
        f"exported {report.months} month(s) of {', '.join(report.members)} in "
        f"{report.seconds:.1f} s"
    )
    echo(f"export: {report.path}")
