"""Writing into a Hugging Face Hub cache exactly as the Hub client writes it.

Every write is atomic: content goes to a temporary name first and is renamed into
place. Temporary blobs use the client's own partial-download name
(``blobs/<name>.<8 hex>.incomplete``), so the client never reads them and
``hf cache prune`` clears what a killed run left. Blob writes take the client's own
lock file (``.locks/<repo folder>/<name>.lock``), so a ``hf_hub_download`` running at
the same time never races hubstash on one blob.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from hubstash import crashpoints
from hubstash.errors import (
    AccessDenied,
    HubstashError,
    LocalFilesystemError,
    UnsafeStoreContent,
)

_INCOMPLETE = re.compile(r"^(?P<name>[0-9a-f]+)\.[0-9a-f]+\.incomplete$")


def file_mode() -> int:
    """The mode the client gives new files: 0666 less the process umask."""
    current = os.umask(0o022)
    os.umask(current)
    return 0o666 & ~current


def temp_blob(repo_dir: Path, name: str) -> Path:
    """A fresh partial-download path for blob ``name``, its folder created."""
    # snapshots/ first: the client reports a repo folder without one as corrupted,
    # and a run killed here must not leave such a folder.
    (repo_dir / "snapshots").mkdir(parents=True, exist_ok=True)
    blobs = repo_dir / "blobs"
    blobs.mkdir(exist_ok=True)
    return blobs / f"{name}.{uuid.uuid4().hex[:8]}.incomplete"


@contextlib.contextmanager
def blob_lock(root: Path, repo_dir: Path, name: str) -> Iterator[None]:
    """Hold the client's lock for one blob, removing stale partial files of it.

    Once the lock is ours no client is downloading that blob, so any partial file
    of it is a leftover of a killed run (the client's or ours).
    """
    lock_path = root / ".locks" / repo_dir.name / f"{name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path, mode=0o664):
        _remove_partials(repo_dir / "blobs", name)
        yield


def place(temp: Path, dest: Path, mtime_ns: int | None) -> None:
    """Give a verified temporary file its final mode and time, and rename it in."""
    os.chmod(temp, file_mode())
    if mtime_ns is not None:
        os.utime(temp, ns=(mtime_ns, mtime_ns))
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temp, dest)


def relative_link(link: Path, blob: Path) -> str:
    """The link target the client writes: relative, one ``../`` per folder level."""
    return os.path.relpath(blob, link.parent)


def write_link(link: Path, target: str) -> bool:
    """Make ``link`` a symlink to ``target``; False when it already was one."""
    if link.is_symlink() and os.readlink(link) == target:
        return False
    link.parent.mkdir(parents=True, exist_ok=True)
    # A short name: the link's own may already be as long as names can be.
    temp = link.with_name(_temp_name())
    os.symlink(target, temp)
    try:
        crashpoints.reached("cache-temp-written")
        os.replace(temp, link)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return True


def write_small(path: Path, data: bytes, mode: int) -> bool:
    """Write a small file (ref, tree listing) atomically; False when unchanged."""
    if path.is_file() and not path.is_symlink() and path.read_bytes() == data:
        if path.stat().st_mode & 0o777 != mode:
            os.chmod(path, mode)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(_temp_name())
    try:
        with open(temp, "wb") as f:
            f.write(data)
        os.chmod(temp, mode)
        crashpoints.reached("cache-temp-written")
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return True


def touch_empty(path: Path) -> None:
    """Create an empty marker file (``.no_exist``) if it is not there."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=file_mode())


def inside(root: Path, base: Path, rel: str) -> Path:
    """``base / rel``, refusing anything that would land outside the cache ``root``.

    Manifest paths are validated when read; this also guards against folders of
    the local cache that are links to elsewhere.

    Raises:
        UnsafeStoreContent: the resolved path leaves ``root``.
    """
    path = base / rel
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(path.parent)
    if not (real_parent == real_root or real_parent.startswith(real_root + os.sep)):
        raise UnsafeStoreContent(
            f"refusing to write {path}: it resolves outside the cache {root}",
            path=str(path),
        )
    return path


def symlinks_work(root: Path) -> bool:
    """Whether links can be made in the cache folder (not on some filesystems).

    Raises:
        AccessDenied: the folder cannot be written at all.
    """
    probe = root / f".hubstash-link-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(root, recursive=False)
        os.symlink("target", probe)
    except OSError as exc:
        if exc.errno in _NO_LINKS:
            return False
        raise write_error(exc, root) from exc
    probe.unlink()
    return True


_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def write_error(exc: OSError, path: Path, needed: int = 0) -> HubstashError:
    """What to report when writing ``path`` into the cache failed with ``exc``."""
    if exc.errno in _DENIED:
        return AccessDenied(
            f"cannot write to the cache at {path}: {exc.strerror}",
            hint="run as the owner of the cache, or choose a writable folder with"
            " --cache-dir",
        )
    if exc.errno == errno.ENOSPC:
        wanted = f", {_size(needed)} needed for this file" if needed else ""
        return LocalFilesystemError(
            f"disk full writing {path} ({_size(_free_bytes(path))} free{wanted})",
            hint="free some space and run again: files already restored are kept",
        )
    return LocalFilesystemError(f"cannot write {path}: {exc.strerror}")


def _size(n: int) -> str:
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"


def _free_bytes(path: Path) -> int:
    for folder in (path, *path.parents):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(folder).free
    return 0


# What a filesystem without symlinks answers; anything else (EACCES) is another
# problem, to be reported as such.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def remove_stale_temps(folder: Path, *, recursive: bool = True) -> None:
    """Remove the temporary files and links that killed hubstash runs left.

    Their names carry the writer's process id; those of live processes are theirs
    to finish. Without this the client would see a leftover link as a file of the
    snapshot, and a leftover at the cache root as a damaged repo.
    """
    if not folder.is_dir():
        return
    found = folder.rglob(".hubstash-*") if recursive else folder.glob(".hubstash-*")
    for path in found:
        match = _OWN_TEMP.match(path.name)
        if match and not _process_alive(int(match["pid"])):
            path.unlink(missing_ok=True)


def _temp_name() -> str:
    """A short temporary name that says which process writes it."""
    return f".hubstash-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"


_OWN_TEMP = re.compile(r"^\.hubstash-(?:link-probe-)?(?P<pid>\d+)-[0-9a-f]{8}(\.tmp)?$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _remove_partials(blobs: Path, name: str) -> None:
    if not blobs.is_dir():
        return
    for entry in blobs.glob(f"{name}.*.incomplete"):
        match = _INCOMPLETE.match(entry.name)
        if match and match["name"] == name:
            entry.unlink(missing_ok=True)
