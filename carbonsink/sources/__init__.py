"""Reanalysis sources: ARCO-ERA5 Zarr stores and files from the Copernicus data store."""

from __future__ import annotations

from carbonsink.sources.arco import ArcoEra5Source
from carbonsink.sources.base import Source, SourceSelection, TimeSemantics
from carbonsink.sources.cds import CDS_SUFFIXES, CdsEra5Source
from carbonsink.storage import StorageOptions

__all__ = [
    "ArcoEra5Source",
    "CdsEra5Source",
    "Source",
    "SourceSelection",
    "TimeSemantics",
    "open_source",
]


def open_source(url: str, storage: StorageOptions | None = None) -> Source:
    """The right reader for a URL: CDS files by suffix (GRIB, NetCDF), Zarr otherwise."""
    if url.rstrip("/").lower().endswith(CDS_SUFFIXES):
        return CdsEra5Source(url, storage)
    return ArcoEra5Source(url, storage)
