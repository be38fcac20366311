"""Reference process models: the stand-ins for DGVMs and GOBMs (``docs/emulator.md``).

Three members pair a land and an ocean model whose parameters differ the way real models
differ: in their sensitivity to drought, to temperature, to CO2 and to wind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from carbonsink.errors import ConfigError
from carbonsink.process.base import MonthInputs, ProcessModel
from carbonsink.process.land_lue import LueLandModel
from carbonsink.process.ocean_bulk import BulkOceanModel

__all__ = [
    "REFERENCE_MEMBERS",
    "BulkOceanModel",
    "LueLandModel",
    "MonthInputs",
    "ProcessModel",
    "ReferenceMember",
    "resolve_members",
]


@dataclass(frozen=True)
class ReferenceMember:
    """One ensemble member: a land model and an ocean model."""

    name: str
    land: ProcessModel
    ocean: ProcessModel
    description: str

    @property
    def drivers(self) -> tuple[str, ...]:
        """Every driver either model reads."""
        return tuple(dict.fromkeys(self.land.drivers + self.ocean.drivers))

    def prepare(
        self, climatology: Mapping[str, np.ndarray], land_fraction: np.ndarray
    ) -> dict[str, dict[str, np.ndarray]]:
        """Both models' derived fields."""
        return {
            "land": self.land.prepare(climatology, land_fraction),
            "ocean": self.ocean.prepare(climatology, land_fraction),
        }

    def fluxes(
        self, month: MonthInputs, state: Mapping[str, Mapping[str, np.ndarray]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(land_flux, ocean_flux) of one month, kg C m-2 s-1 per m2 of cell."""
        return self.land.flux(month, state["land"]), self.ocean.flux(month, state["ocean"])


REFERENCE_MEMBERS: dict[str, ReferenceMember] = {
    m.name: m
    for m in (
        ReferenceMember(
            "ref-moderate",
            LueLandModel("lue-moderate"),
            BulkOceanModel("bulk-w14", transfer="w14", gamma=0.15),
            "central parameters; Wanninkhof (2014) gas transfer",
        ),
        ReferenceMember(
            "ref-dry",
            LueLandModel(
                "lue-dry",
                drought_exponent=2.0,
                vpd_max=3000.0,
                fire_scale=1.0,
                q10=1.6,
                beta=0.20,
            ),
            BulkOceanModel("bulk-n00", transfer="n00", gamma=0.13, natural_slope=1.3),
            "drought- and fire-sensitive land, weak Q10; Nightingale et al. (2000) transfer",
        ),
        ReferenceMember(
            "ref-warm",
            LueLandModel(
                "lue-warm",
                q10=2.6,
                t_opt=21.0,
                beta=0.32,
                drought_exponent=0.7,
                fire_scale=0.3,
            ),
            BulkOceanModel(
                "bulk-h06", transfer="h06", transfer_scale=1.1, gamma=0.17, natural_slope=0.8
            ),
            "temperature-sensitive respiration, strong CO2 response; Ho et al. (2006) "
            "transfer, windier",
        ),
    )
}


def resolve_members(names: Iterable[str] | None) -> list[ReferenceMember]:
    """Reference members by name (all of them for None)."""
    if names is None:
        return list(REFERENCE_MEMBERS.values())
    unknown = [n for n in names if n not in REFERENCE_MEMBERS]
    if unknown:
        raise ConfigError(
            f"unknown reference member(s) {', '.join(unknown)}; choose from "
            f"{', '.join(REFERENCE_MEMBERS)}"
        )
    return [REFERENCE_MEMBERS[n] for n in names]
