"""What every store backend offers: small objects, streamed blobs, listings.

Backends only move bytes. They do not hash, validate or decide what to write: the
store format lives in ``hubstash.layout`` and the rules in push and pull.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hubstash.errors import NotFound, UsageError

ProgressFn = Callable[[int], None]


class Sink(Protocol):
    """Where a download writes: in order with ``write``, or by offset."""

    def write(self, data: bytes) -> None: ...

    def write_at(self, offset: int, data: bytes) -> None: ...


def ignore_progress(_: int) -> None:
    """The default progress callback: does nothing."""


@dataclass(frozen=True)
class StoreObject:
    """One object in a listing.

    Attributes:
        key: the key, relative to the store root.
        size: bytes.
        modified: when it was last written, in seconds since the epoch, by the
            store's clock (S3's LastModified, the file's mtime); None when unknown.
    """

    key: str
    size: int
    modified: float | None = None


class Store(abc.ABC):
    """A place that holds objects under string keys.

    Guarantees every backend gives: a written object is either absent or complete
    (never seen half-written); listings are complete when they return; errors are
    ``HubstashError`` subclasses naming the cause.
    """

    url: str
    #: Whether ``read_range`` is worth using for large objects.
    ranged_reads: bool = False
    #: Whether the store retries failed requests and broken-off answers itself,
    #: so that callers must not multiply its retries with their own.
    retries_itself: bool = False

    @abc.abstractmethod
    def read(self, key: str) -> bytes:
        """A whole small object. Raises ``NotFound`` when it is missing."""

    def read_optional(self, key: str) -> bytes | None:
        """A whole small object, or None when it is missing."""
        try:
            return self.read(key)
        except NotFound:
            return None

    @abc.abstractmethod
    def read_stream(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks, memory bounded by one chunk."""

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start``; only used when ``ranged_reads``."""
        raise NotImplementedError

    def download(self, key: str, sink: Sink, size: int, progress: ProgressFn) -> None:
        """Write the object's bytes into ``sink``, streamed, memory bounded."""
        for chunk in self.read_stream(key):
            sink.write(chunk)
            progress(len(chunk))

    @abc.abstractmethod
    def write(self, key: str, data: bytes) -> None:
        """Write a small object, replacing any previous one atomically."""

    @abc.abstractmethod
    def upload(self, key: str, path: Path, size: int, progress: ProgressFn) -> None:
        """Upload a file of a known size, in parts when it is large."""

    @abc.abstractmethod
    def listing(self, prefix: str) -> Iterator[StoreObject]:
        """Every object whose key starts with ``prefix``."""

    def delete(self, keys: Iterable[str]) -> None:
        """Delete objects; a key that is already gone is not an error.

        Only ``prune`` and ``gc`` delete content, in the order the store format
        allows (see the README, "Store format"); a push deletes only its own
        ``pending/`` record. Stores that cannot delete (read-only ones) keep this
        refusal.

        Raises:
            AccessDenied: the credentials may not delete (names the permission).
            UsageError: this kind of store cannot delete.
        """
        if any(True for _ in keys):
            raise UsageError(f"{self.url} is a store that cannot delete objects")

    def require_credentials(self) -> None:  # noqa: B027 - most stores need none
        """Raise ``NoCredentials`` when the store needs credentials and has none."""

    @property
    def retries(self) -> int:
        """Requests and answers this store asked for again after a transient
        failure (throttling, a 5xx, a broken-off body), since it was opened."""
        return 0

    def describe(self) -> str:
        """Where requests go, for ``--debug``; never credentials."""
        return self.url

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release connections and threads."""
