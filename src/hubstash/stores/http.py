"""A store published read-only over HTTP(S): a static web server, a CDN, a website.

A locked pull fetches each blob by the SHA-256 the lock names and needs no listing,
so any server that can answer ``GET <base>/<key>`` serves one: the folder of a folder
store, or a bucket's objects behind a web server. Nothing else works without a
listing, and nothing can be written; those operations fail with a one-line
``UsageError`` that says what to use instead.

Only the standard library is used (no SDK). Every byte is still verified by the
caller against the lock, so a plain ``http://`` server cannot change the cache.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote, urlparse

from hubstash.errors import (
    AccessDenied,
    HubstashError,
    NotFound,
    StoreUnreachable,
    UsageError,
)
from hubstash.stores.base import ProgressFn, Store, StoreObject

CHUNK = 1024 * 1024
TIMEOUT = 60.0
_READ_ONLY_HINT = (
    "pull --locked works over HTTP, as hubstash.lock names every file; push, ls,"
    " lock --from-store and pull without --locked need the folder or bucket the"
    " store is published from"
)


class HttpStore(Store):
    """Objects at ``<base URL>/<key>``, read with plain GET requests.

    Args:
        base_url: ``http://`` or ``https://`` URL of the store's root folder.
        ca_bundle: a certificate authority file for TLS; the system's when None.
        timeout: seconds to wait for a connection or for the next bytes.
    """

    def __init__(
        self, base_url: str, *, ca_bundle: str | None = None, timeout: float = TIMEOUT
    ) -> None:
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"{base_url!r} is not an http:// or https:// URL")
        self.url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self._context = _tls_context(ca_bundle)

    def read(self, key: str) -> bytes:
        with self._get(key) as response:
            return self._guard(key, response.read)

    def read_stream(self, key: str) -> Iterator[bytes]:
        return self._chunks(key, self._get(key))

    def write(self, key: str, data: bytes) -> NoReturn:
        raise self._read_only("written")

    def upload(self, key: str, path: Path, size: int, progress: ProgressFn) -> NoReturn:
        raise self._read_only("written")

    def listing(self, prefix: str) -> Iterator[StoreObject]:
        raise self._read_only("listed")

    def delete(self, keys: Iterable[str]) -> None:
        if any(True for _ in keys):
            raise self._read_only("changed")

    def _read_only(self, what: str) -> UsageError:
        return UsageError(
            f"{self.url} is a read-only store published over HTTP: it cannot be {what}",
            hint=_READ_ONLY_HINT,
        )

    def _get(self, key: str) -> http.client.HTTPResponse:
        request = urllib.request.Request(
            self.url + quote(key, safe="/"), headers={"User-Agent": _user_agent()}
        )
        try:
            response: http.client.HTTPResponse = urllib.request.urlopen(
                request, timeout=self.timeout, context=self._context
            )
        except urllib.error.HTTPError as exc:
            exc.close()
            raise _status_error(exc.code, self.url + key) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise _connection_error(exc, self.url) from exc
        return response

    def _chunks(self, key: str, response: http.client.HTTPResponse) -> Iterator[bytes]:
        with response:
            while block := self._guard(key, lambda: response.read(CHUNK)):
                yield block

    def _guard(self, key: str, read: Callable[[], bytes]) -> bytes:
        """Read body bytes; a connection lost mid-body is worth a retry."""
        try:
            return read()
        except (http.client.HTTPException, OSError) as exc:
            raise StoreUnreachable(
                f"the connection to {self.url} broke while reading {key}: {exc}"
            ) from exc


def _status_error(status: int, where: str) -> HubstashError:
    if status in (404, 410):
        return NotFound(f"{where} does not exist")
    if status in (401, 403):
        return AccessDenied(
            f"the server refused {where} ({status})",
            hint="let the web server serve the store's files; some servers (S3,"
            " CloudFront) also answer 403 for a file that does not exist",
        )
    if status >= 500:
        return StoreUnreachable(f"{where}: the server answered {status}")
    return HubstashError(f"{where}: the server answered {status}")


def _connection_error(exc: Exception, url: str) -> StoreUnreachable:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ssl.SSLError):
        return StoreUnreachable(
            f"TLS verification failed for {url}: {reason}",
            hint="pass --ca-bundle with the server's certificate authority",
        )
    return StoreUnreachable(
        f"cannot connect to {url}: {reason}", hint="check the store URL and the network"
    )


def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot read the CA bundle {ca_bundle}: {exc}") from exc


def _user_agent() -> str:
    from hubstash import __version__

    return f"hubstash/{__version__}"
