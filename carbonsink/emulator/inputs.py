"""Input channels of the emulators, read from the ``features`` store.

For each driver: its anomaly and its climatology for the calendar month (the anomaly
carries the weather, the climatology the place and season), and the annual mean of its
climatology (process models carry state, such as soil carbon in equilibrium with the
annual productivity, that one month of climate cannot reveal). Static channels: the land
fraction and a latitude encoding (sin, cos). One global channel: atmospheric CO2 from the
NOAA record, which drives the trend of both sinks. Last, per member: the baseline, the
member's own flux climatology for the calendar month (:class:`Baseline`), which the network
both reads and adds its output to.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence

import icechunk
import numpy as np
import pandas as pd
import zarr

from carbonsink.co2 import co2_for
from carbonsink.emulator.base import OUTPUTS, EmulatorError
from carbonsink.grid import ModelGrid
from carbonsink.lake.features_store import read_fields, read_static

#: Drivers the emulators read by default (those the features store holds are used).
INPUT_DRIVERS = (
    "t2m", "vpd", "rsds", "swvl1", "stl1", "pr", "lai_hv", "lai_lv",
    "sst", "siconc", "wind_speed", "wind_speed_squared", "msl",
)  # fmt: skip
STATIC_CHANNELS = ("land_fraction", "sin_lat", "cos_lat")
GLOBAL_CHANNELS = ("co2",)
BASELINE_CHANNELS = tuple(f"{o}_baseline" for o in OUTPUTS)


def input_channels(available_drivers: Sequence[str]) -> list[str]:
    """Channel names for the drivers a features store holds, then the baseline channels."""
    drivers = [d for d in INPUT_DRIVERS if d in available_drivers]
    if not drivers:
        raise EmulatorError(
            "the features store holds none of the emulator's input drivers "
            f"({', '.join(INPUT_DRIVERS)}); ingest them"
        )
    chans = [c for d in drivers for c in (f"{d}_anom", f"{d}_clim", f"{d}_annual")]
    return chans + list(STATIC_CHANNELS) + list(GLOBAL_CHANNELS) + list(BASELINE_CHANNELS)


def feature_channels(channels: Sequence[str]) -> list[str]:
    """The channels read from the features store (all but the baseline)."""
    return [c for c in channels if c not in BASELINE_CHANNELS]


class Baseline:
    """A member's monthly flux climatology, ``[12, K, lat, lon]`` kg C m-2 s-1 (NaN off-domain).

    The mean of the member's labels per calendar month over the training months: what the
    target model does in an average year, which the emulator corrects for the month's
    anomalies.
    """

    def __init__(self, fields: np.ndarray) -> None:
        if fields.ndim != 4 or fields.shape[0] != 12:
            raise EmulatorError(f"a baseline is [12, K, lat, lon], got shape {fields.shape}")
        self.fields = np.asarray(fields, dtype=np.float32)

    def month(self, calendar_month: int) -> np.ndarray:
        """``[K, lat, lon]`` for a calendar month (1-12)."""
        return self.fields[calendar_month - 1]

    @classmethod
    def from_months(cls, months: Iterable[tuple[pd.Period, np.ndarray]]) -> Baseline:
        """Average ``(month, [K, lat, lon])`` pairs by calendar month, streaming.

        Raises
        ------
        EmulatorError
            If a calendar month does not occur.
        """
        sums: dict[int, np.ndarray] = {}
        counts: dict[int, np.ndarray] = {}
        for m, f in months:
            f = np.asarray(f, dtype=np.float64)
            ok = np.isfinite(f)
            if m.month not in sums:
                sums[m.month], counts[m.month] = np.zeros(f.shape), np.zeros(f.shape)
            sums[m.month] += np.where(ok, f, 0.0)
            counts[m.month] += ok
        missing = sorted(set(range(1, 13)) - set(sums))
        if missing:
            raise EmulatorError(
                f"the training months cover no calendar month {missing}; label at least one "
                "full year outside the held-out window"
            )
        with np.errstate(invalid="ignore", divide="ignore"):  # 0/0: NaN off-domain
            mean = [sums[k] / counts[k] for k in range(1, 13)]
        return cls(np.stack(mean).astype(np.float32))


class StaticFields:
    """The static channels of a grid, read once: land fraction, latitude, annual climate."""

    def __init__(
        self,
        land_fraction: np.ndarray,
        grid: ModelGrid,
        annual: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        ny, nx = grid.shape
        lat = np.deg2rad(grid.lat)[:, None]
        self.fields = {
            "land_fraction": np.asarray(land_fraction, dtype=np.float32),
            "sin_lat": np.broadcast_to(np.sin(lat), (ny, nx)).astype(np.float32),
            "cos_lat": np.broadcast_to(np.cos(lat), (ny, nx)).astype(np.float32),
        }
        for name, field in (annual or {}).items():
            self.fields[f"{name}_annual"] = np.asarray(field, dtype=np.float32)

    @classmethod
    def from_store(
        cls, store: icechunk.IcechunkStore, grid: ModelGrid, drivers: Sequence[str] = ()
    ) -> StaticFields:
        """Read the land fraction and the drivers' annual-mean climatology from a store."""
        annual = {}
        for d in drivers:
            clim = np.asarray(zarr.open_array(store, path=f"{d}_clim", mode="r")[:])
            with warnings.catch_warnings():  # all-NaN outside a driver's domain
                warnings.simplefilter("ignore", RuntimeWarning)
                annual[d] = np.nanmean(clim, axis=0)
        return cls(read_static(store, "land_fraction"), grid, annual)


def month_channels(
    store: icechunk.IcechunkStore,
    channels: Sequence[str],
    index: int,
    month: pd.Period,
    statics: StaticFields,
) -> np.ndarray:
    """Raw (unnormalised) feature channels of one month, ``[C, lat, lon]`` float32.

    ``channels`` must not include the baseline (see :func:`feature_channels`).
    """
    if any(c in BASELINE_CHANNELS for c in channels):
        raise EmulatorError("the baseline channels come from the emulator, not the features")
    missing = [c for c in channels if c.endswith("_annual") and c not in statics.fields]
    if missing:
        raise EmulatorError(f"static channels {missing} were not read; pass their drivers")
    anom = [c for c in channels if c.endswith("_anom")]
    clim = [c for c in channels if c.endswith("_clim")]
    fields: dict[str, np.ndarray] = {}
    fields.update(read_fields(store, anom, index))
    fields.update(read_fields(store, clim, month.month - 1))
    fields.update(statics.fields)
    shape = statics.fields["land_fraction"].shape
    fields["co2"] = np.full(shape, co2_for([month]).ppm[0], dtype=np.float32)
    return np.stack([np.asarray(fields[c], dtype=np.float32) for c in channels])


def normalise(
    raw: np.ndarray, channels: Sequence[str], stats: Mapping[str, tuple[float, float]]
) -> np.ndarray:
    """``(x - mean) / std`` per channel, with missing values (NaN) set to 0 (the mean).

    ``raw`` has channels on axis -3.
    """
    mean = np.array([stats[c][0] for c in channels], dtype=np.float32)[:, None, None]
    std = np.array([stats[c][1] for c in channels], dtype=np.float32)[:, None, None]
    # In place in float32: the global 0.25 deg inputs are 180 MB per emulator and month.
    out = np.subtract(raw, mean, dtype=np.float32)
    out *= 1.0 / std
    # One isfinite pass instead of nan_to_num's three (NaN, +inf, -inf), for the same
    # values: this function took half the time (measured: 27 -> 13 ms per 0.25 deg tile).
    np.copyto(out, np.float32(0.0), where=~np.isfinite(out))
    return out


def channel_stats(raw: np.ndarray, channels: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Mean and std of each channel over samples ``[N, C, H, W]``, ignoring NaN."""
    out: dict[str, tuple[float, float]] = {}
    for i, c in enumerate(channels):
        v = raw[:, i].astype(np.float64)
        v = v[np.isfinite(v)]
        mean = float(v.mean()) if v.size else 0.0
        std = float(v.std()) if v.size else 1.0
        out[c] = (mean, std if std > 0 else 1.0)
    return out
