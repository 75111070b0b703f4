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
import uuid
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from hubstash.errors import UnsafeStoreContent

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
    temp = link.with_name(f".hubstash-{uuid.uuid4().hex[:8]}.tmp")
    os.symlink(target, temp)
    try:
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
    temp = path.with_name(f".hubstash-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temp, "wb") as f:
            f.write(data)
        os.chmod(temp, mode)
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
    """Whether links can be made in the cache folder (not on some filesystems)."""
    root.mkdir(parents=True, exist_ok=True)
    probe = root / f".hubstash-link-probe-{uuid.uuid4().hex[:8]}"
    try:
        os.symlink("target", probe)
    except OSError as exc:
        if exc.errno in _NO_LINKS:
            return False
        raise
    probe.unlink()
    return True


# What a filesystem without symlinks answers; anything else (EACCES) is another
# problem, to be reported as such.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def _remove_partials(blobs: Path, name: str) -> None:
    if not blobs.is_dir():
        return
    for entry in blobs.glob(f"{name}.*.incomplete"):
        match = _INCOMPLETE.match(entry.name)
        if match and match["name"] == name:
            entry.unlink(missing_ok=True)
