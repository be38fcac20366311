"""Where data lives: URLs (``file://``, ``s3://``, ``gs://``, ``memory://``) and their options.

Credentials never go into settings files: S3 takes them from the standard AWS variables,
profiles or the instance's identity; GCS from its usual chain, or anonymous access.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict

from carbonsink.errors import ConfigError

SUPPORTED_SCHEMES = ("file", "s3", "gs", "gcs", "memory")


class StorageOptions(BaseModel):
    """How to reach an object store.

    Attributes
    ----------
    endpoint_url
        S3-compatible endpoint (MinIO, Ceph, a loopback test server); None for AWS.
    region
        S3 region, if the endpoint needs one.
    anonymous
        Read public buckets without credentials (``gs://gcp-public-data-arco-era5``).
    profile
        AWS profile name from the shared credentials file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_url: str | None = None
    region: str | None = None
    anonymous: bool = False
    profile: str | None = None


@dataclass(frozen=True)
class Location:
    """A parsed storage URL: ``scheme`` and ``path`` (bucket/prefix or local path)."""

    scheme: str
    path: str

    @property
    def url(self) -> str:
        """The URL in canonical form."""
        if self.scheme == "file":
            return Path(self.path).as_uri()
        return f"{self.scheme}://{self.path}"

    @property
    def bucket(self) -> str:
        """Bucket of an object-store URL."""
        return self.path.split("/", 1)[0]

    @property
    def prefix(self) -> str:
        """Key prefix inside the bucket (no leading or trailing slash)."""
        parts = self.path.split("/", 1)
        return parts[1].strip("/") if len(parts) > 1 else ""

    def child(self, name: str) -> Location:
        """The location of ``name`` below this one."""
        return Location(self.scheme, f"{self.path.rstrip('/')}/{name}")

    @property
    def is_local(self) -> bool:
        """Whether this is a path on the local file system."""
        return self.scheme == "file"


def parse_location(url: str | os.PathLike[str]) -> Location:
    """Parse a URL or a local path.

    Raises
    ------
    ConfigError
        For an empty URL or an unsupported scheme.
    """
    text = os.fspath(url).strip()
    if not text:
        raise ConfigError("empty URL; give a path or a file://, s3://, gs:// or memory:// URL")
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        path = parsed.path if scheme == "file" else text
        return Location("file", str(Path(path).expanduser().absolute()))
    if scheme not in SUPPORTED_SCHEMES:
        raise ConfigError(
            f"unsupported URL scheme {scheme!r} in {text!r}; use file://, s3://, gs:// or memory://"
        )
    if scheme == "gcs":
        scheme = "gs"
    path = (parsed.netloc + parsed.path).strip("/")
    if scheme in ("s3", "gs") and not parsed.netloc:
        raise ConfigError(f"URL {text!r} names no bucket; write it as {scheme}://bucket/prefix")
    return Location(scheme, path)


def fsspec_options(loc: Location, opts: StorageOptions) -> dict[str, Any]:
    """Keyword arguments for the fsspec file system of ``loc``."""
    if loc.scheme == "s3":
        kw: dict[str, Any] = {"anon": opts.anonymous}
        client_kwargs: dict[str, Any] = {}
        if opts.endpoint_url:
            client_kwargs["endpoint_url"] = opts.endpoint_url
        if opts.region:
            client_kwargs["region_name"] = opts.region
        if client_kwargs:
            kw["client_kwargs"] = client_kwargs
        if opts.profile:
            kw["profile"] = opts.profile
        return kw
    if loc.scheme == "gs":
        return {"token": "anon"} if opts.anonymous else {}
    return {}
