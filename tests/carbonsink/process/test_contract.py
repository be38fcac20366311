"""One suite over every producer of training labels: the reference process models (each land
and ocean model of every member) and the TRENDY/GOBM target files.

Whatever makes them, labels are monthly fields on the model grid in kg C m-2 s-1 per m2 of
grid cell, positive into the land (ocean), NaN exactly outside the flux's domain, finite and
plausible inside it, and the same bytes for the same inputs. A new producer joins by adding
an entry to ``PRODUCERS``.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carbonsink.grid import ModelGrid
from carbonsink.process import REFERENCE_MEMBERS, MonthInputs, ProcessModel
from carbonsink.targets import PLAUSIBLE_FLUX, open_target, target_on_grid
from tests.target_files import write_gobm, write_trendy

GRID = ModelGrid(30.0)
MONTH = pd.Period("2016-07", "M")

#: Plausible monthly means of every driver a process model reads (features' units).
DRIVERS = {
    "rsds": 220.0, "t2m": 294.0, "stl1": 293.0, "vpd": 900.0, "swvl1": 0.28, "lai_hv": 2.0,
    "lai_lv": 1.0, "sst": 291.0, "siconc": 0.05, "msl": 101_300.0, "wind_speed": 7.0,
    "wind_speed_squared": 55.0,
}  # fmt: skip


def land_fraction() -> np.ndarray:
    """All-ocean, coastal and all-land cells side by side."""
    lf = np.zeros(GRID.shape)
    lf[:, GRID.nlon // 3 : 2 * GRID.nlon // 3] = 0.5
    lf[:, 2 * GRID.nlon // 3 :] = 1.0
    return lf


def _model_producer(model: ProcessModel) -> Callable[[Path], np.ndarray]:
    def produce(_tmp: Path) -> np.ndarray:
        lf = land_fraction()
        # Drivers vary along latitude so that nothing is uniform by accident.
        ramp = np.linspace(0.9, 1.1, GRID.nlat)[:, None] * np.ones(GRID.shape)
        fields = {n: DRIVERS[n] * ramp for n in model.drivers}
        clim = {n: np.stack([DRIVERS[n] * np.ones(GRID.shape)] * 12) for n in model.drivers}
        state = model.prepare(clim, lf)
        month = MonthInputs(fields, {n: c[MONTH.month - 1] for n, c in clim.items()}, lf,
                            410.0, MONTH.month)  # fmt: skip
        return model.flux(month, state)

    return produce


def _target_producer(kind: str) -> Callable[[Path], np.ndarray]:
    def produce(tmp: Path) -> np.ndarray:
        write = write_trendy if kind == "nbp" else write_gobm
        target = open_target(write(tmp / f"{kind}.nc"), kind)  # type: ignore[arg-type]
        return target_on_grid(target, MONTH, target.regridder(GRID, 0.01), land_fraction())

    return produce


ALL_ROWS = np.ones(GRID.nlat, bool)

#: name -> (domain, producer(tmp folder) -> the month's field on GRID, rows with data)
PRODUCERS: dict[str, tuple[str, Callable[[Path], np.ndarray], np.ndarray]] = {
    **{
        f"{name}/{model.name}": (model.domain, _model_producer(model), ALL_ROWS)
        for name, member in REFERENCE_MEMBERS.items()
        for model in (member.land, member.ocean)
    },
    # The TRENDY-style file has no data north of 60N (its fill value there).
    "trendy-nbp": ("land", _target_producer("nbp"), GRID.lat < 60),
    "gobm-fgco2": ("ocean", _target_producer("fgco2"), ALL_ROWS),
}


@pytest.fixture(params=list(PRODUCERS))
def produced(request, tmp_path):
    return (*PRODUCERS[request.param], tmp_path)


def test_reference_models_are_process_models():
    for member in REFERENCE_MEMBERS.values():
        for model, domain in ((member.land, "land"), (member.ocean, "ocean")):
            assert isinstance(model, ProcessModel)
            assert model.domain == domain
            assert model.parameters()  # recorded with the labels


def test_labels_are_on_the_grid_inside_their_domain(produced):
    domain, produce, rows, tmp = produced
    field = produce(tmp)
    assert field.shape == GRID.shape
    lf = land_fraction()
    inside = lf > 0 if domain == "land" else lf < 1
    # NaN outside the domain (and where the input has no data), finite and plausible inside.
    assert np.isnan(field[~inside | ~rows[:, None]]).all()
    assert np.isfinite(field[inside & rows[:, None]]).all()
    assert np.nanmax(np.abs(field)) < PLAUSIBLE_FLUX


def test_labels_are_the_same_bytes_for_the_same_inputs(produced):
    _, produce, _, tmp = produced
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    assert produce(tmp / "a").tobytes() == produce(tmp / "b").tobytes()


def test_per_cell_labels_scale_with_the_share_of_their_domain(produced):
    domain, produce, _, tmp = produced
    field = produce(tmp)
    lf = land_fraction()
    coastal = (lf == 0.5).any(axis=0)
    full = (lf == (1.0 if domain == "land" else 0.0)).any(axis=0)
    rows = np.isfinite(field[:, coastal]).all(axis=1) & np.isfinite(field[:, full]).all(axis=1)
    # Per m2 of grid cell: a cell half land (ocean) holds half the flux of a whole one,
    # where the drivers are the same along the row.
    half = field[rows][:, coastal].mean(axis=1)
    whole = field[rows][:, full].mean(axis=1)
    np.testing.assert_allclose(half, 0.5 * whole, rtol=1e-5, atol=1e-20)
