"""Bringing the local cache to hold some revisions: the common half of every pull.

Order of work: plan which blobs are missing; check disk room; download each missing
blob to a partial-download file, hash it while it streams, and rename it into
``blobs/`` only when its SHA-256, size and name all match; then, for each revision
whose blobs all arrived, write snapshot links (or copies), ``.no_exist`` markers,
the tree listing, and last the refs. A revision with a failed blob gets nothing the
client reads: no snapshot entry, no ref. Blobs always land in ``blobs/`` first, also
for the no-symlink layout, whose copies are made only for complete revisions.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hubstash import cachewrite, crashpoints, layout
from hubstash.errors import (
    ExitCode,
    HubstashError,
    IntegrityError,
    Interrupted,
    LocalFilesystemError,
    StoreUnreachable,
)
from hubstash.findings import Finding, Severity, severity_of
from hubstash.hashing import is_sha256_name, name_matches
from hubstash.manifest import FileEntry, Manifest
from hubstash.progress import SILENT, Progress
from hubstash.repos import RepoId
from hubstash.stores import Store
from hubstash.transfer import DEFAULT_JOBS, VerifyingSink, cancellable, run_all

logger = logging.getLogger(__name__)

# Room kept free beyond what the downloads need, for the filesystem's own use.
DISK_MARGIN = 64 * 1024 * 1024
ATTEMPTS = 3
_TRUTHY = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class Revision:
    """A revision to restore, and the refs to point at it."""

    manifest: Manifest
    refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What a restore did: counts of what really happened, not of the plan."""

    copy_mode: bool
    repos: int
    revisions: int
    files: int
    downloaded_files: int
    downloaded_bytes: int
    present_files: int
    present_bytes: int
    refs_written: int
    findings: tuple[Finding, ...]
    retries: int = 0


@dataclass(frozen=True)
class _Target:
    """A blob one content must become: ``<repo>/blobs/<name>``."""

    repo_dir: Path
    blob: str
    mtime_ns: int | None

    @property
    def dest(self) -> Path:
        return self.repo_dir / "blobs" / self.blob


@dataclass
class _Fetch:
    """One distinct content to download, and every blob it becomes."""

    sha256: str
    size: int
    targets: list[_Target] = field(default_factory=list)
    retries: int = 0


@dataclass
class _Plan:
    fetches: list[_Fetch]
    present: list[FileEntry]


def restore(
    store: Store,
    root: Path,
    revisions: list[Revision],
    *,
    copy: bool | None = None,
    dry_run: bool = False,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
) -> Outcome:
    """Make the cache at ``root`` hold these revisions (see the module's docstring).

    The store is asked for nothing when the cache already holds everything.

    Raises:
        NoCredentials: the store is needed and has no credentials; nothing written.
        LocalFilesystemError: not enough disk room; nothing written.
    """
    manifests = [r.manifest for r in revisions]
    # Everything that can refuse the restore comes before anything is written:
    # probing the folder for links creates it.
    plan = _plan(root, manifests, copy_mode=bool(copy))
    _check_space(root, plan.fetches)
    if plan.fetches or _missing_listings(root, manifests):
        store.require_credentials()
    # With nothing to restore, not even the probe may create the folder.
    copy_mode = _copy_mode(copy, root, dry_run or not revisions)
    if copy_mode != bool(copy):
        plan = _plan(root, manifests, copy_mode)
    if dry_run:
        return _planned(root, revisions, plan, copy_mode)

    findings: list[Finding] = []
    done = _fetch_all(store, root, plan.fetches, jobs, progress, findings)
    failed = _failed_blobs(plan.fetches, done)
    restored, refs = _finish(store, root, revisions, failed, copy_mode, findings)
    if copy_mode:
        _drop_staged_blobs(plan.fetches, done, failed, manifests)
    return Outcome(
        copy_mode=copy_mode,
        repos=len({r.manifest.repo for r in restored}),
        revisions=len(restored),
        files=sum(len(r.manifest.files) for r in restored),
        downloaded_files=sum(len(t) for t in done.values()),
        downloaded_bytes=sum(f.size for f in plan.fetches if done.get(f.sha256)),
        present_files=len(plan.present),
        present_bytes=sum(e.size for e in plan.present),
        refs_written=refs,
        findings=tuple(findings),
        retries=sum(f.retries for f in plan.fetches),
    )


def _planned(root: Path, revisions: list[Revision], plan: _Plan, copy: bool) -> Outcome:
    return Outcome(
        copy_mode=copy,
        repos=len({r.manifest.repo for r in revisions}),
        revisions=len(revisions),
        files=sum(len(r.manifest.files) for r in revisions),
        downloaded_files=sum(len(f.targets) for f in plan.fetches),
        downloaded_bytes=sum(f.size for f in plan.fetches),
        present_files=len(plan.present),
        present_bytes=sum(e.size for e in plan.present),
        refs_written=sum(len(_stale_refs(root, r)) for r in revisions),
        findings=(),
    )


def _copy_mode(copy: bool | None, root: Path, dry_run: bool) -> bool:
    """Whether to write copies: as asked, else as the environment or folder needs."""
    if copy is not None:
        return copy
    if os.environ.get("HF_HUB_DISABLE_SYMLINKS", "").lower() in _TRUTHY:
        return True
    if dry_run or cachewrite.symlinks_work(root):
        return False
    logger.warning(
        "%s cannot hold symlinks: writing copies into snapshots/ (pass --copy to"
        " choose this explicitly)",
        root,
    )
    return True


def _plan(root: Path, manifests: list[Manifest], copy_mode: bool) -> _Plan:
    """What to download, grouped by content, and which blobs the cache has."""
    fetches: dict[str, _Fetch] = {}
    present: list[FileEntry] = []
    seen: set[Path] = set()
    for manifest in manifests:
        repo_dir = root / manifest.repo.folder
        snapshot = repo_dir / "snapshots" / manifest.commit
        for entry in manifest.files:
            target = _target(repo_dir, snapshot, entry)
            if target.dest in seen:
                continue
            seen.add(target.dest)
            if _serves(target, snapshot / entry.path, entry.size, copy_mode):
                present.append(entry)
                continue
            fetch = fetches.setdefault(entry.sha256, _Fetch(entry.sha256, entry.size))
            fetch.targets.append(target)
    return _Plan(list(fetches.values()), present)


def _target(repo_dir: Path, snapshot: Path, entry: FileEntry) -> _Target:
    cachewrite.inside(repo_dir.parent, snapshot, entry.path)
    cachewrite.inside(repo_dir.parent, repo_dir / "blobs", entry.blob)
    return _Target(repo_dir, entry.blob, entry.mtime_ns)


def _serves(target: _Target, in_snapshot: Path, size: int, copy_mode: bool) -> bool:
    """Whether the cache already has this content where the layout needs it.

    The blob serves both layouts. A snapshot entry serves in place of the blob only
    as a plain file (the no-symlink layout), or in copy mode: a link there may name
    another blob, which would leave the link this pull writes dangling.
    """
    if _has(target.dest, size):
        return True
    if copy_mode or not in_snapshot.is_symlink():
        return _has(in_snapshot, size)
    return False


def _has(path: Path, size: int) -> bool:
    try:
        return path.is_file() and path.stat().st_size == size
    except OSError:
        return False


def _check_space(root: Path, fetches: list[_Fetch]) -> None:
    """Refuse to start when the downloads cannot fit on the cache's disk."""
    needed = sum(f.size * len(f.targets) for f in fetches)
    if not needed:
        return
    existing = root
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if needed + DISK_MARGIN > free:
        raise LocalFilesystemError(
            f"not enough disk space in {existing}: the pull needs {_mib(needed)}"
            f" and {_mib(free)} is free",
            hint=f"free at least {_mib(needed + DISK_MARGIN - free)} more, or pull"
            " fewer repos",
        )


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def _missing_listings(root: Path, manifests: list[Manifest]) -> bool:
    return any(
        m.tree is not None and not _has_listing(root / m.repo.folder, m)
        for m in manifests
    )


def _has_listing(repo_dir: Path, manifest: Manifest) -> bool:
    assert manifest.tree is not None
    path = repo_dir / "trees" / f"{manifest.commit}.json"
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return hashlib.sha256(data).hexdigest() == manifest.tree.sha256


def _fetch_all(
    store: Store,
    root: Path,
    fetches: list[_Fetch],
    jobs: int,
    progress: Progress,
    findings: list[Finding],
) -> dict[str, list[_Target]]:
    """Download every fetch; return, per SHA-256 that arrived, the blobs written."""
    progress.start("downloading", len(fetches), sum(f.size for f in fetches))
    cancel = threading.Event()
    advance = cancellable(progress.advance, cancel)

    def work(fetch: _Fetch) -> list[_Target]:
        written = _fetch(store, root, fetch, advance)
        progress.file_done()
        return written

    done: dict[str, list[_Target]] = {}
    for fetch, result in run_all(fetches, work, jobs, cancel=cancel):
        if isinstance(result, HubstashError):
            findings.append(_fetch_failed(fetch, result))
        else:
            done[fetch.sha256] = result
    progress.finish()
    return done


def _fetch(
    store: Store, root: Path, fetch: _Fetch, advance: Callable[[int], None]
) -> list[_Target]:
    """Download one content to its first blob, copy it to the others."""
    first, *others = fetch.targets
    written = [first] if _download(store, root, fetch, first, advance) else []
    for target in others:
        _copy_local(root, first.dest, target)
        written.append(target)
    return written


def _download(
    store: Store,
    root: Path,
    fetch: _Fetch,
    target: _Target,
    advance: Callable[[int], None],
) -> bool:
    """Download one blob; False when another process placed it meanwhile."""
    with cachewrite.blob_lock(root, target.repo_dir, target.blob):
        if _has(target.dest, fetch.size):
            return False
        for attempt in range(1, ATTEMPTS + 1):
            try:
                _download_once(store, fetch, target, advance)
                return True
            except Interrupted:
                raise
            except HubstashError as exc:
                # Bytes damaged on the way are refused by the hash; asking again
                # gets good ones, while an object damaged in the store fails each time.
                retryable = isinstance(exc, IntegrityError) or (
                    isinstance(exc, StoreUnreachable) and not store.retries_itself
                )
                if attempt == ATTEMPTS or not retryable:
                    raise
                logger.warning("retrying %s after: %s", fetch.sha256[:12], exc)
                fetch.retries += 1
    raise AssertionError("unreachable")


def _download_once(
    store: Store, fetch: _Fetch, target: _Target, advance: Callable[[int], None]
) -> None:
    temp = cachewrite.temp_blob(target.repo_dir, target.blob)
    try:
        with open(temp, "w+b") as f:
            sink = VerifyingSink(
                f, fetch.size, git_sha1=not is_sha256_name(target.blob)
            )
            store.download(layout.blob_key(fetch.sha256), sink, fetch.size, advance)
            _check(fetch, target.blob, sink)
        cachewrite.place(temp, target.dest, target.mtime_ns)
        crashpoints.reached("pull-blob-placed")
    except HubstashError:
        # Store errors derive from OSError's kin too; they are not local trouble.
        temp.unlink(missing_ok=True)
        raise
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise cachewrite.write_error(exc, target.dest, fetch.size) from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _check(fetch: _Fetch, blob: str, sink: VerifyingSink) -> None:
    digests = sink.digests()
    key = layout.blob_key(fetch.sha256)
    if digests.size != fetch.size or digests.sha256 != fetch.sha256:
        raise IntegrityError(
            f"store object {key} is damaged: {digests.size} bytes hashing to"
            f" {digests.sha256[:12]}, expected {fetch.size} bytes",
            path=key,
            expected=fetch.sha256,
            actual=digests.sha256,
            hint="find every damaged object with hubstash verify --store URL --deep,"
            " then run hubstash push --repair from a machine that has the right"
            " bytes",
        )
    if not name_matches(blob, digests):
        raise IntegrityError(
            f"store content {fetch.sha256[:12]} does not match blob name {blob}",
            path=key,
            expected=blob,
            actual=digests.git_sha1 or digests.sha256,
        )


def _copy_local(root: Path, source: Path, target: _Target) -> None:
    """Give another repo the same verified content without downloading it again."""
    with cachewrite.blob_lock(root, target.repo_dir, target.blob):
        temp = cachewrite.temp_blob(target.repo_dir, target.blob)
        try:
            shutil.copyfile(source, temp)
            cachewrite.place(temp, target.dest, target.mtime_ns)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise cachewrite.write_error(exc, target.dest) from exc


def _failed_blobs(
    fetches: list[_Fetch], done: dict[str, list[_Target]]
) -> set[tuple[str, str]]:
    """The blobs (repo folder, name) that did not arrive.

    Per blob, not per content: a repo that already holds its copy of a content is
    complete even when another repo's copy of it failed.
    """
    return {
        (target.repo_dir.name, target.blob)
        for fetch in fetches
        if fetch.sha256 not in done
        for target in fetch.targets
    }


def _fetch_failed(fetch: _Fetch, error: HubstashError) -> Finding:
    target = fetch.targets[0]
    severity = severity_of(error.exit_code)
    return Finding(
        "download-failed",
        str(_repo_name(target.repo_dir)),
        f"blobs/{target.blob}",
        f"{error}; the revisions using it were not restored",
        severity,
        expected=getattr(error, "expected", ""),
        actual=getattr(error, "actual", ""),
    )


def _repo_name(repo_dir: Path) -> str:
    repo = RepoId.from_folder(repo_dir.name)
    return str(repo) if repo else repo_dir.name


def _finish(
    store: Store,
    root: Path,
    revisions: list[Revision],
    failed: set[tuple[str, str]],
    copy_mode: bool,
    findings: list[Finding],
) -> tuple[list[Revision], int]:
    """Make every complete revision visible; return those and the refs written."""
    restored: list[Revision] = []
    refs_written = 0
    for revision in revisions:
        manifest = revision.manifest
        if any((manifest.repo.folder, f.blob) in failed for f in manifest.files):
            # The failed blob's own finding carries the cause and the exit code.
            findings.append(
                _not_restored(manifest, "some of its blobs failed", ExitCode.OK)
            )
            continue
        repo_dir = root / manifest.repo.folder
        try:
            _materialize(store, repo_dir, manifest, copy_mode)
            crashpoints.reached("pull-links-written")
            refs_written += _write_refs(root, revision)
        except (HubstashError, OSError) as exc:
            error = _as_hubstash_error(exc, repo_dir)
            findings.append(_not_restored(manifest, str(error), error.exit_code))
            continue
        restored.append(revision)
    return restored, refs_written


def _as_hubstash_error(exc: HubstashError | OSError, repo_dir: Path) -> HubstashError:
    if isinstance(exc, HubstashError):
        return exc
    return cachewrite.write_error(exc, Path(exc.filename or repo_dir))


def _materialize(
    store: Store, repo_dir: Path, manifest: Manifest, copy_mode: bool
) -> None:
    snapshot = repo_dir / "snapshots" / manifest.commit
    for folder in (snapshot, repo_dir / "refs", repo_dir / "trees"):
        cachewrite.remove_stale_temps(folder)
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    if manifest.files:
        snapshot.mkdir(parents=True, exist_ok=True)
    place = _copy_into_snapshot if copy_mode else _link
    for entry in manifest.files:
        place(repo_dir, snapshot, entry)
    for path in manifest.no_exist:
        marker = repo_dir / ".no_exist" / manifest.commit
        cachewrite.touch_empty(cachewrite.inside(repo_dir.parent, marker, path))
    if manifest.tree is not None:
        _write_tree(store, repo_dir, manifest)


def _link(repo_dir: Path, snapshot: Path, entry: FileEntry) -> None:
    link = cachewrite.inside(repo_dir.parent, snapshot, entry.path)
    if not link.is_symlink() and _has(link, entry.size):
        return  # a plain copy from the no-symlink layout serves the client as well
    blob = repo_dir / "blobs" / entry.blob
    cachewrite.write_link(link, cachewrite.relative_link(link, blob))


def _copy_into_snapshot(repo_dir: Path, snapshot: Path, entry: FileEntry) -> None:
    path = cachewrite.inside(repo_dir.parent, snapshot, entry.path)
    if _has(path, entry.size):
        return
    blob = repo_dir / "blobs" / entry.blob
    temp = cachewrite.temp_blob(repo_dir, entry.blob)
    try:
        shutil.copy2(blob, temp)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise LocalFilesystemError(f"cannot write {path}: {exc.strerror}") from exc


def _drop_staged_blobs(
    fetches: list[_Fetch],
    done: dict[str, list[_Target]],
    failed: set[tuple[str, str]],
    manifests: list[Manifest],
) -> None:
    """In copy mode ``blobs/`` stays empty: remove the blobs this pull staged there.

    Blobs of revisions that could not be restored stay, so a rerun need not
    download them again; the client never reads them.
    """
    still_needed = {
        (m.repo.folder, f.blob)
        for m in manifests
        if any((m.repo.folder, e.blob) in failed for e in m.files)
        for f in m.files
    }
    for targets in done.values():
        for target in targets:
            if (target.repo_dir.name, target.blob) not in still_needed:
                target.dest.unlink(missing_ok=True)


def _write_tree(store: Store, repo_dir: Path, manifest: Manifest) -> None:
    assert manifest.tree is not None
    if _has_listing(repo_dir, manifest):
        return
    key = layout.blob_key(manifest.tree.sha256)
    data = store.read(key)
    if hashlib.sha256(data).hexdigest() != manifest.tree.sha256:
        raise IntegrityError(
            f"the tree listing of {manifest.repo}@{manifest.commit[:12]} is damaged"
            f" in the store ({key})",
            path=key,
            expected=manifest.tree.sha256,
        )
    # The client creates tree listings with mkstemp, hence 0600.
    tree = cachewrite.inside(
        repo_dir.parent, repo_dir / "trees", f"{manifest.commit}.json"
    )
    cachewrite.write_small(tree, data, 0o600)


def _write_refs(root: Path, revision: Revision) -> int:
    stale = _stale_refs(root, revision)
    repo_dir = root / revision.manifest.repo.folder
    commit = revision.manifest.commit.encode("ascii")
    for name in stale:
        path = cachewrite.inside(root, repo_dir / "refs", name)
        cachewrite.write_small(path, commit, cachewrite.file_mode())
    return len(stale)


def _stale_refs(root: Path, revision: Revision) -> list[str]:
    """The refs of a revision that the cache lacks or points elsewhere."""
    refs = root / revision.manifest.repo.folder / "refs"
    expected = revision.manifest.commit.encode("ascii")
    return [name for name in revision.refs if not _holds(refs / name, expected)]


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


def _not_restored(
    manifest: Manifest, why: str, code: ExitCode = ExitCode.INCOMPLETE
) -> Finding:
    severity = Severity.NOTICE if code == ExitCode.OK else severity_of(code)
    return Finding(
        "revision-not-restored",
        str(manifest.repo),
        manifest.commit,
        f"revision {manifest.commit[:12]} was not restored: {why}",
        severity,
    )
