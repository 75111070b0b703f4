"""Store backends, chosen by the store URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from hubstash.errors import UsageError
from hubstash.stores.base import Store, StoreObject
from hubstash.stores.folder import FolderStore
from hubstash.stores.s3options import S3Options

__all__ = ["FolderStore", "S3Options", "Store", "StoreObject", "open_store"]


def open_store(url: str, options: S3Options | None = None) -> Store:
    """The store a URL names: a folder path, ``file://``, ``s3://`` or ``http(s)://``.

    ``http://`` and ``https://`` URLs name a store published read-only over HTTP.

    Raises:
        UsageError: the URL's scheme is not supported.
    """
    if not url:
        raise UsageError("no store given", hint="pass --store or set HUBSTASH_STORE")
    if url.startswith("s3://"):
        from hubstash.stores.s3 import S3Store, parse_s3_url

        bucket, prefix = parse_s3_url(url)
        return S3Store(bucket, prefix, options or S3Options())
    if url.startswith(("http://", "https://")):
        from hubstash.stores.http import HttpStore

        return HttpStore(url, ca_bundle=options.ca_bundle if options else None)
    if url.startswith("file://"):
        parsed = urlparse(url)
        return FolderStore(Path(unquote(parsed.netloc + parsed.path)))
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise UsageError(
            f"store URLs of scheme {scheme!r} are not supported",
            hint="use a folder path, file://PATH, s3://bucket/prefix or https://URL",
        )
    return FolderStore(Path(url).expanduser())
