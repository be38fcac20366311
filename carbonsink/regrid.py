"""First-order conservative regridding between rectilinear latitude-longitude grids.

On a sphere the area of the overlap of two lat-lon cells factorises: it is ``R**2`` times
the overlap in ``sin(latitude)`` times the overlap in longitude (radians). Conservative
weights are therefore the outer product of two 1-D overlap matrices, each with a handful
of non-zeros per row. :class:`ConservativeRegridder` stores them as dense ``(n_dst, K)``
index/weight tables and applies them in two passes (latitude, then longitude) in a numba
kernel. The weights are float64; the sums are float32 for float32 data and small integers
(8-wide SIMD, at the data's own precision: cells agree with the float64 path to 2e-5) and
float64 for anything wider, whose global integral is conserved to rounding (about 1e-13).

NaN-aware: a destination cell is the area-weighted mean of its *valid* source area; it is
NaN when the valid share of its area is below ``min_valid_fraction``. Fields without NaN
take a faster path that skips the bookkeeping of valid weights.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import xarray as xr

from carbonsink.errors import ConfigError
from carbonsink.grid import ModelGrid, point_grid_bounds

FULL_CIRCLE_DEG = 360.0
# numba's unsigned cast; typed Any because mypy reads numba types as signatures.
_U: Any = numba.uint64


@dataclass(frozen=True)
class AxisWeights:
    """Sparse 1-D overlap weights from a source axis to a destination axis.

    Attributes
    ----------
    index
        ``(n_dst, K)`` source indices contributing to each destination cell. On a periodic
        axis they are *unwrapped*: they may fall outside ``[0, n_src)`` and are meant
        modulo ``n_src``, so that neighbouring cells keep neighbouring indices across the
        seam.
    weight
        ``(n_dst, K)`` overlap lengths (0 where a row has fewer than K sources).
    length
        ``(n_dst,)`` full length of each destination cell, in the same measure.
    n_src
        Number of source cells.
    """

    index: np.ndarray
    weight: np.ndarray
    length: np.ndarray
    n_src: int

    @property
    def covered(self) -> np.ndarray:
        """Length of each destination cell covered by the source axis."""
        return self.weight.sum(axis=1)

    def affine(self) -> tuple[int, int] | None:
        """``(start, stride)`` if ``index[p, k] == start + stride * p + k``, else None.

        Regular grids give such maps; the kernel then reads contiguous (or strided)
        memory instead of gathering through the index table.
        """
        n = self.index.shape[0]
        start = int(self.index[0, 0])
        stride = int(self.index[1, 0] - self.index[0, 0]) if n > 1 else 1
        if stride < 1:
            return None
        expected = start + stride * np.arange(n)[:, None] + np.arange(self.index.shape[1])
        used = self.weight > 0
        if np.array_equal(np.where(used, self.index, 0), np.where(used, expected, 0)):
            return start, stride
        return None


def axis_overlaps(
    src_bounds: np.ndarray, dst_bounds: np.ndarray, *, period: float | None = None
) -> AxisWeights:
    """Overlap lengths between two 1-D partitions.

    Parameters
    ----------
    src_bounds, dst_bounds
        ``(n, 2)`` arrays of ``(low, high)`` per cell. Source cells must not overlap one
        another; they may come in any order (ERA5's latitude descends).
    period
        If given (360 for a longitude axis that closes the circle), overlaps are computed
        modulo the period, so ``-180..180`` and ``0..360`` grids meet correctly.

    Returns
    -------
    AxisWeights
    """
    src = np.asarray(src_bounds, dtype=np.float64)
    dst = np.asarray(dst_bounds, dtype=np.float64)
    n_src = src.shape[0]
    order = np.argsort(src[:, 0], kind="stable")
    lo, hi = src[order, 0], src[order, 1]
    if np.any(lo[1:] < hi[:-1] - 1e-9 * max(1.0, float(np.abs(hi).max()))):
        raise ConfigError("source cells overlap each other; cannot regrid conservatively")
    # Source positions in sorted order; on a periodic axis three copies, numbered so that
    # the middle copy is 0..n-1 and the others continue below and above it.
    pos = np.arange(n_src)
    if period is not None:
        lo = np.concatenate([lo - period, lo, lo + period])
        hi = np.concatenate([hi - period, hi, hi + period])
        pos = np.arange(-n_src, 2 * n_src)
    first = np.searchsorted(hi, dst[:, 0], side="right")
    stop = np.searchsorted(lo, dst[:, 1], side="left")
    count = np.maximum(stop - first, 0)
    k = max(int(count.max()) if count.size else 0, 1)
    cand = first[:, None] + np.arange(k)[None, :]
    inside = cand < stop[:, None]
    cand = np.minimum(cand, lo.size - 1)
    w = np.minimum(hi[cand], dst[:, 1:2]) - np.maximum(lo[cand], dst[:, 0:1])
    w = np.where(inside & (w > 0), w, 0.0)
    sorted_pos = pos[cand]
    if period is None:
        # Map sorted positions back to the caller's order (e.g. descending latitude).
        index = np.where(w > 0, order[sorted_pos], 0)
    else:
        # Keep unwrapped positions; the caller's order must be ascending here.
        if not np.array_equal(order, np.arange(n_src)):
            raise ConfigError("a periodic (longitude) axis must be ascending")
        index = np.where(w > 0, sorted_pos, sorted_pos[:, :1])
    return AxisWeights(
        index=index.astype(np.int64), weight=w, length=dst[:, 1] - dst[:, 0], n_src=n_src
    )


def _result_dtype(dtype: np.dtype) -> type[np.floating]:
    # float32 data and small integers (masks, counts) are accumulated in float32; anything
    # wider in float64.
    if dtype == np.float32 or (not np.issubdtype(dtype, np.floating) and dtype.itemsize <= 2):
        return np.float32
    return np.float64


def _inverse_and_fraction(axis: AxisWeights) -> tuple[np.ndarray, np.ndarray]:
    cov = axis.covered
    inv = np.where(cov > 0, 1.0 / np.where(cov > 0, cov, 1.0), 0.0)
    return inv, cov / axis.length


def _is_full_circle(lon_bounds: np.ndarray) -> bool:
    total = float(np.sum(lon_bounds[:, 1] - lon_bounds[:, 0]))
    return abs(total - FULL_CIRCLE_DEG) < 1e-6 * FULL_CIRCLE_DEG


# The kernel indexes with unsigned integers on purpose: numba adds a negative-index
# wrap-around branch to every signed index, which stops LLVM from vectorising the loops.
@numba.njit(nogil=True, cache=True)
def _row_has_nan(row: np.ndarray) -> bool:  # pragma: no cover - compiled
    # An integer count vectorises; a float sum or an early exit would not.
    c = 0
    for j in range(_U(row.shape[0])):
        c += row[j] != row[j]
    return c > 0


@numba.njit(nogil=True, cache=True, inline="always")
def _lat_accumulate(  # pragma: no cover - compiled
    xrow: np.ndarray,
    w: float,
    ext_v: np.ndarray,
    ext_w: np.ndarray,
    n: int,
    src_off: int,
    dst_off: int,
    masked: bool,
) -> None:
    # ext[dst_off + e] += w * x[src_off + e] for e < n (both offsets non-negative, so
    # LLVM sees unit-stride, non-wrapping indices and vectorises).
    xs = xrow[src_off : src_off + n]
    ev = ext_v[dst_off : dst_off + n]
    if masked:
        ew = ext_w[dst_off : dst_off + n]
        zero = xrow.dtype.type(0)
        for e in range(_U(n)):
            v = xs[e]
            ok = v == v
            ev[e] += w * (v if ok else zero)
            ew[e] += w if ok else zero
    else:
        for e in range(_U(n)):
            ev[e] += w * xs[e]


@numba.njit(nogil=True, cache=True)
def _regrid_plane(  # pragma: no cover - compiled; tested through ConservativeRegridder
    x: np.ndarray,
    lat_idx: np.ndarray,
    lat_w: np.ndarray,
    lat_ws: np.ndarray,
    lat_frac: np.ndarray,
    lat_len: np.ndarray,
    lon_idx: np.ndarray,
    lon_wt: np.ndarray,
    lon_wts: np.ndarray,
    lon_frac: np.ndarray,
    lon_len: np.ndarray,
    lon_start: int,
    lon_stride: int,
    rot: int,
    ext_len: int,
    min_frac: float,
    out: np.ndarray,
) -> None:
    # lat_w/lon_wt are overlap lengths; lat_ws/lon_wts the same divided by the covered
    # length of the destination cell, so a row without NaN is finished by the longitude
    # pass alone. Buffers take the weights' dtype: float32 weights for float32 data
    # (8-wide SIMD, error at the data's own precision), float64 otherwise.
    ny_out, klat = lat_idx.shape
    nx_out = lon_wt.shape[1]
    nx_in = x.shape[1]
    # NaN status of each source row (-1: not looked at yet), found just before the row
    # is first used so the plane is read from memory once; rows without NaN take the
    # fast path even in fields that have NaN elsewhere (SST, sea ice).
    row_nan = np.full(x.shape[0], -1, dtype=np.int8)
    ext_v = np.zeros(ext_len, dtype=lat_w.dtype)
    ext_w = np.zeros(ext_len, dtype=lat_w.dtype)
    acc_v = np.zeros(nx_out, dtype=lat_w.dtype)
    acc_w = np.zeros(nx_out, dtype=lat_w.dtype)
    lon_frac_min = lon_frac.min()
    for o in range(ny_out):
        masked = False
        for k in range(klat):
            if lat_w[o, k] != 0:
                i = lat_idx[o, k]
                if row_nan[i] < 0:
                    row_nan[i] = 1 if _row_has_nan(x[i]) else 0
                masked = masked or row_nan[i] == 1
        lf = lat_frac[o]
        # Rows that need per-cell bookkeeping: NaN in their sources, or a source grid
        # that covers only part of some destination cells (regional sources).
        slow = masked or not (lf * lon_frac_min >= min_frac and lf * lon_frac_min > 0)
        wts = lat_w if slow else lat_ws
        ext_v[:] = 0
        if masked:
            ext_w[:] = 0
        # Latitude pass over whole source rows, written rotated by `rot` so that an
        # unwrapped longitude index u is found at ext[u - rot] without a modulo.
        for k in range(klat):
            w = wts[o, k]
            if w == 0:
                continue
            xrow = x[lat_idx[o, k]]
            _lat_accumulate(xrow, w, ext_v, ext_w, nx_in - rot, rot, 0, masked)
            _lat_accumulate(xrow, w, ext_v, ext_w, rot, 0, nx_in - rot, masked)
        for e in range(ext_len - nx_in):
            ext_v[nx_in + e] = ext_v[e]
            ext_w[nx_in + e] = ext_w[e]
        if not slow:
            _lon_pass(ext_v, lon_wts, lon_idx, lon_start, lon_stride, out[o])
            continue
        _lon_pass(ext_v, lon_wt, lon_idx, lon_start, lon_stride, acc_v)
        if masked:
            _lon_pass(ext_w, lon_wt, lon_idx, lon_start, lon_stride, acc_w)
        for p in range(nx_out):
            if masked:
                sw = acc_w[p]
                ok = sw > 0 and sw >= min_frac * lat_len[o] * lon_len[p]
                out[o, p] = acc_v[p] / sw if ok else np.nan
            else:
                cov = lf * lon_frac[p]
                ok = cov > 0 and cov >= min_frac
                out[o, p] = (
                    acc_v[p] / (lat_len[o] * lf * lon_len[p] * lon_frac[p]) if ok else np.nan
                )


@numba.njit(nogil=True, cache=True, inline="always")
def _lon_pass(  # pragma: no cover - compiled
    ext: np.ndarray,
    wt: np.ndarray,
    idx: np.ndarray,
    start: int,
    stride: int,
    dst: np.ndarray,
) -> None:
    # dst[p] = sum_k wt[k, p] * ext[start + stride * p + k] for regular maps (contiguous
    # reads for equal resolutions), or through the index table for irregular ones.
    klon = wt.shape[0]
    n = _U(dst.shape[0])
    for k in range(_U(klon)):
        wk = wt[k]
        s0 = _U(start) + k
        first = k == 0
        if stride == 1:
            if first:
                for p in range(n):
                    dst[p] = wk[p] * ext[s0 + p]
            else:
                for p in range(n):
                    dst[p] += wk[p] * ext[s0 + p]
        elif stride > 1:
            st = _U(stride)
            if first:
                for p in range(n):
                    dst[p] = wk[p] * ext[s0 + st * p]
            else:
                for p in range(n):
                    dst[p] += wk[p] * ext[s0 + st * p]
        else:
            ik = idx[k]
            if first:
                for p in range(n):
                    dst[p] = wk[p] * ext[_U(ik[p])]
            else:
                for p in range(n):
                    dst[p] += wk[p] * ext[_U(ik[p])]


class ConservativeRegridder:
    """First-order conservative regridding between two rectilinear lat-lon grids.

    Parameters
    ----------
    src_lat_bounds, src_lon_bounds
        ``(n, 2)`` source cell bounds in degrees (any orientation; longitude in any
        360-degree range).
    dst_lat_bounds, dst_lon_bounds
        ``(m, 2)`` destination cell bounds in degrees.
    min_valid_fraction
        A destination cell gets a value when at least this share of its area is covered
        by valid (non-NaN) source data, else NaN. Must lie in ``(0, 1]``.

    Notes
    -----
    Weights are exact spherical overlap areas (up to the constant ``R**2``), so a field
    without NaN keeps its area integral: ``sum(out * dst_area) == sum(in * src_area)`` for
    global grids, to floating-point rounding.
    """

    def __init__(
        self,
        src_lat_bounds: np.ndarray,
        src_lon_bounds: np.ndarray,
        dst_lat_bounds: np.ndarray,
        dst_lon_bounds: np.ndarray,
        *,
        min_valid_fraction: float = 0.5,
    ) -> None:
        if not (0.0 < min_valid_fraction <= 1.0):
            raise ConfigError(
                f"min_valid_fraction={min_valid_fraction} is outside (0, 1]; "
                "use e.g. 0.5 to require half of each cell to be valid"
            )
        self.min_valid_fraction = float(min_valid_fraction)
        src_lat = np.asarray(src_lat_bounds, dtype=np.float64)
        dst_lat = np.asarray(dst_lat_bounds, dtype=np.float64)
        src_lon = np.asarray(src_lon_bounds, dtype=np.float64)
        dst_lon = np.asarray(dst_lon_bounds, dtype=np.float64)
        if np.abs(src_lat).max() > 90 + 1e-9 or np.abs(dst_lat).max() > 90 + 1e-9:
            raise ConfigError("latitude bounds must lie within [-90, 90]")
        # Overlaps in sin(latitude) are exact area fractions of a latitude band.
        self.lat = axis_overlaps(np.sin(np.deg2rad(src_lat)), np.sin(np.deg2rad(dst_lat)))
        period = FULL_CIRCLE_DEG if _is_full_circle(src_lon) else None
        self.lon = axis_overlaps(src_lon, dst_lon, period=period)
        self.src_shape = (src_lat.shape[0], src_lon.shape[0])
        self.dst_shape = (dst_lat.shape[0], dst_lon.shape[0])
        self.dst_lat_bounds = dst_lat
        self.dst_lon_bounds = dst_lon
        # Per-axis normalisation of the NaN-free path: 1 / covered length, and the share
        # of each destination cell that the source covers (below 1 for regional sources).
        self._lat_inv, self._lat_frac = _inverse_and_fraction(self.lat)
        self._lon_inv, self._lon_frac = _inverse_and_fraction(self.lon)
        self._prepare_lon_layout()
        self._args_cache: dict[str, tuple[Any, ...]] = {}

    def _prepare_lon_layout(self) -> None:
        # The kernel keeps one row in a buffer rotated by `rot` and extended past its end,
        # so that every unwrapped longitude index u of a used weight lands at u - rot.
        lon = self.lon
        used = lon.weight > 0
        umin = int(lon.index[used].min()) if used.any() else 0
        umax = int(lon.index[used].max()) if used.any() else 0
        n = lon.n_src
        self._rot = umin % n
        self._ext_len = max(n, umax - umin + 1)
        shifted = np.where(used, lon.index - umin, 0)
        affine = lon.affine()
        if affine is not None:
            self._lon_start, self._lon_stride = affine[0] - umin, affine[1]
        else:
            self._lon_start, self._lon_stride = 0, 0
        self._lon_idx_t = np.ascontiguousarray(shifted.T)
        self._lon_wt = np.ascontiguousarray(lon.weight.T)

    def _kernel_args(self, dtype: np.dtype) -> tuple[Any, ...]:
        # Cached per compute dtype: float32 data is accumulated in float32.
        cached = self._args_cache.get(dtype.str)
        if cached is None:

            def c(a: np.ndarray) -> np.ndarray:
                return np.ascontiguousarray(a, dtype=dtype)

            cached = (
                self.lat.index,
                c(self.lat.weight),
                c(self.lat.weight * self._lat_inv[:, None]),
                c(self._lat_frac),
                c(self.lat.length),
                self._lon_idx_t,
                c(self._lon_wt),
                c(self._lon_wt * self._lon_inv[None, :]),
                c(self._lon_frac),
                c(self.lon.length),
                self._lon_start,
                self._lon_stride,
                self._rot,
                self._ext_len,
                self.min_valid_fraction,
            )
            self._args_cache[dtype.str] = cached
        return cached

    @classmethod
    def from_points(
        cls,
        src_lat: np.ndarray,
        src_lon: np.ndarray,
        grid: ModelGrid,
        *,
        min_valid_fraction: float = 0.5,
    ) -> ConservativeRegridder:
        """Build a regridder from a point grid (ERA5-style centres) to a model grid.

        Cell bounds are the midpoints between neighbouring points, clipped to +-90 deg in
        latitude, which gives ERA5's half-width polar cells.
        """
        lat_b = point_grid_bounds(np.asarray(src_lat), clip=(-90.0, 90.0))
        lon_b = point_grid_bounds(np.asarray(src_lon))
        return cls(
            lat_b,
            lon_b,
            grid.lat_bounds,
            grid.lon_bounds,
            min_valid_fraction=min_valid_fraction,
        )

    def apply(
        self, data: np.ndarray, *, threads: int = 1, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Regrid an array whose last two axes are (latitude, longitude) of the source.

        Parameters
        ----------
        data
            ``(..., ny_src, nx_src)``. float32 data and small integers give float32
            (accumulated in float32, at the data's own precision); the rest float64.
        threads
            Planes are processed concurrently on this many threads (the kernel releases
            the GIL). Inside Dask tasks keep 1 and let Dask parallelise.
        out
            Optional ``(..., ny_dst, nx_dst)`` array of the result dtype to write into
            (saves allocating and page-faulting a new result on repeated calls).

        Returns
        -------
        numpy.ndarray
            ``(..., ny_dst, nx_dst)``.
        """
        x = np.asarray(data)
        if x.shape[-2:] != self.src_shape:
            raise ConfigError(
                f"array of shape {x.shape} does not end in the source grid shape "
                f"{self.src_shape}; pass (..., lat, lon) data on the regridder's source grid"
            )
        out_dtype = _result_dtype(x.dtype)
        if x.dtype == np.bool_:
            x = x.view(np.uint8)
        elif not np.issubdtype(x.dtype, np.floating) and x.dtype.itemsize > 2:
            x = x.astype(np.float64)
        lead = x.shape[:-2]
        planes = x.reshape((-1, *self.src_shape))
        shape = (planes.shape[0], *self.dst_shape)
        if out is None:
            result = np.empty(shape, dtype=out_dtype)
        else:
            if out.dtype != out_dtype or out.shape != (*lead, *self.dst_shape):
                raise ConfigError(
                    f"out has shape {out.shape} and dtype {out.dtype}; pass "
                    f"{(*lead, *self.dst_shape)} {np.dtype(out_dtype)}"
                )
            result = out.reshape(shape)
        args = self._kernel_args(np.dtype(out_dtype))

        kernel: Any = _regrid_plane

        def one(i: int) -> None:
            kernel(np.ascontiguousarray(planes[i]), *args, result[i])

        if threads > 1 and planes.shape[0] > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(one, range(planes.shape[0])))
        else:
            for i in range(planes.shape[0]):
                one(i)
        return result.reshape((*lead, *self.dst_shape))

    def regrid(
        self,
        obj: xr.DataArray | xr.Dataset,
        *,
        lat_dim: Hashable = "latitude",
        lon_dim: Hashable = "longitude",
    ) -> xr.DataArray | xr.Dataset:
        """Regrid xarray objects (lazily when they hold dask arrays).

        Variables without both horizontal dimensions pass through unchanged. The result
        has dimensions ``lat`` and ``lon`` with the destination cell centres.
        """
        if isinstance(obj, xr.Dataset):
            out_vars = {}
            for name, var in obj.data_vars.items():
                if lat_dim in var.dims and lon_dim in var.dims:
                    out_vars[name] = self._regrid_da(var, lat_dim, lon_dim)
                else:
                    out_vars[name] = var.drop_vars([lat_dim, lon_dim], errors="ignore")
            ds = xr.Dataset(out_vars, attrs=obj.attrs)
            return ds.assign_coords(self._dst_coords())
        return self._regrid_da(obj, lat_dim, lon_dim)

    def _dst_coords(self) -> dict[str, xr.DataArray]:
        lat = self.dst_lat_bounds.mean(axis=1)
        lon = self.dst_lon_bounds.mean(axis=1)
        return {
            "lat": xr.DataArray(
                lat, dims="lat", attrs={"standard_name": "latitude", "units": "degrees_north"}
            ),
            "lon": xr.DataArray(
                lon, dims="lon", attrs={"standard_name": "longitude", "units": "degrees_east"}
            ),
        }

    def _regrid_da(self, da: xr.DataArray, lat_dim: Hashable, lon_dim: Hashable) -> xr.DataArray:
        dtype = _result_dtype(da.dtype)
        out = xr.apply_ufunc(
            self.apply,
            da,
            input_core_dims=[[lat_dim, lon_dim]],
            output_core_dims=[["lat", "lon"]],
            exclude_dims={lat_dim, lon_dim},
            dask="parallelized",
            output_dtypes=[dtype],
            dask_gufunc_kwargs={
                "output_sizes": {"lat": self.dst_shape[0], "lon": self.dst_shape[1]},
                "allow_rechunk": True,
            },
            keep_attrs=True,
        )
        out = out.drop_vars([lat_dim, lon_dim], errors="ignore")
        return out.assign_coords(self._dst_coords())


def global_integral(field: np.ndarray, lat_bounds: np.ndarray, lon_bounds: np.ndarray) -> float:
    """Area integral of a field over the sphere (unit radius), ignoring NaN.

    Parameters
    ----------
    field
        ``(nlat, nlon)`` values.
    lat_bounds, lon_bounds
        Cell bounds in degrees.
    """
    s = np.sin(np.deg2rad(np.asarray(lat_bounds, dtype=np.float64)))
    band = np.abs(s[:, 1] - s[:, 0])
    dlon = np.deg2rad(np.abs(lon_bounds[:, 1] - lon_bounds[:, 0]))
    return float(
        math.fsum(np.nan_to_num(np.asarray(field, np.float64) * np.outer(band, dlon)).ravel())
    )
