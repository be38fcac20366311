"""A light-use-efficiency land carbon model: NBP = GPP - Ra - Rh - fire.

Pointwise and monthly, like the CASA family of diagnostic models: enough physiology that
its net flux responds to light, temperature, drought, heat and CO2 the way DGVMs do, so that
an emulator trained on it faces the same kind of problem. Each formula cites its source.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from carbonsink.process.base import KELVIN, MonthInputs

#: Share of shortwave radiation that is photosynthetically active (McCree 1972).
PAR_FRACTION = 0.45


def temperature_scalar(t_c: np.ndarray, t_min: float, t_opt: float, t_max: float) -> np.ndarray:
    """Temperature limitation of photosynthesis, 0..1.

    The TEM curve of Raich et al. (1991, Ecol. Appl. 1, 399-429):
    ``f = (T - Tmin)(T - Tmax) / [(T - Tmin)(T - Tmax) - (T - Topt)^2]`` for
    ``Tmin < T < Tmax``, 0 outside; 1 at ``Topt``.
    """
    a = (t_c - t_min) * (t_c - t_max)
    f = a / (a - (t_c - t_opt) ** 2)
    return np.where((t_c > t_min) & (t_c < t_max), np.clip(f, 0.0, 1.0), 0.0)


def vpd_scalar(vpd: np.ndarray, vpd_min: float, vpd_max: float) -> np.ndarray:
    """Stomatal limitation by vapour pressure deficit (Pa), 0..1.

    MOD17 (Running et al. 2004, BioScience 54, 547-560): 1 below ``vpd_min``, falling
    linearly to 0 at ``vpd_max``.
    """
    return np.clip((vpd_max - vpd) / (vpd_max - vpd_min), 0.0, 1.0)


def water_scalar(theta: np.ndarray, theta_wilt: float, theta_crit: float) -> np.ndarray:
    """Soil-moisture stress, 0 at the wilting point to 1 above the critical content.

    The linear beta function between wilting point and critical point used by most land
    surface models (e.g. Seneviratne et al. 2010, Earth-Sci. Rev. 99, 125-161, eq. 20).
    """
    return np.clip((theta - theta_wilt) / (theta_crit - theta_wilt), 0.0, 1.0)


def fapar_from_lai(lai: np.ndarray, k: float = 0.5) -> np.ndarray:
    """Absorbed fraction of PAR from leaf area index by Beer's law (Monsi & Saeki 1953).

    ``fAPAR = 0.95 (1 - exp(-k LAI))``; 0.95 caps it at the canopy's PAR absorptance
    (Sellers 1985, Int. J. Remote Sens. 6, 1335-1372).
    """
    return 0.95 * (1.0 - np.exp(-k * np.maximum(lai, 0.0)))


@dataclass(frozen=True)
class LueLandModel:
    """Light-use-efficiency land model with Q10 respiration, water stress and fire.

    GPP [kg C m-2 s-1] = eps * PAR * fAPAR_clim * f(T) * f(VPD) * f(theta)^p * (1 + beta
    ln(CO2 / CO2_ref)), with PAR = 0.45 rsds, fAPAR from the leaf-area climatology
    (:func:`fapar_from_lai`), the logarithmic CO2 fertilisation of Bacastow & Keeling
    (1973) as in Friedlingstein et al. (1995, Global Biogeochem. Cycles 9, 541-556).
    Ra = (1 - CUE) GPP with a constant carbon-use efficiency (Waring et al. 1998, Tree
    Physiol. 18, 129-134). Rh = R0 * Q10^((T_soil - T_ref)/10) * (m + (1 - m) f(theta)), the
    Q10 response with a moisture scalar of CASA (Potter et al. 1993, Global Biogeochem.
    Cycles 7, 811-841); R0 puts each cell in steady state over its climatology at
    ``co2_ref`` (the CASA spin-up assumption: annual Rh + fire = annual NPP; Randerson et
    al. 1996, Global Biogeochem. Cycles 10, 585-602), so the mean sink comes from CO2 above
    ``co2_ref`` and the variability from the climate anomalies. Fire = s * NPP_clim * D * H,
    the fuel (climatological NPP) times a dryness term D = (theta_f - theta)/theta_f and a
    logistic heat term H, after the fuel-moisture logic of the SPITFIRE and Glob-FIRM
    schemes (Thonicke et al. 2001, Global Ecol. Biogeogr. 10, 661-677).

    NBP = GPP - Ra - Rh - fire, positive into the land, per m2 of land, times the cell's
    land fraction so that it is per m2 of cell; NaN where a cell has no land.
    """

    name: str
    epsilon: float = 1.1
    """Maximum light-use efficiency, g C per MJ of absorbed PAR."""
    t_min: float = -5.0
    t_opt: float = 24.0
    t_max: float = 42.0
    vpd_min: float = 650.0
    vpd_max: float = 3500.0
    theta_wilt: float = 0.08
    theta_crit: float = 0.30
    drought_exponent: float = 1.0
    """Exponent on the water scalar: above 1 makes GPP more sensitive to drought."""
    cue: float = 0.5
    beta: float = 0.25
    co2_ref: float = 350.0
    """CO2 (ppm) at which the soil is in steady state with the climatological NPP."""
    q10: float = 2.0
    t_ref: float = 15.0
    rh_moisture_floor: float = 0.3
    fire_scale: float = 0.5
    fire_theta: float = 0.2
    fire_t0: float = 22.0
    k_ext: float = 0.5
    domain: Literal["land"] = "land"

    @property
    def drivers(self) -> tuple[str, ...]:
        """Drivers read each month."""
        return ("rsds", "t2m", "vpd", "swvl1", "stl1", "lai_hv", "lai_lv")

    def parameters(self) -> dict[str, float | str]:
        """The parameter set."""
        return {k: v for k, v in asdict(self).items() if k not in ("name",)}

    # -- pieces --------------------------------------------------------------------------
    def _gpp(
        self, f: Mapping[str, np.ndarray], fapar: np.ndarray, co2: float
    ) -> tuple[np.ndarray, np.ndarray]:
        t_c = f["t2m"] - KELVIN
        w = water_scalar(f["swvl1"], self.theta_wilt, self.theta_crit)
        par = PAR_FRACTION * np.maximum(f["rsds"], 0.0)
        gpp = (
            self.epsilon
            * 1e-9  # g C MJ-1 -> kg C J-1
            * par
            * fapar
            * temperature_scalar(t_c, self.t_min, self.t_opt, self.t_max)
            * vpd_scalar(f["vpd"], self.vpd_min, self.vpd_max)
            * w**self.drought_exponent
            * (1.0 + self.beta * np.log(co2 / self.co2_ref))
        )
        return gpp, w

    def _rh_response(self, f: Mapping[str, np.ndarray], w: np.ndarray) -> np.ndarray:
        t_soil = f["stl1"] - KELVIN
        m = self.rh_moisture_floor
        return self.q10 ** ((t_soil - self.t_ref) / 10.0) * (m + (1.0 - m) * w)

    def _fire(self, f: Mapping[str, np.ndarray], fuel: np.ndarray) -> np.ndarray:
        dry = np.clip((self.fire_theta - f["swvl1"]) / self.fire_theta, 0.0, 1.0)
        heat = 1.0 / (1.0 + np.exp(-(f["t2m"] - KELVIN - self.fire_t0) / 3.0))
        return self.fire_scale * fuel * dry * heat

    # -- the protocol ----------------------------------------------------------------------
    def prepare(
        self, climatology: Mapping[str, np.ndarray], land_fraction: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Steady-state rates from the 12-month climatology.

        Returns ``fapar`` (month, lat, lon), ``fuel`` (annual mean NPP, kg C m-2 s-1) and
        ``r0`` (base rate of heterotrophic respiration, kg C m-2 s-1).
        """
        clim = {k: np.asarray(v, dtype=np.float64) for k, v in climatology.items()}
        fapar = fapar_from_lai(clim["lai_hv"] + clim["lai_lv"], self.k_ext)
        gpp, w = self._gpp(clim, fapar, self.co2_ref)
        npp = self.cue * gpp
        with warnings.catch_warnings():  # cells without land are all-NaN: NaN is right
            warnings.simplefilter("ignore", RuntimeWarning)
            fuel = np.nanmean(npp, axis=0)
            fire = np.nanmean(self._fire(clim, fuel), axis=0)
            response = np.nanmean(self._rh_response(clim, w), axis=0)
        r0 = np.maximum(fuel - fire, 0.0) / np.maximum(response, 1e-6)
        return {"fapar": fapar.astype(np.float32), "fuel": fuel, "r0": r0}

    def components(
        self, month: MonthInputs, state: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """GPP, Ra, Rh, fire and NBP per m2 of land (kg C m-2 s-1) for one month."""
        f = {k: np.asarray(month.drivers[k], dtype=np.float64) for k in self.drivers}
        gpp, w = self._gpp(f, state["fapar"][month.calendar_month - 1], month.co2)
        ra = (1.0 - self.cue) * gpp
        rh = state["r0"] * self._rh_response(f, w)
        fire = self._fire(f, state["fuel"])
        return {"gpp": gpp, "ra": ra, "rh": rh, "fire": fire, "nbp": gpp - ra - rh - fire}

    def flux(self, month: MonthInputs, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """NBP per m2 of cell, kg C m-2 s-1, positive into the land; NaN without land."""
        nbp = self.components(month, state)["nbp"]
        lf = np.asarray(month.land_fraction, dtype=np.float64)
        return np.where(lf > 0, nbp * lf, np.nan).astype(np.float32)
