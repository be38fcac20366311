"""A cheap, deterministic synthetic climate for sample ERA5-like data.

Not a climate model: closed-form fields with the structure that matters to carbonsink's
tests and demos, computed fast enough to write a month of hourly 0.25 degree data:

- climatology by latitude and season; land/ocean contrast from the real land mask
  (continentality, deserts, ice sheets, monsoons, storm tracks, ITCZ);
- a diurnal cycle (temperature, precipitation, solar geometry) for sub-daily steps;
- interannual variability: an ENSO-like index with warm phases in 2015/16 and 2023/24
  (and cold ones in 2010/11 and 2020-22) with teleconnections (Amazon, Indonesia and
  Australia dry and warm in warm phases), a warming trend, named droughts and heat waves
  (Europe 2003/2018/2022, Russia 2010, US 2012, Australia 2019, Pacific Northwest 2021,
  Amazon 2015/16 and 2023/24, ...) plus seeded random events in every year;
- weather: large-scale patterns drifting eastwards, with smooth random amplitudes.

Every value is a function of (seed, grid, time stamp) only, so any split of the work
across processes gives identical bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

StepKind = Literal["instant", "daily", "monthly"]
SOLAR_CONSTANT = 1361.0  # W m-2 (Kopp and Lean 2011)

#: The variables the generator writes, under their ARCO-ERA5 names.
SAMPLE_VARIABLES: tuple[str, ...] = (
    "2m_temperature",
    "2m_dewpoint_temperature",
    "total_precipitation",
    "surface_solar_radiation_downwards",
    "volumetric_soil_water_layer_1",
    "soil_temperature_level_1",
    "leaf_area_index_high_vegetation",
    "leaf_area_index_low_vegetation",
    "10m_u_component_of_wind",
    "10m_v_component_of_wind",
    "sea_surface_temperature",
    "sea_ice_cover",
    "mean_sea_level_pressure",
    "land_sea_mask",
)


@dataclass(frozen=True)
class Event:
    """A drought and/or heat wave: a Gaussian blob in space, a sin**2 bump in time."""

    name: str
    start: str  # YYYY-MM
    months: int
    lat: float
    lon: float
    radius: float  # degrees
    dt: float  # K at the peak
    precip_factor: float  # multiplier at the peak (<1: drought)


NAMED_EVENTS: tuple[Event, ...] = (
    Event("Europe heat wave 2003", "2003-06", 3, 46.0, 3.0, 10.0, 4.0, 0.5),
    Event("Russian heat wave 2010", "2010-06", 3, 55.0, 45.0, 10.0, 5.5, 0.5),
    Event("US Midwest drought 2012", "2012-05", 4, 40.0, -95.0, 10.0, 2.5, 0.45),
    Event("Amazon drought 2015/16", "2015-08", 8, -5.0, -62.0, 12.0, 1.8, 0.45),
    Event("Southern Africa drought 2015/16", "2015-11", 5, -22.0, 28.0, 9.0, 1.5, 0.5),
    Event("Europe drought 2018", "2018-05", 4, 54.0, 12.0, 11.0, 3.0, 0.5),
    Event("Australia Black Summer 2019", "2019-09", 6, -32.0, 148.0, 9.0, 2.5, 0.35),
    Event("Siberian heat 2020", "2020-01", 6, 67.0, 100.0, 15.0, 5.0, 0.8),
    Event("Horn of Africa drought 2020-22", "2020-10", 26, 5.0, 42.0, 8.0, 0.8, 0.5),
    Event("Pacific Northwest heat dome 2021", "2021-06", 2, 47.0, -121.0, 7.0, 6.0, 0.6),
    Event("Europe heat and drought 2022", "2022-06", 3, 46.0, 5.0, 12.0, 3.5, 0.5),
    Event("Yangtze heat and drought 2022", "2022-07", 2, 30.0, 110.0, 8.0, 3.0, 0.4),
    Event("Amazon drought 2023/24", "2023-07", 9, -5.0, -60.0, 12.0, 2.0, 0.4),
)

# ENSO backbone: (peak month, amplitude); Gaussian bumps 4 months wide.
_ENSO_PEAKS: tuple[tuple[str, float], ...] = (
    ("1972-12", 2.0), ("1976-12", 0.9), ("1982-12", 2.2), ("1987-09", 1.3),
    ("1988-12", -1.8), ("1991-12", 1.5), ("1997-12", 2.4), ("1999-01", -1.5),
    ("2002-12", 1.0), ("2007-12", -1.5), ("2009-12", 1.4), ("2010-12", -1.6),
    ("2011-12", -1.0), ("2015-12", 2.6), ("2016-11", -0.6), ("2018-12", 0.8),
    ("2020-11", -1.2), ("2021-12", -1.0), ("2022-11", -1.0), ("2023-12", 2.0),
    ("2024-12", -0.6),
)  # fmt: skip

# Deserts and monsoon regions as (lat, lon, lat radius, lon radius).
_DESERTS = (
    (22.0, 15.0, 9.0, 30.0),  # Sahara
    (24.0, 47.0, 8.0, 12.0),  # Arabia
    (-24.0, 133.0, 8.0, 14.0),  # Australia
    (33.0, -112.0, 6.0, 8.0),  # North American deserts
    (-23.0, -69.0, 8.0, 3.0),  # Atacama
    (-24.0, 20.0, 5.0, 6.0),  # Kalahari/Namib
    (42.0, 80.0, 7.0, 25.0),  # Central Asia, Gobi
)
_MONSOON_NH = ((22.0, 82.0, 8.0, 15.0), (12.0, 0.0, 5.0, 15.0), (20.0, -103.0, 6.0, 8.0))
_MONSOON_SH = ((-14.0, 133.0, 5.0, 12.0), (-12.0, -55.0, 8.0, 12.0), (-15.0, 28.0, 6.0, 12.0))
_ENSO_DRY = ((-4.0, -62.0, 10.0, 14.0), (-2.0, 115.0, 8.0, 15.0), (-15.0, 135.0, 7.0, 10.0),
             (-20.0, 30.0, 7.0, 10.0))  # fmt: skip


def _blob(
    lat: np.ndarray, lon: np.ndarray, clat: float, clon: float, rlat: float, rlon: float
) -> np.ndarray:
    """Gaussian blob on the lat/lon grid (longitude distance wraps around)."""
    dlon = (lon - clon + 180.0) % 360.0 - 180.0
    return np.exp(-(((lat - clat) / rlat) ** 2) - (dlon / rlon) ** 2).astype(np.float32)


def _months_since_1900(times: np.ndarray) -> np.ndarray:
    t = pd.DatetimeIndex(times)
    return np.asarray((t.year - 1900) * 12 + (t.month - 1) + (t.day - 1) / 31.0, dtype=np.float64)


_ENSO_PEAK_MONTHS = np.array(
    [(pd.Period(w, "M").year - 1900) * 12 + pd.Period(w, "M").month - 1 for w, _ in _ENSO_PEAKS],
    dtype=np.float64,
)
_ENSO_PEAK_AMPS = np.array([a for _, a in _ENSO_PEAKS])


def enso_index(times: np.ndarray, seed: int) -> np.ndarray:
    """ENSO-like index (about Nino-3.4 in K) at each stamp; deterministic by seed."""
    months = _months_since_1900(times)
    out = (
        _ENSO_PEAK_AMPS[None, :]
        * np.exp(-0.5 * ((months[:, None] - _ENSO_PEAK_MONTHS[None, :]) / 4.0) ** 2)
    ).sum(axis=1)
    rng = np.random.default_rng([seed, 7])
    for period_years in (3.3, 4.7, 6.1):
        phase = rng.uniform(0, 2 * np.pi)
        out += 0.25 * np.sin(2 * np.pi * months / (12 * period_years) + phase)
    return out


def _random_events(seed: int, years: range) -> list[Event]:
    events = []
    for year in years:
        rng = np.random.default_rng([seed, 11, year])
        for k in range(2):
            events.append(
                Event(
                    f"random event {year}-{k}",
                    f"{year}-{int(rng.integers(1, 13)):02d}",
                    int(rng.integers(2, 5)),
                    float(rng.uniform(-40, 60)),
                    float(rng.uniform(-180, 180)),
                    float(rng.uniform(6, 12)),
                    float(rng.uniform(1.0, 3.0)),
                    float(rng.uniform(0.5, 0.85)),
                )
            )
    return events


def _event_bounds(events: list[Event]) -> tuple[np.ndarray, np.ndarray]:
    starts = np.array([pd.Period(e.start, "M").start_time.value for e in events], dtype=np.int64)
    ends = np.array(
        [(pd.Period(e.start, "M") + e.months).start_time.value for e in events], dtype=np.int64
    )
    return starts, ends


class SampleClimate:
    """Synthetic ERA5-like fields on a lat/lon point grid.

    Parameters
    ----------
    lat, lon
        Point coordinates in degrees (ERA5: 90 -> -90, 0 -> 360 - d).
    land_fraction
        ``(nlat, nlon)`` land fraction of the cells around the points (0..1); it is also
        written as ``land_sea_mask``.
    seed
        Seed of the random parts (patterns, weather, random events, ENSO noise).
    """

    def __init__(
        self, lat: np.ndarray, lon: np.ndarray, land_fraction: np.ndarray, seed: int
    ) -> None:
        self.seed = int(seed)
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)
        ny, nx = self.lat.size, self.lon.size
        self.shape = (ny, nx)
        la = self.lat[:, None]
        lo = self.lon[None, :]
        f = np.asarray(land_fraction, dtype=np.float32)
        self.f = f
        self.is_land = f >= 0.5
        phi = np.deg2rad(la)
        self.sphi = np.sin(phi).astype(np.float32)
        self.cphi = np.cos(phi).astype(np.float32)
        alat = np.abs(la)
        lon180 = (lo + 180.0) % 360.0 - 180.0
        greenland = ((la > 60) & (la < 84) & (lon180 > -75) & (lon180 < -10)).astype(np.float32)
        self.ice = (f * np.maximum((la < -62).astype(np.float32), greenland)).astype(np.float32)
        deserts = np.sum([_blob(la, lo, *d) for d in _DESERTS], axis=0)
        self.arid = (f * np.clip(deserts, 0.0, 1.0)).astype(np.float32)
        self.wet = np.clip(1.0 - self.arid - 0.5 * self.ice, 0.0, 1.0).astype(np.float32)
        self.mon_nh = (f * np.sum([_blob(la, lo, *d) for d in _MONSOON_NH], axis=0)).astype(
            np.float32
        )
        self.mon_sh = (f * np.sum([_blob(la, lo, *d) for d in _MONSOON_SH], axis=0)).astype(
            np.float32
        )
        self.e_pac = (_blob(la, lo, 0.0, -120.0, 10.0, 45.0) * (1 - f)).astype(np.float32)
        self.e_wp = (_blob(la, lo, 0.0, 140.0, 10.0, 25.0) * (1 - f)).astype(np.float32)
        self.e_dry = np.sum([_blob(la, lo, *d) for d in _ENSO_DRY], axis=0).astype(np.float32)
        self.e_trop = (np.exp(-((la / 20.0) ** 2)) * f).astype(np.float32)
        s2 = self.sphi**2
        # Annual-mean 2 m temperature (K): warm tropics, cold poles and ice sheets,
        # continents colder at high and hotter at low latitudes than the ocean.
        self.t_base = (
            273.15 + 28.0 - 40.0 * s2 - 5.0 * f * s2 + 3.0 * self.arid - 28.0 * self.ice
        ).astype(np.float32)
        self.t_season_amp = ((2.5 + 13.0 * f) * self.sphi).astype(np.float32)
        self.t_trend = (0.02 * (1.0 + 2.0 * np.maximum(self.sphi, 0) ** 3)).astype(np.float32)
        self.t_diurnal = ((0.7 + 5.5 * f * (1.0 - 0.5 * self.wet)) * self.cphi).astype(np.float32)
        self.weather_t = ((0.6 + 2.4 * np.abs(self.sphi)) * (0.6 + 0.8 * f)).astype(np.float32)
        self.storm = np.exp(-(((alat - 47.0) / 11.0) ** 2)).astype(np.float32)
        self.p_clim = np.clip(
            (0.4 + 3.5 * np.exp(-(((la - 6.0) / 9.0) ** 2)) + 3.2 * self.storm)
            * (1 - 0.92 * self.arid),
            0.05,
            None,
        ).astype(np.float32)
        self.wet_clim = (
            np.clip(self.p_clim / 4.0, 0.0, 1.0) ** 0.6 * (1 - 0.8 * self.arid)
        ).astype(np.float32)
        self.forest = (
            f * self.wet_clim * (1 - self.ice) * (1 - 0.6 * np.clip((alat - 55) / 15, 0, 1))
        ).astype(np.float32)
        self.u_base = (
            (-6.5 * np.exp(-(((alat - 14) / 9) ** 2)) + 8.5 * np.exp(-(((alat - 50) / 11) ** 2))
             - 2.5 * np.exp(-(((alat - 75) / 6) ** 2))) * (1 - 0.45 * f)
        ).astype(np.float32)  # fmt: skip
        subtropical_high = 1100.0 * np.exp(-(((alat - 32) / 9) ** 2))
        subpolar_low = 1700.0 * np.exp(-(((alat - 62) / 9) ** 2))
        self.msl_base = (101325.0 + subtropical_high - subpolar_low).astype(np.float32)
        self.sst_base = (271.2 + 30.5 * np.abs(self.cphi) ** 1.7).astype(np.float32)
        self.sst_season = ((0.4 + 3.2 * np.abs(self.sphi)) * np.sign(self.sphi)).astype(np.float32)
        self.lai_phen = np.clip((alat - 25.0) / 30.0, 0.0, 1.0).astype(np.float32)
        # Static parts of the per-stamp formulas, so each stamp costs a few operations.
        land01 = self.is_land.astype(np.float32)
        self.dd_static = (1.5 + 2.5 * f + 13.0 * self.arid).astype(np.float32)
        self.dd_diurnal = (2.0 * f * (1 - 0.5 * self.wet)).astype(np.float32)
        self.lai_hv_static = (5.5 * self.forest * land01).astype(np.float32)
        self.lai_lv_static = (
            2.2 * f * (1 - 0.6 * self.forest) * (1 - self.arid**2) * (1 - self.ice) * land01
        ).astype(np.float32)
        self.theta_static = (0.07 + 0.33 * self.wet_clim).astype(np.float32)
        self.land01 = land01
        self.sea_nan = np.where(self.is_land, np.float32(np.nan), np.float32(0.0)).astype(
            np.float32
        )
        self.amp_u = (1.5 + 3.5 * np.abs(self.sphi)).astype(np.float32)
        self.amp_v = (1.2 + 3.0 * np.abs(self.sphi)).astype(np.float32)
        self.amp_msl = (250.0 + 1300.0 * np.abs(self.sphi)).astype(np.float32)
        self.v_land = (1 - 0.4 * f).astype(np.float32)
        self.msl_winter = (1800.0 * f * np.exp(-(((alat - 50) / 12) ** 2))).astype(np.float32)
        self.enso_t = (1.1 * self.e_pac + 0.5 * self.e_trop + 0.6 * self.e_dry * f).astype(
            np.float32
        )
        self.enso_sst = (2.4 * self.e_pac - 0.5 * self.e_wp).astype(np.float32)
        self.enso_p = (1.2 * self.e_pac - 0.45 * self.e_dry).astype(np.float32)
        self.enso_theta = (0.05 * self.e_dry * f).astype(np.float32)
        self.p_storm = (3.2 * self.storm * (1 - 0.35 * f)).astype(np.float32)
        self.p_dry = ((1 - 0.92 * self.arid) * (1 - 0.7 * self.ice)).astype(np.float32)
        self.p_diurnal = (0.6 * f).astype(np.float32)
        self.tau_ice = (0.76 - 0.08 * self.ice).astype(np.float32)
        self._patterns = self._make_patterns()
        self._speeds = np.random.default_rng([self.seed, 3]).uniform(
            0.25, 0.6, size=len(self._patterns)
        )
        years = range(1900, 2051)
        self.events = list(NAMED_EVENTS) + _random_events(self.seed, years)
        self._event_start, self._event_end = _event_bounds(self.events)
        self._event_blobs: dict[int, np.ndarray] = {}
        rng = np.random.default_rng([self.seed, 5])
        # Weather amplitudes: per variable, two patterns, three waves of 1.5-20 days.
        self._coef_periods = rng.uniform(36.0, 480.0, size=(8, 2, 3))
        self._coef_phases = rng.uniform(0, 2 * np.pi, size=(8, 2, 3))

    def _make_patterns(self) -> list[np.ndarray]:
        """Four smooth random fields of unit variance (sums of separable waves)."""
        rng = np.random.default_rng([self.seed, 1])
        phi = np.deg2rad(self.lat)[:, None]
        lam = np.deg2rad(self.lon)[None, :]
        pats = []
        for _ in range(4):
            p = np.zeros(self.shape, dtype=np.float32)
            for _ in range(8):
                m = rng.integers(1, 9)
                n = rng.integers(1, 7)
                a = rng.normal()
                p += (
                    a
                    * np.cos(n * phi + rng.uniform(0, 2 * np.pi))
                    * np.cos(m * lam + rng.uniform(0, 2 * np.pi))
                ).astype(np.float32)
            p /= max(float(p.std()), 1e-6)
            pats.append(p.astype(np.float32))
        return pats

    def _event_blob(self, k: int) -> np.ndarray:
        if k not in self._event_blobs:
            e = self.events[k]
            self._event_blobs[k] = _blob(
                self.lat[:, None], self.lon[None, :], e.lat, e.lon, e.radius, e.radius
            )
        return self._event_blobs[k]

    def _coef(self, hours: float, var: int) -> tuple[float, float]:
        """Smooth random amplitudes (period 1.5-20 days) of two weather patterns."""
        waves = np.sin(2 * np.pi * hours / self._coef_periods[var] + self._coef_phases[var])
        c = waves.sum(axis=1) / np.sqrt(1.5)
        return float(c[0]), float(c[1])

    def fields(
        self, stamp: pd.Timestamp, kind: StepKind, variables: tuple[str, ...] = SAMPLE_VARIABLES
    ) -> dict[str, np.ndarray]:
        """All requested variables at one time stamp, in ARCO-ERA5 units (float32).

        Parameters
        ----------
        stamp
            The time stamp.
        kind
            ``instant``: values at the stamp, accumulations over the hour ending at it
            (ERA5's hourly convention). ``daily``/``monthly``: means over the day/month
            starting at the stamp; accumulations are then mean hourly accumulations.
        variables
            ARCO-ERA5 names.
        """
        t = pd.Timestamp(stamp)
        if kind == "monthly":
            mid = t + (t + pd.offsets.MonthBegin() - t) / 2
        elif kind == "daily":
            mid = t + pd.Timedelta(hours=12)
        else:
            mid = t
        hours = (mid - pd.Timestamp("1900-01-01")) / pd.Timedelta(hours=1)
        doy = mid.day_of_year + mid.hour / 24.0
        year = mid.year + (doy - 1) / 365.25
        season = np.float32(np.cos(2 * np.pi * (doy - 197.0) / 365.25))
        enso = np.float32(enso_index(np.array([mid.to_datetime64()]), self.seed)[0])
        noise_scale = np.float32({"instant": 1.0, "daily": 0.6, "monthly": 0.3}[kind])
        sub_daily = kind == "instant"
        f = self.f

        # Weather: patterns drifting eastwards at 0.25-0.6 deg/h.
        dlon = float(abs(self.lon[1] - self.lon[0]))
        rolled = [
            np.roll(p, round(speed * hours / dlon) % self.shape[1], axis=1)
            for p, speed in zip(self._patterns, self._speeds, strict=True)
        ]

        def weather(var: int, a: int, b: int) -> np.ndarray:
            ca, cb = self._coef(hours, var)
            return (np.float32(ca) * rolled[a] + np.float32(cb) * rolled[b]) * noise_scale

        heat = np.zeros(self.shape, dtype=np.float32)
        dry = np.ones(self.shape, dtype=np.float32)
        now = mid.value
        active = np.nonzero((self._event_start <= now) & (now < self._event_end))[0]
        for k in active:
            e = self.events[k]
            x = (now - self._event_start[k]) / (self._event_end[k] - self._event_start[k])
            w = float(np.sin(np.pi * x) ** 2)
            if w > 0:
                blob = self._event_blob(int(k))
                heat += np.float32(e.dt * w) * blob
                dry *= 1.0 - np.float32((1.0 - e.precip_factor) * w) * blob
        drought = (1.0 - dry) * f

        lst_row = None
        if sub_daily:
            utc = t.hour + t.minute / 60.0
            lst_row = ((utc + self.lon / 15.0) % 24.0)[None, :].astype(np.float32)

        out: dict[str, np.ndarray] = {}
        la = self.lat[:, None]
        diurnal_t = None
        if lst_row is not None:
            diurnal_t = np.cos(2 * np.pi * (lst_row - 15.0) / 24.0).astype(np.float32)
        # Temperature.
        t2m = self.t_base + self.t_season_amp * season
        t2m += self.t_trend * np.float32(year - 2000.0)
        t2m += enso * self.enso_t
        t2m += heat * f
        t2m += self.weather_t * weather(0, 0, 1)
        if diurnal_t is not None:
            t2m += self.t_diurnal * diurnal_t

        # Precipitation (mm/day first): ITCZ and monsoons follow the season, storm
        # tracks, deserts and ice sheets are static, ENSO and droughts modulate it and
        # weather makes it intermittent (log-normal, mean 1).
        itcz = 6.0 + 5.0 * float(season)
        band = (0.4 + 8.5 * np.exp(-(((la - itcz) / 7.0) ** 2))).astype(np.float32)
        p = (band + self.p_storm) * self.p_dry
        p += (7.0 * max(float(season), 0.0)) * self.mon_nh
        p += (6.0 * max(-float(season), 0.0)) * self.mon_sh
        p *= np.maximum(1.0 + enso * self.enso_p, np.float32(0.1))
        p *= dry
        sigma = 0.9 * float(noise_scale)
        p *= np.exp(np.float32(0.9) * weather(1, 2, 3) - np.float32(sigma**2 / 2))
        if lst_row is not None:
            p *= 1.0 + self.p_diurnal * np.cos(2 * np.pi * (lst_row - 16.0) / 24.0).astype(
                np.float32
            )
        np.maximum(p, 0.0, out=p)
        if "total_precipitation" in variables:
            out["total_precipitation"] = p * np.float32(1.0 / (1000.0 * 24.0))

        if "2m_temperature" in variables:
            out["2m_temperature"] = t2m
        if "2m_dewpoint_temperature" in variables:
            dd = self.dd_static + 6.0 * drought
            dd += np.float32(0.8) * np.abs(weather(2, 1, 2))
            if diurnal_t is not None:
                dd += self.dd_diurnal * diurnal_t
            out["2m_dewpoint_temperature"] = t2m - np.maximum(dd, np.float32(0.2))

        if "surface_solar_radiation_downwards" in variables:
            decl = np.deg2rad(23.44) * np.sin(2 * np.pi * (doy - 80.0) / 365.25)
            dist = 1.0 + 0.033 * np.cos(2 * np.pi * doy / 365.25)
            if sub_daily:
                # ERA5 accumulates over the hour ending at the stamp: use its middle.
                utc_mid = (t.hour + t.minute / 60.0 - 0.5) % 24.0
                ha = (2 * np.pi * (utc_mid + self.lon / 15.0 - 12.0) / 24.0).astype(np.float32)
                mu = (
                    self.sphi * np.float32(np.sin(decl))
                    + (self.cphi * np.float32(np.cos(decl))) * np.cos(ha)[None, :]
                )
                toa = np.maximum(mu, 0.0) * np.float32(SOLAR_CONSTANT * dist)
            else:
                h0 = np.arccos(np.clip(-np.tan(np.deg2rad(self.lat)) * np.tan(decl), -1.0, 1.0))[
                    :, None
                ]
                sphi, cphi = self.sphi.astype(np.float64), self.cphi.astype(np.float64)
                col = (
                    SOLAR_CONSTANT
                    * dist
                    / np.pi
                    * (h0 * sphi * np.sin(decl) + cphi * np.cos(decl) * np.sin(h0))
                )
                toa = np.broadcast_to(col.astype(np.float32), self.shape)
            cloud = np.minimum(p * np.float32(1 / 15.0), 1.0) ** np.float32(0.6)
            tau = self.tau_ice - np.float32(0.45) * cloud
            out["surface_solar_radiation_downwards"] = toa * tau * np.float32(3600.0)

        if "volumetric_soil_water_layer_1" in variables:
            wet_season = (
                0.04 * np.sin(2 * np.pi * (doy - 100) / 365.25) * np.sign(self.sphi)
            ).astype(np.float32)
            theta = self.theta_static + wet_season
            theta -= np.float32(0.12) * drought
            theta -= enso * self.enso_theta
            theta += np.float32(0.02) * weather(3, 3, 0)
            np.clip(theta, 0.01, 0.47, out=theta)
            out["volumetric_soil_water_layer_1"] = theta * self.land01
        if "soil_temperature_level_1" in variables:
            stl = t2m + np.float32(0.8)
            if diurnal_t is not None:
                stl -= np.float32(0.5) * self.t_diurnal * diurnal_t
            out["soil_temperature_level_1"] = stl
        if (
            "leaf_area_index_high_vegetation" in variables
            or "leaf_area_index_low_vegetation" in variables
        ):
            # ERA5's LAI is a climatology: a seasonal cycle, no interannual variability.
            winter = 0.5 - 0.5 * np.sign(self.sphi) * season
            phen = (1.0 - 0.75 * self.lai_phen * winter).astype(np.float32)
            out["leaf_area_index_high_vegetation"] = self.lai_hv_static * phen
            out["leaf_area_index_low_vegetation"] = self.lai_lv_static * phen
        if "10m_u_component_of_wind" in variables:
            u = np.broadcast_to(
                self.u_base + (0.6 * self.sphi * season).astype(np.float32), self.shape
            ).copy()
            u += self.amp_u * weather(4, 0, 2)
            out["10m_u_component_of_wind"] = u
        if "10m_v_component_of_wind" in variables:
            alat = np.abs(la)
            col = (-3.5 * np.tanh((la - itcz) / 8.0) * np.exp(-(((alat - 12) / 12) ** 2))).astype(
                np.float32
            )
            v = col * self.v_land
            v += self.amp_v * weather(5, 1, 3)
            out["10m_v_component_of_wind"] = v
        if "mean_sea_level_pressure" in variables:
            col = np.maximum(-np.sign(self.sphi) * season, 0.0).astype(np.float32)
            msl = np.broadcast_to(self.msl_base + self.msl_winter * col, self.shape).copy()
            msl += self.amp_msl * weather(6, 0, 3)
            out["mean_sea_level_pressure"] = msl
        if "sea_surface_temperature" in variables or "sea_ice_cover" in variables:
            lagged = np.float32(np.cos(2 * np.pi * (doy - 237.0) / 365.25))
            sst = np.broadcast_to(self.sst_base + self.sst_season * lagged, self.shape).copy()
            sst += np.float32(0.015 * (year - 2000.0))
            sst += enso * self.enso_sst
            sst += np.float32(0.25) * weather(7, 2, 1)
            if "sea_ice_cover" in variables:
                ice = np.clip((np.float32(271.9) - sst) * np.float32(1 / 1.4), 0.0, 1.0)
                out["sea_ice_cover"] = ice + self.sea_nan
            if "sea_surface_temperature" in variables:
                out["sea_surface_temperature"] = np.maximum(sst, np.float32(271.35)) + self.sea_nan
        if "land_sea_mask" in variables:
            out["land_sea_mask"] = f
        return {v: out[v].astype(np.float32, copy=False) for v in variables}
