"""The climate drivers carbonsink ingests, and how each comes out of ERA5.

One :class:`Driver` per feature in the lake's ``features`` store. A driver is either read
from one ERA5 variable (with a unit conversion; accumulations become rates) or derived
from several, hour by hour, before the monthly mean (VPD and wind speed are non-linear,
so the mean of the hourly values differs from the value of the monthly means).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np
import xarray as xr

from carbonsink.errors import ConfigError, SourceError

#: Density of liquid water, kg m-3 (converts metres of water to kg m-2).
WATER_DENSITY = 1000.0

Domain = Literal["all", "land", "ocean"]
Kernel = Literal["mean", "vpd", "wind_speed", "wind_speed_squared"]


@dataclass(frozen=True)
class SourceVariable:
    """An ERA5 variable as the ARCO-ERA5 store names and stores it.

    Attributes
    ----------
    name
        ARCO-ERA5 (CDS long) name, e.g. ``2m_temperature``.
    units
        Units in ARCO-ERA5, in ECMWF notation where that is what the store says.
    accumulated
        Whether the value is an accumulation (a sum over a period: the hour ending at the
        stamp in hourly ERA5, a mean daily sum in its monthly means). The source says over
        what period (:attr:`carbonsink.sources.base.TimeSemantics.accumulation`); the
        drivers use it as a rate per second.
    aliases
        Other names used for it: GRIB short name, CDS NetCDF names.
    param_ids
        GRIB parameter ids (ERA5 uses several for some fields).
    """

    name: str
    units: str
    accumulated: bool = False
    aliases: tuple[str, ...] = ()
    param_ids: tuple[int, ...] = ()


def _same(x: xr.DataArray) -> xr.DataArray:
    return x


# Spellings of the same unit found in ERA5 stores and CDS downloads.
_UNIT_SYNONYMS: dict[str, str] = {
    "m s**-1": "m s-1",
    "m/s": "m s-1",
    "J m**-2": "J m-2",
    "m**3 m**-3": "m3 m-3",
    "m^3 m^-3": "m3 m-3",
    "(0 - 1)": "1",
    "0-1": "1",
    "fraction": "1",
    "~": "1",
    "m**2 m**-2": "m2 m-2",
    "m^2 m^-2": "m2 m-2",
    "kelvin": "K",
    "degK": "K",
    "pascal": "Pa",
    "metres": "m",
    "meters": "m",
    "m of water equivalent": "m",
}

# Conversions we accept instead of an error: (found, expected) -> (scale, offset).
_CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("degC", "K"): (1.0, 273.15),
    ("C", "K"): (1.0, 273.15),
    ("hPa", "Pa"): (100.0, 0.0),
    ("mm", "m"): (1e-3, 0.0),
    ("%", "1"): (1e-2, 0.0),
}


def canonical_units(units: str) -> str:
    """Normalise ECMWF/CF spellings of a unit (``m s**-1`` and ``m/s`` -> ``m s-1``)."""
    u = " ".join(str(units).replace("°", "deg").split())
    return _UNIT_SYNONYMS.get(u, u)


def unit_conversion(found: str | None, expected: str, *, variable: str) -> tuple[float, float]:
    """``(scale, offset)`` with ``value_in_expected = scale * value_in_found + offset``.

    Raises
    ------
    SourceError
        If the units are missing or not convertible, naming the variable and the fix.
    """
    if found is None:
        raise SourceError(
            f"variable {variable!r} has no units attribute; carbonsink expects "
            f"{expected!r} (set the attribute in the source)"
        )
    f, want = canonical_units(found), canonical_units(expected)
    if f == want:
        return (1.0, 0.0)
    conv = _CONVERSIONS.get((f, want))
    if conv is None:
        raise SourceError(
            f"variable {variable!r} has units {found!r} but carbonsink expects "
            f"{expected!r}; convert the source or fix its units attribute"
        )
    return conv


def to_expected_units(da: xr.DataArray, expected: str, *, variable: str) -> xr.DataArray:
    """Return ``da`` in ``expected`` units, converting known alternatives."""
    scale, offset = unit_conversion(da.attrs.get("units"), expected, variable=variable)
    if (scale, offset) == (1.0, 0.0):
        return da
    out = da * scale + offset
    out.attrs = {**da.attrs, "units": expected}
    return out


SOURCE_VARIABLES: dict[str, SourceVariable] = {
    v.name: v
    for v in (
        SourceVariable("2m_temperature", "K", aliases=("t2m", "2t"), param_ids=(167,)),
        SourceVariable("2m_dewpoint_temperature", "K", aliases=("d2m", "2d"), param_ids=(168,)),
        SourceVariable(
            "total_precipitation", "m", accumulated=True, aliases=("tp",), param_ids=(228, 228228)
        ),
        SourceVariable(
            "surface_solar_radiation_downwards",
            "J m**-2",
            accumulated=True,
            aliases=("ssrd",),
            param_ids=(169,),
        ),
        SourceVariable(
            "volumetric_soil_water_layer_1", "m3 m-3", aliases=("swvl1",), param_ids=(39,)
        ),
        SourceVariable("soil_temperature_level_1", "K", aliases=("stl1",), param_ids=(139,)),
        SourceVariable(
            "leaf_area_index_high_vegetation", "m2 m-2", aliases=("lai_hv",), param_ids=(67,)
        ),
        SourceVariable(
            "leaf_area_index_low_vegetation", "m2 m-2", aliases=("lai_lv",), param_ids=(66,)
        ),
        SourceVariable(
            "10m_u_component_of_wind", "m s**-1", aliases=("u10", "10u"), param_ids=(165,)
        ),
        SourceVariable(
            "10m_v_component_of_wind", "m s**-1", aliases=("v10", "10v"), param_ids=(166,)
        ),
        SourceVariable("sea_surface_temperature", "K", aliases=("sst",), param_ids=(34, 151159)),
        SourceVariable(
            "sea_ice_cover", "(0 - 1)", aliases=("siconc", "ci"), param_ids=(31, 262001)
        ),
        SourceVariable("mean_sea_level_pressure", "Pa", aliases=("msl",), param_ids=(151,)),
        SourceVariable("land_sea_mask", "(0 - 1)", aliases=("lsm",), param_ids=(172,)),
    )
}

#: ERA5's land points are those with land_sea_mask >= 0.5 (ECMWF's own convention).
LAND_SEA_MASK = "land_sea_mask"
LAND_THRESHOLD = 0.5


def saturation_vapour_pressure(t_kelvin: xr.DataArray) -> xr.DataArray:
    """Saturation vapour pressure over water, Pa (Magnus form).

    Alduchov, O. A. and Eskridge, R. E. (1996), Improved Magnus form approximation of
    saturation vapor pressure, J. Appl. Meteor. 35, 601-609:
    ``e_s = 610.94 exp(17.625 T / (T + 243.04))`` with ``T`` in deg C.
    """
    tc = t_kelvin - 273.15
    return 610.94 * cast(xr.DataArray, np.exp(17.625 * tc / (tc + 243.04)))


def _vpd(t2m: xr.DataArray, d2m: xr.DataArray) -> xr.DataArray:
    # Dewpoint above temperature (supersaturation in the analysis) is clipped to 0 deficit.
    return (saturation_vapour_pressure(t2m) - saturation_vapour_pressure(d2m)).clip(min=0.0)


def _wind_speed(u: xr.DataArray, v: xr.DataArray) -> xr.DataArray:
    return cast(xr.DataArray, np.hypot(u, v))


def _wind_speed_squared(u: xr.DataArray, v: xr.DataArray) -> xr.DataArray:
    return u * u + v * v


@dataclass(frozen=True)
class Driver:
    """One monthly driver field of the ``features`` store.

    Attributes
    ----------
    name
        Name in the lake, e.g. ``t2m``, ``pr``, ``vpd``.
    inputs
        ARCO-ERA5 variable names it is computed from.
    units
        Units in the lake.
    long_name, standard_name
        CF metadata.
    domain
        ``land``: averaged over ERA5 land points only (NaN over the open ocean);
        ``ocean``: NaN over land in ERA5 itself; ``all``: defined everywhere.
    plausible
        ``(low, high)`` for monthly means; a value outside means wrong units or data.
    compute
        Maps the input DataArrays (in ARCO units) to the driver, hour by hour: the
        reference definition, in xarray.
    kernel, scale
        The same computation for the fused aggregation of :mod:`carbonsink.aggregate`:
        ``mean`` of ``scale`` times the input (an accumulated input as a rate per second),
        or a derived quantity.
    """

    name: str
    inputs: tuple[str, ...]
    units: str
    long_name: str
    standard_name: str | None
    domain: Domain
    plausible: tuple[float, float]
    compute: Callable[..., xr.DataArray] = field(default=_same, repr=False, compare=False)
    kernel: Kernel = "mean"
    scale: float = 1.0

    @property
    def nan_allowed(self) -> bool:
        """Whether NaN is an expected value (outside the driver's domain)."""
        return self.domain != "all"

    def attrs(self) -> dict[str, str]:
        """CF attributes of the monthly driver."""
        a = {"units": self.units, "long_name": self.long_name, "cell_methods": "time: mean"}
        if self.standard_name:
            a["standard_name"] = self.standard_name
        if self.domain == "land":
            a["comment"] = "mean over ERA5 land points (land_sea_mask >= 0.5)"
        return a


def _rate(scale: float) -> Callable[[xr.DataArray], xr.DataArray]:
    def f(x: xr.DataArray) -> xr.DataArray:
        return x * scale

    return f


DRIVERS: dict[str, Driver] = {
    d.name: d
    for d in (
        Driver(
            "t2m",
            ("2m_temperature",),
            "K",
            "2 m air temperature",
            "air_temperature",
            "all",
            (170.0, 340.0),
        ),
        Driver(
            "d2m",
            ("2m_dewpoint_temperature",),
            "K",
            "2 m dewpoint temperature",
            "dew_point_temperature",
            "all",
            (150.0, 320.0),
        ),
        Driver(
            "pr",
            ("total_precipitation",),
            "kg m-2 s-1",
            "precipitation rate",
            "precipitation_flux",
            "all",
            (0.0, 5e-3),
            # m of water per second -> kg m-2 s-1
            _rate(WATER_DENSITY),
            scale=WATER_DENSITY,
        ),
        Driver(
            "rsds",
            ("surface_solar_radiation_downwards",),
            "W m-2",
            "surface downwelling shortwave radiation",
            "surface_downwelling_shortwave_flux_in_air",
            "all",
            (0.0, 500.0),
            # J m-2 per second is W m-2
            _rate(1.0),
            scale=1.0,
        ),
        Driver(
            "swvl1",
            ("volumetric_soil_water_layer_1",),
            "m3 m-3",
            "volumetric soil water, layer 1 (0-7 cm)",
            None,
            "land",
            (0.0, 0.8),
        ),
        Driver(
            "stl1",
            ("soil_temperature_level_1",),
            "K",
            "soil temperature, layer 1 (0-7 cm)",
            "soil_temperature",
            "land",
            (170.0, 345.0),
        ),
        Driver(
            "lai_hv",
            ("leaf_area_index_high_vegetation",),
            "m2 m-2",
            "leaf area index of high vegetation",
            "leaf_area_index",
            "land",
            (0.0, 12.0),
        ),
        Driver(
            "lai_lv",
            ("leaf_area_index_low_vegetation",),
            "m2 m-2",
            "leaf area index of low vegetation",
            "leaf_area_index",
            "land",
            (0.0, 12.0),
        ),
        Driver(
            "u10",
            ("10m_u_component_of_wind",),
            "m s-1",
            "10 m eastward wind",
            "eastward_wind",
            "all",
            (-40.0, 40.0),
        ),
        Driver(
            "v10",
            ("10m_v_component_of_wind",),
            "m s-1",
            "10 m northward wind",
            "northward_wind",
            "all",
            (-40.0, 40.0),
        ),
        Driver(
            "sst",
            ("sea_surface_temperature",),
            "K",
            "sea surface temperature",
            "sea_surface_temperature",
            "ocean",
            (265.0, 310.0),
        ),
        Driver(
            "siconc",
            ("sea_ice_cover",),
            "1",
            "sea ice area fraction",
            "sea_ice_area_fraction",
            "ocean",
            (0.0, 1.0),
        ),
        Driver(
            "msl",
            ("mean_sea_level_pressure",),
            "Pa",
            "mean sea level pressure",
            "air_pressure_at_mean_sea_level",
            "all",
            (90_000.0, 110_000.0),
        ),
        Driver(
            "vpd",
            ("2m_temperature", "2m_dewpoint_temperature"),
            "Pa",
            "2 m vapour pressure deficit (monthly mean of hourly values)",
            "water_vapor_saturation_deficit_in_air",
            "all",
            (0.0, 10_000.0),
            _vpd,
            kernel="vpd",
        ),
        Driver(
            "wind_speed",
            ("10m_u_component_of_wind", "10m_v_component_of_wind"),
            "m s-1",
            "10 m wind speed (monthly mean of hourly values)",
            "wind_speed",
            "all",
            (0.0, 40.0),
            _wind_speed,
            kernel="wind_speed",
        ),
        Driver(
            "wind_speed_squared",
            ("10m_u_component_of_wind", "10m_v_component_of_wind"),
            "m2 s-2",
            "mean square of 10 m wind speed, <U10^2> for gas transfer (Wanninkhof 2014)",
            None,
            "all",
            (0.0, 1600.0),
            _wind_speed_squared,
            kernel="wind_speed_squared",
        ),
    )
}

#: Every driver, in the order of the ``features`` store.
DEFAULT_DRIVERS: tuple[str, ...] = tuple(DRIVERS)


def resolve_drivers(names: Iterable[str] | None) -> list[Driver]:
    """Look drivers up by name (all of them for ``None``), with a clear error."""
    if names is None:
        return list(DRIVERS.values())
    out = []
    for n in names:
        if n not in DRIVERS:
            raise ConfigError(f"unknown driver {n!r}; choose from {', '.join(DRIVERS)}")
        out.append(DRIVERS[n])
    if not out:
        raise ConfigError("no drivers selected; name at least one, e.g. t2m")
    return out


def required_variables(drivers: Iterable[Driver]) -> list[str]:
    """ARCO-ERA5 variables the drivers need, in first-use order."""
    seen: dict[str, None] = {}
    for d in drivers:
        for v in d.inputs:
            seen.setdefault(v, None)
    return list(seen)


def per_second_of(name: str, per_second: Mapping[str, float] | None) -> float:
    """The factor from values of source variable ``name`` to rates per second.

    1 for a variable that is not accumulated; for an accumulated one, what the source said
    (the inverse of its accumulation period). There is no default: reading a monthly mean
    daily sum as an hourly one overstates it 24-fold.
    """
    if not SOURCE_VARIABLES[name].accumulated:
        return 1.0
    if per_second is None or name not in per_second:
        raise ValueError(
            f"{name} is accumulated: pass its factor to a rate per second (1/3600 for "
            "ERA5's hourly sums), from the source's time semantics"
        )
    return float(per_second[name])


def compute_driver(
    driver: Driver,
    inputs: Mapping[str, xr.DataArray],
    per_second: Mapping[str, float] | None = None,
) -> xr.DataArray:
    """Apply unit conversion and derivation to the (hourly) inputs of one driver.

    ``per_second`` gives, for accumulated inputs, the factor from a value to a rate per
    second (:func:`per_second_of`).
    """
    args = []
    for name in driver.inputs:
        spec = SOURCE_VARIABLES[name]
        x = to_expected_units(inputs[name], spec.units, variable=name)
        rate = per_second_of(name, per_second)
        args.append(x if rate == 1.0 else x * rate)
    out = driver.compute(*args)
    out.attrs = driver.attrs()
    out.name = driver.name
    return out
