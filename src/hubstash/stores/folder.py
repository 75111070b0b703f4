"""A store in a local folder: local disk, NFS, a CI cache directory."""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from hubstash import crashpoints
from hubstash.errors import AccessDenied, LocalFilesystemError, NotFound, UsageError
from hubstash.stores.base import ProgressFn, Store, StoreObject

CHUNK = 1024 * 1024
# Temporary names start with a dot so listings skip them and keys never clash.
_TEMP_MARK = ".hubstash-tmp-"


class FolderStore(Store):
    """Objects are files below ``root``; a key's ``/`` are folders.

    Writes go to a temporary file in the destination folder, are flushed to disk, and
    are renamed into place, so a reader never sees a partial object, even over NFS.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"{key} is not in the store {self.root}") from exc
        except IsADirectoryError as exc:
            raise NotFound(f"{key} is a folder in the store {self.root}") from exc
        except OSError as exc:
            raise _os_error(exc, self._path(key)) from exc

    def read_stream(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the generator below
        except FileNotFoundError as exc:
            raise NotFound(f"{key} is not in the store {self.root}") from exc
        except OSError as exc:
            raise _os_error(exc, path) from exc
        return _chunks(f)

    def write(self, key: str, data: bytes) -> None:
        self._atomic(key, lambda f: f.write(data))

    def upload(self, key: str, path: Path, size: int, progress: ProgressFn) -> None:
        def copy(dest: BinaryIO) -> None:
            with open(path, "rb") as src:
                while block := src.read(CHUNK):
                    dest.write(block)
                    progress(len(block))

        self._atomic(key, copy)

    def listing(self, prefix: str) -> Iterator[StoreObject]:
        folder, _, _ = prefix.rpartition("/")
        start = self.root / folder if folder else self.root
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix) and (found := _stat(path)) is not None:
                    yield StoreObject(key, found.st_size, found.st_mtime)

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            path = self._path(key)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise _os_error(exc, path) from exc
            self._remove_empty_folders(path.parent)

    def _remove_empty_folders(self, folder: Path) -> None:
        # A store that had a revision pruned looks as if it had never been pushed.
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/") or "\\" in key:
            raise UsageError(f"refusing store key {key!r}")
        return self.root / key

    def _atomic(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        path = self._path(key)
        temp = path.with_name(f"{_TEMP_MARK}{path.name}.{uuid.uuid4().hex[:8]}")
        try:
            with _create(temp) as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
            crashpoints.reached("store-temp-written")
            os.replace(temp, path)
        except OSError as exc:
            _remove_quietly(temp)
            raise _os_error(exc, path) from exc
        except BaseException:
            _remove_quietly(temp)
            raise


def _create(temp: Path) -> BinaryIO:
    """Open a new temporary file, making its folder; a folder removed by a
    concurrent ``delete`` between the two steps is made again."""
    for _ in range(3):
        temp.parent.mkdir(parents=True, exist_ok=True)
        try:
            return open(temp, "wb")
        except FileNotFoundError:
            continue
    return open(temp, "wb")


def _stat(path: Path) -> os.stat_result | None:
    """A listed file's status, or None when it was deleted since it was listed."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while block := f.read(CHUNK):
            yield block


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _os_error(exc: OSError, path: Path) -> Exception:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AccessDenied(f"cannot write to the store at {path}: {exc.strerror}")
    if exc.errno == errno.ENOSPC:
        return LocalFilesystemError(f"no space left for the store at {path}")
    return LocalFilesystemError(f"store folder error at {path}: {exc}")
