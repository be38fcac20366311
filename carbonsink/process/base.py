"""What a reference process model is: a pointwise map from monthly drivers to a CO2 flux.

The reference models stand in for the DGVMs and GOBMs whose output trains the emulators
when none is at hand. Each model reads one month of drivers from the ``features`` store
(plus their climatology for the month) and returns the flux on the model grid, in
kg C m-2 s-1 per m2 of grid cell, positive into the land or ocean, NaN outside its domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

#: kg of carbon per mol of CO2.
KG_C_PER_MOL = 12.011e-3
KELVIN = 273.15


@dataclass(frozen=True)
class MonthInputs:
    """One month of what a process model reads.

    Parameters
    ----------
    drivers
        Monthly means of the drivers (name -> lat x lon), in the ``features`` store's units.
    climatology
        The same drivers' climatology for this calendar month.
    land_fraction
        Land area fraction of each cell.
    co2
        Global monthly mean atmospheric CO2 dry-air mole fraction, ppm.
    calendar_month
        1-12.
    """

    drivers: Mapping[str, np.ndarray]
    climatology: Mapping[str, np.ndarray]
    land_fraction: np.ndarray
    co2: float
    calendar_month: int


@runtime_checkable
class ProcessModel(Protocol):
    """A reference land or ocean carbon model (the labels' producer; typed by its callers)."""

    @property
    def name(self) -> str:
        """The model's name, recorded with its labels."""
        ...

    @property
    def domain(self) -> Literal["land", "ocean"]:
        """Where its flux is defined: cells with land, or cells with ocean."""
        ...

    @property
    def drivers(self) -> tuple[str, ...]:
        """Drivers read each month (their climatology is read too)."""
        ...

    def prepare(
        self, climatology: Mapping[str, np.ndarray], land_fraction: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Fields the model derives once from the 12-month climatology (month, lat, lon)."""
        ...

    def flux(self, month: MonthInputs, state: Mapping[str, np.ndarray]) -> np.ndarray:
        """The month's flux, kg C m-2 s-1 per m2 of cell, positive into the land/ocean."""
        ...

    def parameters(self) -> dict[str, float | str]:
        """The parameter set, for the labels' metadata."""
        ...
