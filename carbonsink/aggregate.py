"""Fused time aggregation: every driver of a month from one read of each ERA5 variable.

A month of hourly 0.25 degree ERA5 is ~3 GB per variable. The ingest reads each variable
once, in bounded blocks of time steps, and folds every block into running float64 sums
(and valid counts for drivers that may hold NaN) for all drivers at once, in numba
kernels. Derived drivers (VPD, wind speed, <U^2>) are computed per time step inside the
same pass, before the mean, because they are non-linear.

The kernels implement exactly the formulas of :mod:`carbonsink.drivers`; the tests check
them against those xarray definitions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from carbonsink.drivers import SOURCE_VARIABLES, Driver, per_second_of, unit_conversion

# numba's unsigned cast (no sign checks in indexing); Any: mypy reads it as a signature.
_U: Any = numba.uint64


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _acc_mean(x: np.ndarray, a: float, b: float, acc: np.ndarray) -> None:  # pragma: no cover
    nt, n = x.shape
    for t in range(nt):
        row = x[t]
        for j in range(_U(n)):
            acc[j] += a * row[j] + b


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _acc_mean_skipna(  # pragma: no cover
    x: np.ndarray, a: float, b: float, acc: np.ndarray, cnt: np.ndarray
) -> None:
    nt, n = x.shape
    for t in range(nt):
        row = x[t]
        for j in range(_U(n)):
            v = row[j]
            ok = v == v
            acc[j] += (a * v + b) if ok else 0.0
            cnt[j] += 1 if ok else 0


# Fast math without "nnan"/"ninf": NaN must survive (and be tested for) in these loops.
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


@numba.njit(nogil=True, cache=True, fastmath=_FAST, error_model="numpy")
def _acc_vpd(  # pragma: no cover
    t: np.ndarray, d: np.ndarray, at: float, bt: float, ad: float, bd: float, acc: np.ndarray
) -> None:
    # Magnus form, Alduchov and Eskridge (1996); see carbonsink.drivers. In float32 with
    # fast math (1.6x faster than float64; the error, ~1e-6 of e_s, is the data's own
    # precision).
    nt, n = t.shape
    c0 = np.float32(273.15)
    c1 = np.float32(17.625)
    c2 = np.float32(243.04)
    c3 = np.float32(610.94)
    at32, bt32, ad32, bd32 = np.float32(at), np.float32(bt), np.float32(ad), np.float32(bd)
    for s in range(nt):
        tr = t[s]
        dr = d[s]
        for j in range(_U(n)):
            x = tr[j]
            y = dr[j]
            if np.isnan(x) or np.isnan(y):
                acc[j] += np.nan
                continue
            tc = at32 * x + bt32 - c0
            dc = ad32 * y + bd32 - c0
            v = c3 * (np.exp(c1 * tc / (tc + c2)) - np.exp(c1 * dc / (dc + c2)))
            acc[j] += max(v, np.float32(0.0))


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _acc_wind(  # pragma: no cover
    u: np.ndarray, v: np.ndarray, au: float, av: float, acc: np.ndarray, squared: bool
) -> None:
    nt, n = u.shape
    for s in range(nt):
        ur = u[s]
        vr = v[s]
        if squared:
            for j in range(_U(n)):
                uu = au * ur[j]
                vv = av * vr[j]
                acc[j] += uu * uu + vv * vv
        else:
            for j in range(_U(n)):
                uu = au * ur[j]
                vv = av * vr[j]
                acc[j] += np.sqrt(uu * uu + vv * vv)


def _affine(name: str, units: str | None) -> tuple[float, float]:
    """``(scale, offset)`` taking a source variable's units to ARCO-ERA5's."""
    return unit_conversion(units, SOURCE_VARIABLES[name].units, variable=name)


@dataclass
class MonthAccumulator:
    """Running sums of every driver over the time steps of one month (or part of one).

    Attributes
    ----------
    drivers
        The drivers, in output order.
    shape
        Spatial shape of the source grid.
    sums, counts
        float64 sums per driver; int32 valid counts for drivers that may hold NaN.
    steps
        Time steps folded in, per driver.
    """

    drivers: Sequence[Driver]
    shape: tuple[int, int]
    sums: dict[str, np.ndarray] = field(init=False)
    counts: dict[str, np.ndarray] = field(init=False)
    steps: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        n = int(np.prod(self.shape))
        self.sums = {d.name: np.zeros(n) for d in self.drivers}
        self.counts = {d.name: np.zeros(n, np.int32) for d in self.drivers if d.nan_allowed}
        self.steps = {d.name: 0 for d in self.drivers}

    def add(
        self,
        inputs: Mapping[str, np.ndarray],
        units: Mapping[str, str | None],
        per_second: Mapping[str, float] | None = None,
    ) -> None:
        """Fold a block of time steps in.

        Parameters
        ----------
        inputs
            ``(nt, ny, nx)`` arrays by ARCO-ERA5 variable name, all the same time steps.
        units
            The units attribute of each input (conversions such as degC -> K apply).
        per_second
            For accumulated inputs, the factor from a value to a rate per second (the
            inverse of the period the source's values sum over).
        """
        flat = {k: np.ascontiguousarray(v).reshape(v.shape[0], -1) for k, v in inputs.items()}
        for d in self.drivers:
            if not all(v in flat for v in d.inputs):
                continue
            xs = [flat[v] for v in d.inputs]
            ab = []
            for v in d.inputs:
                a, b = _affine(v, units.get(v))
                rate = per_second_of(v, per_second)
                ab.append((a * rate, b * rate))
            acc = self.sums[d.name]
            if d.kernel == "mean":
                a, b = ab[0][0] * d.scale, ab[0][1] * d.scale
                if d.nan_allowed:
                    _acc_mean_skipna(xs[0], a, b, acc, self.counts[d.name])
                else:
                    _acc_mean(xs[0], a, b, acc)
            elif d.kernel == "vpd":
                _acc_vpd(xs[0], xs[1], ab[0][0], ab[0][1], ab[1][0], ab[1][1], acc)
            else:
                _acc_wind(xs[0], xs[1], ab[0][0], ab[1][0], acc, d.kernel == "wind_speed_squared")
            self.steps[d.name] += xs[0].shape[0]

    def merge(self, other: MonthAccumulator) -> MonthAccumulator:
        """Add another part of the same month (in place); returns self."""
        for name, s in other.sums.items():
            self.sums[name] += s
            self.steps[name] += other.steps[name]
        for name, c in other.counts.items():
            self.counts[name] += c
        return self

    def means(self, land: np.ndarray | None = None) -> np.ndarray:
        """Monthly means, ``(n_drivers, ny, nx)`` float32.

        ``land`` (boolean, source grid) restricts land-domain drivers to land points;
        the mask is static, so masking the mean equals averaging masked steps.
        """
        out = np.empty((len(self.drivers), *self.shape), dtype=np.float32)
        for i, d in enumerate(self.drivers):
            s = self.sums[d.name]
            if d.nan_allowed:
                c = self.counts[d.name]
                m = np.where(c > 0, s / np.maximum(c, 1), np.nan)
            else:
                m = (
                    s / max(self.steps[d.name], 1)
                    if self.steps[d.name]
                    else np.full_like(s, np.nan)
                )
            m = m.reshape(self.shape)
            if d.domain == "land" and land is not None:
                m = np.where(land, m, np.nan)
            out[i] = m
        return out


def accumulate(
    read: Callable[[str, int, int], tuple[np.ndarray, str | None]],
    ranges: Mapping[str, tuple[int, int]],
    drivers: Sequence[Driver],
    shape: tuple[int, int],
    *,
    per_second: Mapping[str, float] | None = None,
    max_block_bytes: int = 256 * 2**20,
) -> MonthAccumulator:
    """Read the given index ranges variable group by variable group and fold them in.

    Parameters
    ----------
    read
        ``read(variable, start, stop) -> (array (nt, ny, nx), units)``.
    ranges
        Index range per source variable (inputs of one driver share a range).
    drivers
        Drivers to accumulate.
    shape
        Source grid shape.
    per_second
        For accumulated inputs, the factor from a value to a rate per second.
    max_block_bytes
        Memory bound: a block of one variable group holds at most this many bytes.
    """
    acc = MonthAccumulator(drivers, shape)
    # Group variables that drivers combine, so each is read once and paired in memory.
    groups: list[list[str]] = []
    for d in drivers:
        members = [v for v in d.inputs if v in ranges]
        merged = [g for g in groups if set(g) & set(members)]
        new = sorted(set(members).union(*map(set, merged)), key=list(ranges).index)
        groups = [g for g in groups if g not in merged] + [new]
    step_bytes = int(np.prod(shape)) * 4
    for group in groups:
        lo, hi = ranges[group[0]]
        per_block = max(1, max_block_bytes // (step_bytes * len(group)))
        for start in range(lo, hi, per_block):
            stop = min(start + per_block, hi)
            offset = start - lo
            block: dict[str, np.ndarray] = {}
            units: dict[str, str | None] = {}
            for v in group:
                vlo, vhi = ranges[v]
                block[v], units[v] = read(v, vlo + offset, min(vlo + offset + (stop - start), vhi))
            acc.add(block, units, per_second)
    return acc
