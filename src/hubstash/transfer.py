"""Running many transfers at once, and what one blob's transfer needs to know."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, BinaryIO, TypeVar

from hubstash import crashpoints
from hubstash.errors import HubstashError, Interrupted
from hubstash.hashing import CHUNK, Digests, StreamHasher

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_JOBS = 8


def run_all(
    items: Iterable[T],
    work: Callable[[T], R],
    jobs: int,
    *,
    cancel: threading.Event | None = None,
) -> list[tuple[T, R | HubstashError]]:
    """Run ``work`` on every item with ``jobs`` threads; per-item errors are returned.

    A ``HubstashError`` from one item is that item's result, so the others still run.
    Anything else (a bug, Ctrl-C) cancels what has not started, sets ``cancel`` so
    that running work can stop at its next step, and is raised.
    """
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="hubstash") as pool:
        futures = [pool.submit(_guarded, work, item) for item in items]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            _raise_unexpected(done)
        except BaseException:
            if cancel is not None:
                cancel.set()
            for future in futures:
                future.cancel()
            raise
        return [(item, f.result()) for item, f in zip(items, futures, strict=True)]


def cancellable(
    advance: Callable[[int], None], cancel: threading.Event
) -> Callable[[int], None]:
    """A progress callback that stops its transfer once the run is cancelled.

    Transfers report progress every chunk or part, so Ctrl-C stops them within one
    chunk instead of waiting for whole files.
    """

    def checked(nbytes: int) -> None:
        if cancel.is_set():
            raise Interrupted("interrupted")
        advance(nbytes)

    return checked


def _guarded(work: Callable[[T], R], item: T) -> R | HubstashError:
    try:
        return work(item)
    except HubstashError as exc:
        return exc


def _raise_unexpected(done: Iterable[Future[Any]]) -> None:
    for future in done:
        exc = future.exception()
        if exc is not None:
            raise exc


class VerifyingSink:
    """A file being downloaded, hashed on the way in.

    Sequential writes are hashed as they arrive. Parallel ranged writes land out of
    order, so the file is hashed once more at the end instead; either way no byte is
    trusted before it has been hashed.
    """

    def __init__(self, f: BinaryIO, size: int, *, git_sha1: bool) -> None:
        self.file = f
        self.size = size
        self._git_sha1 = git_sha1
        self._hasher = StreamHasher(size, git_sha1=git_sha1)
        self._sequential = True
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self._hasher.update(data)
        crashpoints.reached("pull-blob-chunk-written")

    def write_at(self, offset: int, data: bytes) -> None:
        with self._lock:
            self._sequential = False
        os.pwrite(self.file.fileno(), data, offset)

    def digests(self) -> Digests:
        self.file.flush()
        if self._sequential:
            return self._hasher.digests()
        hasher = StreamHasher(self.size, git_sha1=self._git_sha1)
        self.file.seek(0)
        while block := self.file.read(CHUNK):
            hasher.update(block)
        return hasher.digests()
