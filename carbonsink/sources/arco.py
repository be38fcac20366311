"""Reader of reanalysis stores laid out like Google's ARCO-ERA5 Zarr stores.

Layout (``docs/design.md`` and the ARCO-ERA5 schema note): Zarr v2 with consolidated
metadata (or Zarr v3), one global field per hour in chunks ``[1, 721, 1440]``, hourly
``time`` encoded as ``hours since 1900-01-01`` and padded with NaN far beyond the data,
latitude 90 -> -90, longitude 0 -> 359.75. The padding is never read: the root attributes
``valid_time_start`` / ``valid_time_stop`` / ``valid_time_stop_era5t`` bound the data.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

import xarray as xr
import zarr
import zarr.storage

from carbonsink.errors import SourceError, SourceUnreachableError, brief
from carbonsink.sources.base import SourceSelection, TimeSemantics
from carbonsink.sources.common import (
    Step,
    ValidRange,
    axis_range,
    select_window,
    valid_range_from_attrs,
    zarr_semantics,
)
from carbonsink.storage import Location, StorageOptions, fsspec_options, parse_location
from carbonsink.timeutil import MonthWindow

#: Root attribute of carbonsink's generated sample stores (``carbonsink sample-data``).
SAMPLE_ATTR = "carbonsink_sample"

# Short timeouts and few retries: a wrong endpoint should fail in seconds, not minutes.
_S3_CONFIG: dict[str, Any] = {
    "connect_timeout": 5,
    "read_timeout": 60,
    "retries": {"max_attempts": 3, "mode": "standard"},
}


def zarr_store(loc: Location, storage: StorageOptions, *, read_only: bool = True) -> Any:
    """A zarr-python 3 store for a location (LocalStore for local paths)."""
    if loc.is_local:
        return zarr.storage.LocalStore(loc.path, read_only=read_only)
    opts = fsspec_options(loc, storage)
    if loc.scheme == "s3":
        opts = {**opts, "config_kwargs": _S3_CONFIG}
    if loc.scheme == "memory":
        # fsspec's memory file system lives in this process only (tests, notebooks).
        return zarr.storage.FsspecStore.from_url(loc.url, read_only=read_only)
    return zarr.storage.FsspecStore.from_url(
        loc.url, storage_options={**opts, "asynchronous": True}, read_only=read_only
    )


def describe_open_error(url: str, exc: BaseException) -> str:
    """One line for an exception raised while opening a store."""
    return (
        f"cannot open {url}: {brief(exc)}; check the URL, the endpoint and the credentials "
        "(or --anonymous for public buckets)"
    )


class ArcoEra5Source:
    """An ARCO-ERA5-layout Zarr store (``file://``, ``s3://``, ``gs://``, ``memory://``).

    Parameters
    ----------
    url
        Store URL or local path.
    storage
        Endpoint, region and anonymous access for object stores.
    """

    def __init__(self, url: str, storage: StorageOptions | None = None) -> None:
        self.location = parse_location(url)
        self.url = self.location.url
        self.storage = storage or StorageOptions()

    @cached_property
    def dataset(self) -> xr.Dataset:
        """The store, opened lazily (no dask; no data read)."""
        store = zarr_store(self.location, self.storage)
        try:
            consolidated = self._has_consolidated_v2(store)
            ds = xr.open_zarr(
                store,
                consolidated=True if consolidated else None,
                chunks=None,
                decode_timedelta=False,
            )
        except SourceError:
            raise
        except Exception as exc:
            raise SourceUnreachableError(describe_open_error(self.url, exc)) from exc
        if not ds.data_vars:
            raise SourceError(f"source {self.url} is an empty store (no variables); check the URL")
        return ds

    def _has_consolidated_v2(self, store: Any) -> bool:
        # ARCO's stores are Zarr v2 with .zmetadata; discovering 277 arrays without it
        # is slow (and reportedly hangs), so use it when it is there.
        from zarr.core.buffer import default_buffer_prototype

        async def probe() -> bool:
            buf = await store.get(".zmetadata", prototype=default_buffer_prototype())
            if buf is None:
                return False
            json.loads(buf.to_bytes())
            return True

        return bool(zarr.core.sync.sync(probe()))

    @cached_property
    def valid_range(self) -> ValidRange | None:
        """The range of real data from the root attributes (None if absent)."""
        return valid_range_from_attrs(dict(self.dataset.attrs), url=self.url)

    def available(self) -> ValidRange:
        """The range of real data: the ``valid_time_*`` attributes, else the time axis."""
        return self.valid_range or axis_range(self.dataset["time"].values, url=self.url)

    @property
    def synthetic(self) -> bool:
        """Whether the store is carbonsink's generated sample data, not ERA5."""
        return SAMPLE_ATTR in self.dataset.attrs

    def select(self, variables: list[str], window: MonthWindow) -> SourceSelection:
        """Validate and lazily select ``variables`` for the months of ``window``."""
        sample = self.synthetic

        def rule(name: str, da: xr.DataArray, step: Step) -> TimeSemantics:
            return zarr_semantics(name, da, step, url=self.url, sample=sample)

        sel = select_window(
            self.dataset, variables, window, url=self.url, valid=self.valid_range, rule=rule
        )
        for key in ("valid_time_stop", "valid_time_stop_era5t", "last_updated"):
            if key in self.dataset.attrs:
                sel.attrs[f"source_{key}"] = str(self.dataset.attrs[key])
        sel.attrs["source_product"] = (
            "carbonsink synthetic sample data (not ERA5)" if sample else "ARCO-ERA5-layout Zarr"
        )
        sel.attrs["source_synthetic"] = "true" if sample else "false"
        return sel
