"""The lake: one root URL holding carbonsink's stores, each an Icechunk repository.

Layout under the root (``docs/design.md``)::

    carbonsink-lake.json   marker: format version, grid, creation time
    features/              monthly drivers, their climatology and anomalies (Icechunk)
    sinkmap/ budget/ models/

Icechunk gives the transactional writes the design asks for: a run writes in a session
and publishes with one commit; a reader never sees half a run, and a run that dies
publishes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from typing import Any

import fsspec
import icechunk

from carbonsink._version import __version__
from carbonsink.errors import ConfigError, LakeError, brief, storage_problem
from carbonsink.storage import Location, StorageOptions, fsspec_options, parse_location

# Icechunk warns on every local-filesystem repository that concurrent commits from several
# processes are unsafe there; carbonsink commits from one driver per run and publishes with
# a compare-and-swap, so keep its errors only.
icechunk.set_logs_filter("icechunk=error")

MARKER = "carbonsink-lake.json"
LAKE_FORMAT = 1
STORES = ("features", "labels", "sinkmap", "budget", "models", "plans")


class Lake:
    """A carbonsink lake at a URL (local path, ``file://``, ``s3://`` or ``gs://``).

    Parameters
    ----------
    url
        Root of the lake.
    storage
        Endpoint, region and anonymous access for object stores.
    """

    def __init__(self, url: str, storage: StorageOptions | None = None) -> None:
        self.location = parse_location(url)
        if self.location.scheme == "memory":
            raise ConfigError(
                "a lake cannot live at memory://; use a local path or an s3:// or gs:// URL"
            )
        self.url = self.location.url
        self.storage = storage or StorageOptions()

    # -- the marker -------------------------------------------------------------------
    def _fs(self) -> fsspec.AbstractFileSystem:
        return fsspec.filesystem(
            self.location.scheme, **fsspec_options(self.location, self.storage)
        )

    def _marker_path(self) -> str:
        return f"{self.location.path.rstrip('/')}/{MARKER}"

    def info(self) -> dict[str, Any] | None:
        """The marker's content, or None if no lake exists at the URL.

        Raises
        ------
        LakeError
            If the URL holds something that is not a carbonsink lake.
        """
        fs = self._fs()
        marker = self._marker_path()
        try:
            if fs.exists(marker):
                with fs.open(marker, "r") as fh:
                    info = json.load(fh)
                if info.get("format") != LAKE_FORMAT:
                    raise LakeError(
                        f"{self.url} is a carbonsink lake of format {info.get('format')}, this "
                        f"carbonsink reads format {LAKE_FORMAT}; use a matching carbonsink version"
                    )
                return dict(info)
            if fs.exists(self.location.path) and fs.ls(self.location.path):
                raise LakeError(
                    f"{self.url} is not a carbonsink lake (it holds other files and no {MARKER}); "
                    "pass an empty or new location as --lake"
                )
        except LakeError:
            raise
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LakeError(
                f"{self.url}: unreadable {MARKER} ({exc}); restore it or use a new lake"
            ) from exc
        except Exception as exc:
            raise LakeError(
                f"cannot reach the lake {self.url}: {brief(exc)}; check the URL, endpoint and "
                "credentials"
            ) from exc
        return None

    def create(self) -> None:
        """Write the marker (idempotent)."""
        if self.info() is not None:
            return
        fs = self._fs()
        if self.location.is_local:
            os.makedirs(self.location.path, exist_ok=True)
        with fs.open(self._marker_path(), "w") as fh:
            json.dump(
                {"format": LAKE_FORMAT, "created_by": f"carbonsink {__version__}"}, fh, indent=2
            )

    def destroy_if_empty(self) -> None:
        """Remove a lake that holds nothing but its marker (clean-up of a failed first run)."""
        fs = self._fs()
        path = self.location.path
        if not fs.exists(path):
            return
        entries = [e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(path)]
        if set(entries) <= {MARKER}:
            if self.location.is_local:
                shutil.rmtree(path, ignore_errors=True)
            else:
                fs.rm(path, recursive=True)

    def write_file(self, relpath: str, data: bytes) -> str:
        """Write a plain file (a report, a figure) under the lake's root; returns its URL.

        Atomically: a local file is written beside its place and renamed into it, an
        object is put whole, so a reader (or a run that dies) never leaves half a file.

        Raises
        ------
        carbonsink.errors.StorageError
            The lake is read-only, full or not writable.
        """
        fs = self._fs()
        path = f"{self.location.path.rstrip('/')}/{relpath}"
        try:
            if self.location.is_local:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                tmp = f"{path}.partial-{os.getpid()}"
                try:
                    with open(tmp, "wb") as fh:
                        fh.write(data)
                    os.replace(tmp, path)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            else:
                fs.pipe_file(path, data)
        except OSError as exc:
            problem = storage_problem(exc, f"the lake {self.url}")
            if problem is None:
                raise
            raise problem from exc
        return f"{self.url.rstrip('/')}/{relpath}"

    def read_file(self, relpath: str) -> bytes | None:
        """A plain file under the lake's root, or None if it is not there."""
        path = f"{self.location.path.rstrip('/')}/{relpath}"
        try:
            return bytes(self._fs().cat_file(path))
        except FileNotFoundError:
            return None

    def delete_file(self, relpath: str) -> None:
        """Remove a plain file under the lake's root, if it is there.

        Its folder goes too if that is left empty: a lake that a failed first run made must
        look empty to be removed.
        """
        path = f"{self.location.path.rstrip('/')}/{relpath}"
        with contextlib.suppress(FileNotFoundError):
            self._fs().rm_file(path)
        if self.location.is_local:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))

    # -- the stores ---------------------------------------------------------------------
    def store_location(self, name: str) -> Location:
        """Location of one store."""
        if name not in STORES:
            raise ConfigError(f"unknown store {name!r}; stores are {', '.join(STORES)}")
        return self.location.child(name)

    def icechunk_storage(self, name: str) -> icechunk.Storage:
        """Icechunk storage configuration of one store."""
        loc = self.store_location(name)
        opts = self.storage
        if loc.is_local:
            return icechunk.local_filesystem_storage(loc.path)
        if loc.scheme == "s3":
            endpoint = opts.endpoint_url
            kw: dict[str, Any] = {
                "bucket": loc.bucket,
                "prefix": loc.prefix,
                "region": opts.region
                or os.environ.get("AWS_DEFAULT_REGION")
                or ("us-east-1" if endpoint else None),
                "endpoint_url": endpoint,
                "allow_http": bool(endpoint and endpoint.startswith("http://")),
                "force_path_style": bool(endpoint),
            }
            if opts.anonymous:
                kw["anonymous"] = True
            else:
                kw["from_env"] = True
            return icechunk.s3_storage(**kw)
        if loc.scheme == "gs":
            if opts.anonymous:
                return icechunk.gcs_storage(bucket=loc.bucket, prefix=loc.prefix, anonymous=True)
            return icechunk.gcs_storage(bucket=loc.bucket, prefix=loc.prefix, from_env=True)
        raise ConfigError(f"no lake storage for scheme {loc.scheme!r}")

    def open_repo(self, name: str) -> icechunk.Repository | None:
        """Open a store's repository, or None if it does not exist yet (creating nothing).

        Raises
        ------
        LakeError
            The lake's location is a file, or holds something that is not a lake.
        """
        if self.location.is_local:
            if os.path.isfile(self.location.path):
                raise LakeError(
                    f"{self.url} is a file, not a lake; pass the lake's folder as --lake"
                )
            # Opening a local repository creates its folder: look before touching.
            if not os.path.isdir(self.store_location(name).path):
                if os.path.isdir(self.location.path):
                    self.info()  # a folder of something else is not a lake
                return None
        storage = self.icechunk_storage(name)
        if not icechunk.Repository.exists(storage):
            return None
        return icechunk.Repository.open(storage, config=_repo_config())

    def create_repo(self, name: str) -> icechunk.Repository:
        """Create a store's repository (and the lake marker).

        Raises
        ------
        carbonsink.errors.StorageError
            The lake's location is read-only, full or not writable.
        """
        try:
            self.create()
            if self.location.is_local:
                # Icechunk makes a missing folder itself, and panics if it cannot.
                os.makedirs(self.store_location(name).path, exist_ok=True)
        except OSError as exc:
            problem = storage_problem(exc, f"the lake {self.url}")
            if problem is None:
                raise
            raise problem from exc
        return icechunk.Repository.create(self.icechunk_storage(name), config=_repo_config())

    def delete_repo(self, name: str) -> None:
        """Delete a store entirely (clean-up of a store created by a run that failed)."""
        loc = self.store_location(name)
        if loc.is_local:
            shutil.rmtree(loc.path, ignore_errors=True)
        else:
            fs = self._fs()
            if fs.exists(loc.path):
                fs.rm(loc.path, recursive=True)


#: Time steps (months) per manifest shard of every array with a ``time`` dimension.
MANIFEST_SPLIT_MONTHS = 12


def _repo_config() -> icechunk.RepositoryConfig:
    # Small chunks (masks, flags) are inlined in the manifest instead of one object each.
    config = icechunk.RepositoryConfig(inline_chunk_threshold_bytes=512)
    # One manifest per array per calendar year (the time axes start in January): a unit of
    # work that reads or writes a year loads that year's manifests, not ones that grow with
    # every month the store holds. Unsplit, a Dask worker's peak grew with the store (an
    # ingest of one year: 385 MiB into 2 stored years, 444 MiB into 9; docs/reliability.md).
    config.manifest = icechunk.ManifestConfig(
        splitting=icechunk.ManifestSplittingConfig.from_dict(
            {
                icechunk.ManifestSplitCondition.AnyArray(): {
                    icechunk.ManifestSplitDimCondition.DimensionName("^time$"): (
                        MANIFEST_SPLIT_MONTHS
                    )
                }
            }
        )
    )
    # An object store that is away for a while (a restart, a network blip): each request
    # retries with backoff up to 8 s, about a minute in all, before the run fails cleanly.
    config.storage = icechunk.StorageSettings(
        retries=icechunk.StorageRetriesSettings(
            max_tries=12, initial_backoff_ms=250, max_backoff_ms=8000
        )
    )
    return config
