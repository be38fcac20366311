"""An ocean bulk-flux model: F = k(U10, Sc) K0(SST, S) (pCO2_atm - pCO2_sea) (1 - ice).

The air-sea CO2 flux formula behind every fCO2-product of the Global Carbon Budget, driven
by a surface-ocean pCO2 that lags the atmosphere by a fixed fraction of the anthropogenic
perturbation and follows SST anomalies with the Takahashi temperature sensitivity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from carbonsink.process.base import KELVIN, KG_C_PER_MOL, MonthInputs

#: Sea water density used to turn mol kg-1 atm-1 into mol m-3 atm-1.
SEAWATER_DENSITY = 1025.0
STANDARD_ATMOSPHERE_PA = 101_325.0
TAKAHASHI_SENSITIVITY = 0.0423
"""d ln(pCO2) / dT at constant DIC and alkalinity, K-1 (Takahashi et al. 1993, Global
Biogeochem. Cycles 7, 843-878)."""


def schmidt_number_co2(t_c: np.ndarray) -> np.ndarray:
    """Schmidt number of CO2 in sea water (S = 35) at ``t_c`` deg C.

    Wanninkhof (2014, Limnol. Oceanogr.: Methods 12, 351-362), Table 1:
    ``Sc = 2116.8 - 136.25 t + 4.7353 t^2 - 0.092307 t^3 + 0.0007555 t^4`` (-2..40 C).
    """
    t = np.clip(t_c, -2.0, 40.0)
    return 2116.8 + t * (-136.25 + t * (4.7353 + t * (-0.092307 + t * 0.0007555)))


def solubility_co2(t_k: np.ndarray, salinity: float | np.ndarray) -> np.ndarray:
    """CO2 solubility K0, mol kg-1 atm-1.

    Weiss (1974, Mar. Chem. 2, 203-215), eq. 12 with the mol kg-1 constants of Table I:
    ``ln K0 = A1 + A2 (100/T) + A3 ln(T/100) + S [B1 + B2 (T/100) + B3 (T/100)^2]``.
    """
    t = t_k / 100.0
    ln_k0 = (
        -60.2409
        + 93.4517 / t
        + 23.3585 * np.log(t)
        + salinity * (0.023517 - 0.023656 * t + 0.0047036 * t * t)
    )
    return np.exp(ln_k0)


def water_vapour_pressure(t_k: np.ndarray, salinity: float | np.ndarray) -> np.ndarray:
    """Water vapour pressure over sea water, atm (Weiss & Price 1980, Mar. Chem. 8, 347-359).

    ``ln pH2O = 24.4543 - 67.4509 (100/T) - 4.8489 ln(T/100) - 0.000544 S``.
    """
    t = t_k / 100.0
    return np.exp(24.4543 - 67.4509 / t - 4.8489 * np.log(t) - 0.000544 * salinity)


def transfer_velocity(
    u2: np.ndarray, u: np.ndarray, sc: np.ndarray, scheme: str, scale: float = 1.0
) -> np.ndarray:
    """Gas transfer velocity, m s-1.

    ``w14``: 0.251 <U^2> (Sc/660)^-0.5 cm h-1 (Wanninkhof 2014);
    ``h06``: 0.266 <U^2> (Sc/600)^-0.5 cm h-1 (Ho et al. 2006, Geophys. Res. Lett. 33,
    L16611); ``n00``: (0.222 <U^2> + 0.333 <U>) (Sc/600)^-0.5 cm h-1 (Nightingale et al.
    2000, Global Biogeochem. Cycles 14, 373-387). ``scale`` multiplies the coefficient, as
    the GCB products rescale k to a global bomb-14C inventory.
    """
    if scheme == "w14":
        k = 0.251 * u2 * (sc / 660.0) ** -0.5
    elif scheme == "h06":
        k = 0.266 * u2 * (sc / 600.0) ** -0.5
    elif scheme == "n00":
        k = (0.222 * u2 + 0.333 * u) * (sc / 600.0) ** -0.5
    else:
        raise ValueError(f"unknown gas transfer scheme {scheme!r}; use w14, h06 or n00")
    return scale * k / 100.0 / 3600.0  # cm h-1 -> m s-1


@dataclass(frozen=True)
class BulkOceanModel:
    """Bulk air-sea CO2 flux with a lagging surface-ocean pCO2.

    pCO2_atm = xCO2 (p_msl / 1 atm - pH2O) (Dickson et al. 2007, SOP guide);
    pCO2_sea = [xCO2 (p_msl_clim / 1 atm - pH2O(SST_clim)) - gamma (xCO2 - 280)
    + n (SST_clim - T_n)] exp(0.0423 (SST - SST_clim)): the surface ocean follows the
    atmosphere except for a fraction ``gamma`` of the anthropogenic excess (its uptake
    lag, cf. the Revelle-factor buffering in Sarmiento & Gruber 2006, ch. 10), a natural
    pattern that outgasses in warm and takes up in cold waters, and Takahashi et al.
    (1993)'s temperature sensitivity for SST anomalies. F = k K0 rho (pCO2_atm -
    pCO2_sea) (1 - ice), sea ice blocking exchange in proportion to its cover (Takahashi
    et al. 2009, Deep-Sea Res. II 56, 554-577). Positive into the ocean, per m2 of cell
    (times the ocean fraction); NaN where a cell has no ocean or no SST.
    """

    name: str
    transfer: str = "w14"
    transfer_scale: float = 1.0
    salinity: float = 35.0
    gamma: float = 0.10
    co2_preindustrial: float = 280.0
    natural_slope: float = 1.0
    """uatm per K of climatological SST away from ``natural_t``."""
    natural_t: float = 291.15
    temperature_sensitivity: float = TAKAHASHI_SENSITIVITY
    domain: Literal["ocean"] = "ocean"

    @property
    def drivers(self) -> tuple[str, ...]:
        """Drivers read each month."""
        return ("sst", "siconc", "msl", "wind_speed", "wind_speed_squared")

    def parameters(self) -> dict[str, float | str]:
        """The parameter set."""
        return {k: v for k, v in asdict(self).items() if k not in ("name",)}

    def prepare(
        self, climatology: Mapping[str, np.ndarray], land_fraction: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Nothing to derive: pCO2_sea's climatology is formed each month from SST's."""
        return {}

    def delta_pco2(self, month: MonthInputs) -> np.ndarray:
        """pCO2_atm - pCO2_sea, uatm."""
        f = month.drivers
        c = month.climatology
        sst = np.asarray(f["sst"], dtype=np.float64)
        sst_c = np.asarray(c["sst"], dtype=np.float64)
        x = month.co2
        p_atm = x * (f["msl"] / STANDARD_ATMOSPHERE_PA - water_vapour_pressure(sst, self.salinity))
        base = (
            x * (c["msl"] / STANDARD_ATMOSPHERE_PA - water_vapour_pressure(sst_c, self.salinity))
            - self.gamma * (x - self.co2_preindustrial)
            + self.natural_slope * (sst_c - self.natural_t)
        )
        p_sea = base * np.exp(self.temperature_sensitivity * (sst - sst_c))
        return np.asarray(p_atm - p_sea)

    def flux(self, month: MonthInputs, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """Air-sea flux per m2 of cell, kg C m-2 s-1, positive into the ocean."""
        f = month.drivers
        sst = np.asarray(f["sst"], dtype=np.float64)
        sc = schmidt_number_co2(sst - KELVIN)
        k = transfer_velocity(
            np.asarray(f["wind_speed_squared"], dtype=np.float64),
            np.asarray(f["wind_speed"], dtype=np.float64),
            sc,
            self.transfer,
            self.transfer_scale,
        )
        k0 = solubility_co2(sst, self.salinity) * SEAWATER_DENSITY  # mol m-3 atm-1
        ice = np.clip(np.nan_to_num(np.asarray(f["siconc"], dtype=np.float64)), 0.0, 1.0)
        mol = k * k0 * self.delta_pco2(month) * 1e-6 * (1.0 - ice)  # mol m-2 s-1
        ocean = 1.0 - np.asarray(month.land_fraction, dtype=np.float64)
        return np.where(ocean > 0, mol * KG_C_PER_MOL * ocean, np.nan).astype(np.float32)
