"""prune --cache-dir: remove from the local cache the revisions no lockfile needs.

What goes is what ``hf cache rm`` removes for a revision: the refs naming it (first,
so the client never meets a ref without its snapshot), its snapshot, its
``.no_exist`` markers and tree listing, then every blob of the repo that no kept
snapshot links to, and the whole repo folder when nothing of it is kept. Partial
downloads (``*.incomplete``), ``.locks/`` and the cache-wide Xet store are left
alone, so ``scan_cache_dir`` finds a clean cache afterwards.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hubstash.cache import CachedRepo, read_repo
from hubstash.cache_location import resolve_cache_dir
from hubstash.errors import LocalFilesystemError, NotFound
from hubstash.hashing import is_blob_name
from hubstash.lockfile import Lock
from hubstash.prune import PrunedRevision, locked_revisions, require_something_kept
from hubstash.repos import RepoId
from hubstash.storecontent import Revision


@dataclass(frozen=True)
class CachePrunePlan:
    """What pruning the local cache removes.

    Attributes:
        cache_dir: the cache.
        kept: revisions kept.
        removed: revisions removed.
        paths: files and folders deleted, in this order.
        freed_bytes: bytes of the regular files among them (links take none).
    """

    cache_dir: Path
    kept: int
    removed: tuple[PrunedRevision, ...]
    paths: tuple[Path, ...]
    freed_bytes: int


@dataclass(frozen=True)
class _RepoPlan:
    kept: int
    removed: list[PrunedRevision]
    paths: list[Path]


def plan_cache_prune(
    cache_dir: str | Path | None,
    locks: Sequence[Lock],
    *,
    keep_refs: bool = False,
) -> CachePrunePlan:
    """Find the revisions of the cache no lock pins and (with ``keep_refs``) no ref
    names, and everything that goes with them. Writes nothing.

    Raises:
        UsageError: nothing would be kept (no lock, no ``keep_refs``).
        NotFound: there is no cache at that folder.
    """
    require_something_kept(locks, keep_refs)
    root = resolve_cache_dir(cache_dir).path
    if not root.is_dir():
        raise NotFound(f"no Hugging Face cache at {root}", hint="pass --cache-dir")
    keep = locked_revisions(locks)
    plans = [
        _plan_repo(read_repo(folder, []), keep, keep_refs) for folder in _repos(root)
    ]
    paths = [path for plan in plans for path in plan.paths]
    return CachePrunePlan(
        cache_dir=root,
        kept=sum(plan.kept for plan in plans),
        removed=tuple(r for plan in plans for r in plan.removed),
        paths=tuple(paths),
        freed_bytes=sum(_file_bytes(path) for path in paths),
    )


def apply_cache_prune(plan: CachePrunePlan) -> None:
    """Delete the plan's paths in order; a path already gone is skipped.

    Raises:
        LocalFilesystemError: a path cannot be deleted.
    """
    for path in plan.paths:
        try:
            _remove(path)
        except OSError as exc:
            raise LocalFilesystemError(f"cannot delete {path}: {exc.strerror}") from exc


def _repos(root: Path) -> Iterator[Path]:
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.is_symlink() and RepoId.from_folder(entry.name):
            yield entry


def _plan_repo(repo: CachedRepo, keep: set[Revision], keep_refs: bool) -> _RepoPlan:
    wanted = {commit for r, commit in keep if r == repo.repo}
    if keep_refs:
        wanted |= set(repo.refs.values())
    doomed = [c for c in sorted(repo.revisions) if c not in wanted]
    doomed_refs = sorted(n for n, c in repo.refs.items() if c not in wanted)
    removed = [_removal(repo, commit) for commit in doomed]
    kept = len(repo.revisions) - len(doomed)
    if not kept and len(doomed_refs) == len(repo.refs):
        return _RepoPlan(0, removed, [repo.path] if removed or doomed_refs else [])
    paths = [repo.path / "refs" / name for name in doomed_refs]
    paths += [p for commit in doomed for p in _revision_paths(repo.path, commit)]
    paths += _unused_blobs(repo, set(repo.revisions) - set(doomed))
    return _RepoPlan(kept, removed, paths)


def _removal(repo: CachedRepo, commit: str) -> PrunedRevision:
    revision = repo.revisions[commit]
    refs = tuple(sorted(n for n, c in repo.refs.items() if c == commit))
    size = sum(f.size for f in revision.files)
    return PrunedRevision(repo.repo, commit, refs, len(revision.files), size)


def _revision_paths(repo_dir: Path, commit: str) -> list[Path]:
    candidates = [
        repo_dir / "snapshots" / commit,
        repo_dir / ".no_exist" / commit,
        repo_dir / "trees" / f"{commit}.json",
    ]
    return [path for path in candidates if os.path.lexists(path)]


def _unused_blobs(repo: CachedRepo, kept: set[str]) -> list[Path]:
    used = {f.blob for c in kept for f in repo.revisions[c].files if f.blob}
    blobs = repo.path / "blobs"
    if not blobs.is_dir():
        return []
    return [
        entry
        for entry in sorted(blobs.iterdir())
        if is_blob_name(entry.name) and entry.name not in used
    ]


def _file_bytes(path: Path) -> int:
    """Bytes of the regular files at or below a path; links are not followed."""
    info = path.lstat()
    if stat.S_ISREG(info.st_mode):
        return info.st_size
    if not stat.S_ISDIR(info.st_mode):
        return 0
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            entry = os.lstat(os.path.join(folder, name))
            total += entry.st_size if stat.S_ISREG(entry.st_mode) else 0
    return total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
        return
    path.unlink(missing_ok=True)
    refs = _refs_folder(path)
    if refs is not None:
        _remove_empty_folders(path.parent, refs)


def _refs_folder(path: Path) -> Path | None:
    """The ``refs/`` folder of the repo when ``path`` is a ref."""
    for folder in path.parents:
        if folder.name == "refs" and RepoId.from_folder(folder.parent.name):
            return folder
    return None


def _remove_empty_folders(folder: Path, stop: Path) -> None:
    # Nested refs (refs/refs/pr/1) would leave folders behind.
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
