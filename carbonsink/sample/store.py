"""Write synthetic data in exactly the ARCO-ERA5 layout.

Names, attributes, orientation (latitude 90 -> -90, longitude 0 -> 360 - d), one field per
chunk, Blosc-LZ4 compression, ``hours since 1900-01-01`` time padded from 1900-01-01 to
2050-12-31 (chunks outside the data are never written, so they read as NaN), and the root
attributes ``valid_time_start`` / ``valid_time_stop`` / ``valid_time_stop_era5t`` /
``last_updated``. Zarr v2 with consolidated metadata by default, as ARCO-ERA5 is; Zarr v3
on request.

The work is a template (written once, here) and independent blocks of time steps
(:func:`write_block`), which a caller runs on any executor: a block's bytes depend only on
the spec and its time steps.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numcodecs
import numpy as np
import pandas as pd
import zarr
import zarr.codecs

from carbonsink.drivers import SOURCE_VARIABLES
from carbonsink.errors import ConfigError
from carbonsink.grid import point_grid_bounds
from carbonsink.landmask import land_fraction
from carbonsink.sample.climate import SAMPLE_VARIABLES, SampleClimate, StepKind
from carbonsink.sources.arco import SAMPLE_ATTR, zarr_store
from carbonsink.storage import StorageOptions, parse_location
from carbonsink.timeutil import MonthWindow

Step = Literal["1h", "6h", "1D", "1MS"]
STEPS: tuple[str, ...] = ("1h", "6h", "1D", "1MS")
EPOCH = pd.Timestamp("1900-01-01")
PAD_END = pd.Timestamp("2051-01-01")  # exclusive: the axis runs to 2050-12-31T23

_LONG_NAMES = {
    "2m_temperature": ("2 metre temperature", "air_temperature"),
    "2m_dewpoint_temperature": ("2 metre dewpoint temperature", "dew_point_temperature"),
    "total_precipitation": ("Total precipitation", None),
    "surface_solar_radiation_downwards": ("Surface solar radiation downwards", None),
    "volumetric_soil_water_layer_1": ("Volumetric soil water layer 1", None),
    "soil_temperature_level_1": ("Soil temperature level 1", None),
    "leaf_area_index_high_vegetation": ("Leaf area index, high vegetation", None),
    "leaf_area_index_low_vegetation": ("Leaf area index, low vegetation", None),
    "10m_u_component_of_wind": ("10 metre U wind component", None),
    "10m_v_component_of_wind": ("10 metre V wind component", None),
    "sea_surface_temperature": ("Sea surface temperature", None),
    "sea_ice_cover": ("Sea ice area fraction", "sea_ice_area_fraction"),
    "mean_sea_level_pressure": ("Mean sea level pressure", "air_pressure_at_mean_sea_level"),
    "land_sea_mask": ("Land-sea mask", "land_binary_mask"),
}


@dataclass(frozen=True)
class SampleSpec:
    """What ``carbonsink sample-data`` writes.

    Parameters
    ----------
    window
        Months holding data.
    resolution
        Grid spacing in degrees (ERA5: 0.25); it must divide 180.
    step
        ``1h``, ``6h`` (instantaneous values, accumulations over the hour ending at the
        stamp, as in ARCO-ERA5), ``1D`` or ``1MS`` (means over the day or month starting
        at the stamp, marked with ``cell_methods: time: mean``).
    seed
        Seed of every random part.
    era5t_months
        The newest months flagged as preliminary (ERA5T), as in the real store.
    variables
        ARCO-ERA5 names to write.
    zarr_format
        2 (ARCO-ERA5's format, consolidated) or 3.
    """

    window: MonthWindow
    resolution: float = 0.25
    step: str = "1h"
    seed: int = 0
    era5t_months: int = 3
    variables: tuple[str, ...] = SAMPLE_VARIABLES
    zarr_format: int = 2
    steps_per_block: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.step not in STEPS:
            raise ConfigError(f"step {self.step!r} is not one of {', '.join(STEPS)}")
        n = 180.0 / self.resolution if self.resolution > 0 else 0.5
        if self.resolution <= 0 or abs(n - round(n)) > 1e-9:
            raise ConfigError(
                f"sample resolution {self.resolution} deg must divide 180 deg, e.g. 0.25, 0.5, 1, 2"
            )
        unknown = [v for v in self.variables if v not in SAMPLE_VARIABLES]
        if unknown:
            raise ConfigError(
                f"sample-data cannot generate {', '.join(unknown)}; choose from "
                f"{', '.join(SAMPLE_VARIABLES)}"
            )
        if self.zarr_format not in (2, 3):
            raise ConfigError(f"zarr format {self.zarr_format} is not 2 or 3")
        if self.window.start.start_time < EPOCH or self.window.end_instant > PAD_END:
            raise ConfigError(f"sample window {self.window} must lie within 1900-01 .. 2050-12")
        if self.era5t_months < 0:
            raise ConfigError("era5t_months must be 0 or more")

    @property
    def latitude(self) -> np.ndarray:
        """ERA5 orientation: 90 -> -90."""
        n = round(180.0 / self.resolution) + 1
        return np.linspace(90.0, -90.0, n)

    @property
    def longitude(self) -> np.ndarray:
        """ERA5 orientation: 0 -> 360 - d."""
        return np.arange(round(360.0 / self.resolution)) * self.resolution

    @property
    def kind(self) -> StepKind:
        """How values relate to their stamps."""
        return {"1h": "instant", "6h": "instant", "1D": "daily", "1MS": "monthly"}[self.step]  # type: ignore[return-value]

    @property
    def padded_hours(self) -> np.ndarray:
        """The padded time axis, in hours since 1900-01-01 (int64)."""
        # Cached per step at module level, not on the spec: specs travel to every task.
        return _padded_hours(self.step)

    @property
    def data_slice(self) -> slice:
        """Index range of the time axis that holds data."""
        hours = self.padded_hours
        lo = _hours(pd.DatetimeIndex([self.window.first_instant]))[0]
        hi = _hours(pd.DatetimeIndex([self.window.end_instant]))[0]
        return slice(int(np.searchsorted(hours, lo)), int(np.searchsorted(hours, hi)))

    def block_slices(self) -> list[slice]:
        """Deterministic partition of the data steps into blocks of work."""
        s = self.data_slice
        size = self.steps_per_block or {"1h": 24, "6h": 8, "1D": 8, "1MS": 2}[self.step]
        return [slice(i, min(i + size, s.stop)) for i in range(s.start, s.stop, size)]

    def root_attrs(self) -> dict[str, Any]:
        """ARCO-ERA5 root attributes (dates inclusive), plus provenance."""
        last = self.window.end
        # At least the first month is final ERA5, as in the real store.
        final = last - min(self.era5t_months, len(self.window) - 1)
        stop_era5t = last.end_time.normalize()
        stop = final.end_time.normalize()
        updated = stop_era5t + pd.Timedelta(days=6, hours=2, minutes=48)
        return {
            "valid_time_start": str(self.window.first_instant.date()),
            "valid_time_stop": str(stop.date()),
            "valid_time_stop_era5t": str(stop_era5t.date()),
            "last_updated": f"{updated} +00:00".replace(" +00:00", "+00:00"),
            "title": "carbonsink synthetic ERA5-like sample (not ERA5 data)",
            SAMPLE_ATTR: (
                f"seed={self.seed} step={self.step} resolution={self.resolution} "
                f"window={self.window}"
            ),
        }


@lru_cache(maxsize=4)
def _padded_hours(step: str) -> np.ndarray:
    hours = _hours(pd.date_range(EPOCH, PAD_END, freq=step, inclusive="left"))
    hours.flags.writeable = False
    return hours


def _hours(times: pd.DatetimeIndex) -> np.ndarray:
    return ((times - EPOCH) // pd.Timedelta(hours=1)).to_numpy(dtype=np.int64)


def _compressor(zarr_format: int) -> Any:
    if zarr_format == 2:
        return numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
    return zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


def _var_attrs(name: str, spec: SampleSpec) -> dict[str, Any]:
    long_name, standard = _LONG_NAMES[name]
    src = SOURCE_VARIABLES[name]
    attrs: dict[str, Any] = {
        "long_name": long_name,
        "short_name": src.aliases[0] if src.aliases else name,
        "units": src.units,
    }
    if standard:
        attrs["standard_name"] = standard
    if spec.kind != "instant":
        attrs["cell_methods"] = "time: mean"
        if src.accumulated:
            attrs["comment"] = "mean of hourly accumulations over the period starting at the stamp"
            attrs["accumulation_period_hours"] = 1
    return attrs


def sample_land_fraction(spec: SampleSpec) -> np.ndarray:
    """Land fraction of the sample's point cells (its ``land_sea_mask``)."""
    return land_fraction(
        point_grid_bounds(spec.latitude, clip=(-90.0, 90.0)), point_grid_bounds(spec.longitude)
    )


def create_template(
    url: str, spec: SampleSpec, storage: StorageOptions | None = None, *, overwrite: bool = False
) -> None:
    """Write the store's metadata, coordinates and consolidated metadata (no data)."""
    loc = parse_location(url)
    store = zarr_store(loc, storage or StorageOptions(), read_only=False)
    fmt = spec.zarr_format
    try:
        zarr.open_group(store, mode="r")
        exists = True
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError):
        exists = False
    if exists and not overwrite:
        raise ConfigError(
            f"{loc.url} already holds a Zarr store; pass --overwrite or choose another --out"
        )
    root = zarr.open_group(store, mode="w", zarr_format=2 if fmt == 2 else 3)
    root.attrs.update(spec.root_attrs())

    def array(
        name: str,
        data: np.ndarray | None,
        shape: tuple[int, ...],
        chunks: tuple[int, ...],
        dtype: str,
        dims: tuple[str, ...],
        attrs: dict,
        fill: Any,
    ) -> zarr.Array:
        kw: dict[str, Any] = {"compressors": _compressor(fmt)}
        if fmt == 3:
            kw["dimension_names"] = dims
        arr = root.create_array(
            name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill, **kw
        )
        a = dict(attrs)
        if fmt == 2:
            a["_ARRAY_DIMENSIONS"] = list(dims)
        arr.attrs.update(a)
        if data is not None:
            arr[...] = data
        return arr

    nt = spec.padded_hours.size
    ny, nx = spec.latitude.size, spec.longitude.size
    array(
        "time", spec.padded_hours, (nt,), (min(nt, 1 << 20),), "int64", ("time",),
        {"units": "hours since 1900-01-01", "calendar": "proleptic_gregorian", "long_name": "time"},
        None,
    )  # fmt: skip
    for name, values, units in (
        ("latitude", spec.latitude, "degrees_north"),
        ("longitude", spec.longitude, "degrees_east"),
    ):
        attrs = {"units": units, "long_name": name, "standard_name": name}
        array(
            name,
            values.astype(np.float32),
            values.shape,
            values.shape,
            "float32",
            (name,),
            attrs,
            None,
        )
    for name in spec.variables:
        array(name, None, (nt, ny, nx), (1, ny, nx), "float32", ("time", "latitude", "longitude"),
              _var_attrs(name, spec), float("nan"))  # fmt: skip
    with warnings.catch_warnings():
        # zarr notes that consolidated metadata is not yet part of the v3 spec; readers of
        # a v3 store fall back to listing it, so consolidating is still worth it.
        warnings.simplefilter("ignore", category=zarr.errors.ZarrUserWarning)
        zarr.consolidate_metadata(store)


def write_block(
    url: str,
    spec: SampleSpec,
    block: slice,
    land: np.ndarray,
    storage: StorageOptions | None = None,
) -> int:
    """Generate and write the time steps ``block`` of every variable; returns steps written.

    Steps are generated one at a time and written in runs of consecutive steps of at most
    ``_FLUSH_BYTES`` per variable, so memory stays bounded whatever the grid, and small
    grids do not pay one store call per step.
    """
    loc = parse_location(url)
    store = zarr_store(loc, storage or StorageOptions(), read_only=False)
    root = zarr.open_group(store, mode="r+", use_consolidated=False)
    arrays = {name: root[name] for name in spec.variables}
    climate = _climate(spec, land)
    stamps = EPOCH + pd.to_timedelta(spec.padded_hours[block], unit="h")
    step_bytes = land.size * 4 * len(spec.variables)
    per_flush = max(1, _FLUSH_BYTES // step_bytes)
    pending: dict[str, list[np.ndarray]] = {name: [] for name in spec.variables}
    first = block.start
    for i, stamp in zip(range(block.start, block.stop), stamps, strict=True):
        fields = climate.fields(stamp, spec.kind, spec.variables)
        for name in spec.variables:
            pending[name].append(fields[name])
        if i + 1 - first == per_flush or i + 1 == block.stop:
            for name, arr in arrays.items():
                arr[first : i + 1] = np.stack(pending[name])  # type: ignore[index]
                pending[name].clear()
            first = i + 1
    return block.stop - block.start


_FLUSH_BYTES = 64 * 2**20


_CLIMATES: dict[tuple, SampleClimate] = {}


def _climate(spec: SampleSpec, land: np.ndarray) -> SampleClimate:
    # One per process and spec: building one costs half a second at 0.25 deg.
    key = (spec.resolution, spec.seed, land.shape)
    if key not in _CLIMATES:
        _CLIMATES.clear()
        _CLIMATES[key] = SampleClimate(spec.latitude, spec.longitude, land, spec.seed)
    return _CLIMATES[key]
