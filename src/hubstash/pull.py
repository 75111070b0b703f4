"""Pull: restore repos from a store into the local cache, exactly and verified.

Order of work: choose revisions and read their manifests; plan which blobs are
missing; check disk space; download each missing blob to a partial-download file,
hash it while it streams, and rename it into place only when its SHA-256, size and
name all match; then, for each revision whose blobs all arrived, write snapshot
links, ``.no_exist`` markers, the tree listing, and last the refs. A revision with a
failed blob gets no links and no refs: the client never sees it half restored.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from hubstash import cachewrite, layout
from hubstash.cache_location import resolve_cache_dir
from hubstash.errors import (
    ExitCode,
    HubstashError,
    IntegrityError,
    LocalFilesystemError,
    StoreUnreachable,
)
from hubstash.findings import Finding, Severity, exit_code_for
from hubstash.hashing import is_sha256_name, name_matches
from hubstash.lockfile import Lock
from hubstash.manifest import FileEntry, Manifest
from hubstash.patterns import EVERYTHING, FileFilter
from hubstash.progress import SILENT, Progress
from hubstash.repos import RepoId, RepoSpec, parse_repo_spec
from hubstash.stores import Store
from hubstash.storeview import StoreView
from hubstash.transfer import DEFAULT_JOBS, VerifyingSink, run_all

logger = logging.getLogger(__name__)

# Room kept free beyond what the downloads need, for the filesystem's own use.
DISK_MARGIN = 64 * 1024 * 1024
ATTEMPTS = 3
_TRUTHY = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class PullResult:
    """What a pull did (or, with ``dry_run``, would do).

    Attributes:
        cache_dir: the cache folder written.
        store: the store's URL.
        repos: repos restored.
        revisions: revisions restored.
        files: snapshot files the restored revisions hold.
        downloaded_files: blobs downloaded.
        downloaded_bytes: bytes downloaded.
        present_files: files already in the cache, not downloaded.
        present_bytes: their bytes.
        refs_written: refs created or moved.
        copy_mode: snapshots hold copies instead of links.
        findings: problems; revisions they name were not restored.
        dry_run: nothing was written.
        seconds: wall time.
    """

    cache_dir: Path
    store: str
    repos: int
    revisions: int
    files: int
    downloaded_files: int
    downloaded_bytes: int
    present_files: int
    present_bytes: int
    refs_written: int
    copy_mode: bool
    findings: tuple[Finding, ...]
    dry_run: bool
    seconds: float

    @property
    def exit_code(self) -> ExitCode:
        return exit_code_for(self.findings)


@dataclass(frozen=True)
class _Wanted:
    """A revision to restore and the refs to point at it."""

    repo: RepoId
    commit: str
    refs: tuple[str, ...]


@dataclass(frozen=True)
class _Target:
    """A place in the cache one content must be written to."""

    repo_dir: Path
    blob: str
    dest: Path
    mtime_ns: int | None


@dataclass
class _Fetch:
    """One distinct content to download, and every place it goes."""

    sha256: str
    size: int
    targets: list[_Target] = field(default_factory=list)


def pull(
    store: Store,
    cache_dir: str | Path | None = None,
    repos: Sequence[str | RepoSpec] = (),
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    copy: bool | None = None,
    dry_run: bool = False,
    selections: Mapping[RepoId, FileFilter] | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
) -> PullResult:
    """Restore repos from a store into the local Hub cache.

    Every downloaded byte is hashed; a blob is renamed into the cache only when its
    SHA-256 and size match the manifest and its content matches its blob name. A
    revision is linked, and its refs written, only when all its blobs are in place,
    so a failure leaves the revisions the cache already had untouched. Blobs the
    cache already has (same name and size) are not downloaded again.

    Args:
        store: where to restore from.
        cache_dir: the Hub cache (or an ``HF_HOME``); found as huggingface_hub
            finds it when None.
        repos: ``[type/]org/name[@revision]``; everything in the store when empty.
        include: only files matching one of these patterns (allow_patterns rules).
        exclude: no files matching these patterns.
        copy: write real files in ``snapshots/`` and leave ``blobs/`` empty, the
            client's layout where links are unavailable. None: copies when
            ``HF_HUB_DISABLE_SYMLINKS`` is set or the folder cannot hold links.
        dry_run: plan and report, write nothing.
        selections: further include/exclude patterns for some repos.
        jobs: concurrent downloads.
        progress: receives progress.

    Raises:
        NotFound: the store, a named repo or a named revision is missing.
        LocalFilesystemError: not enough disk space (nothing was written).
        HubstashError: the store cannot be read (subclasses say why).
    """
    started = time.monotonic()
    root = resolve_cache_dir(cache_dir).path
    view = StoreView(store, jobs)
    view.require_format()

    wanted = _wanted(view, [_spec(r) for r in repos])
    selection = FileFilter.of(include, exclude)
    extra = selections or {}
    manifests = [
        _filtered(_filtered(m, selection), extra.get(m.repo, EVERYTHING))
        for m in view.manifests((w.repo, w.commit) for w in wanted)
    ]
    options = _Options(copy, dry_run, jobs, progress)
    return _restore(store, root, wanted, manifests, options, started)


def pull_locked(
    store: Store,
    lock: Lock,
    cache_dir: str | Path | None = None,
    *,
    copy: bool | None = None,
    dry_run: bool = False,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
) -> PullResult:
    """Restore exactly the files a lock names, each checked against the lock's hash.

    Needs no listing and no manifest: blobs are fetched by the SHA-256 the lock
    pins, and a blob whose bytes do not match is refused. When the cache already
    holds everything, the store is not contacted at all (not even opened).

    Raises:
        NoCredentials: the store is needed and no credentials were found; nothing
            was written.
        LocalFilesystemError: not enough disk space (nothing was written).
    """
    started = time.monotonic()
    root = resolve_cache_dir(cache_dir).path
    wanted = [
        _Wanted(r.repo, r.commit, () if r.revision == r.commit else (r.revision,))
        for r in lock.repos
    ]
    manifests = [r.manifest() for r in lock.repos]
    options = _Options(copy, dry_run, jobs, progress)
    return _restore(store, root, wanted, manifests, options, started)


@dataclass(frozen=True)
class _Options:
    copy: bool | None
    dry_run: bool
    jobs: int
    progress: Progress


def _restore(
    store: Store,
    root: Path,
    wanted: list[_Wanted],
    manifests: list[Manifest],
    options: _Options,
    started: float,
) -> PullResult:
    """Bring the cache to hold these revisions; the common half of both pulls."""
    copy_mode = _copy_mode(options.copy, root, options.dry_run, manifests)
    fetches, present = _plan(root, manifests, copy_mode)
    _check_space(root, fetches)
    if fetches or _missing_listings(root, manifests):
        store.require_credentials()

    findings: list[Finding] = []
    refs_written = sum(len(_stale_refs(root, w)) for w in wanted)
    if not options.dry_run:
        failed = _fetch_all(
            store, root, fetches, options.jobs, options.progress, findings
        )
        refs_written = _finish(
            store, root, wanted, manifests, failed, copy_mode, findings
        )

    return PullResult(
        cache_dir=root,
        store=store.url,
        repos=len({m.repo for m in manifests}),
        revisions=len(manifests),
        files=sum(len(m.files) for m in manifests),
        downloaded_files=len(fetches),
        downloaded_bytes=sum(f.size for f in fetches),
        present_files=len(present),
        present_bytes=sum(e.size for e in present),
        refs_written=refs_written,
        copy_mode=copy_mode,
        findings=tuple(findings),
        dry_run=options.dry_run,
        seconds=time.monotonic() - started,
    )


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


def _spec(repo: str | RepoSpec) -> RepoSpec:
    return repo if isinstance(repo, RepoSpec) else parse_repo_spec(repo)


def _wanted(view: StoreView, specs: list[RepoSpec]) -> list[_Wanted]:
    if not specs:
        specs = [RepoSpec(repo) for repo in sorted(view.index())]
    wanted: dict[tuple[RepoId, str], set[str]] = {}
    for spec in specs:
        if spec.revision is not None:
            commit = view.resolve(spec)
            refs = {spec.revision} if commit != spec.revision else set()
            wanted.setdefault((spec.repo, commit), set()).update(refs)
            continue
        refs_by_commit = _refs_by_commit(view, spec.repo)
        for commit in sorted(view.repo(spec.repo).pieces):
            wanted.setdefault((spec.repo, commit), set()).update(
                refs_by_commit.get(commit, ())
            )
    return [
        _Wanted(repo, commit, tuple(sorted(refs)))
        for (repo, commit), refs in wanted.items()
    ]


def _refs_by_commit(view: StoreView, repo: RepoId) -> dict[str, list[str]]:
    by_commit: dict[str, list[str]] = {}
    for name, commit in view.refs(repo).items():
        by_commit.setdefault(commit, []).append(name)
    return by_commit


def _filtered(manifest: Manifest, selection: FileFilter) -> Manifest:
    if selection.is_everything:
        return manifest
    return replace(
        manifest,
        files=tuple(f for f in manifest.files if selection.accepts(f.path)),
        no_exist=tuple(p for p in manifest.no_exist if selection.accepts(p)),
    )


def _copy_mode(
    copy: bool | None, root: Path, dry_run: bool, manifests: list[Manifest]
) -> bool:
    """Whether to write copies: as asked, else as the environment or folder needs.

    Probing for links creates the cache folder, so the disk room for the linked
    layout is checked first: a pull that cannot fit leaves no trace.
    """
    if copy is not None:
        return copy
    if os.environ.get("HF_HUB_DISABLE_SYMLINKS", "").lower() in _TRUTHY:
        return True
    if dry_run:
        return False
    _check_space(root, _plan(root, manifests, copy_mode=False)[0])
    if cachewrite.symlinks_work(root):
        return False
    logger.warning(
        "%s cannot hold symlinks: writing copies into snapshots/ (pass --copy to"
        " choose this explicitly)",
        root,
    )
    return True


def _plan(
    root: Path, manifests: list[Manifest], copy_mode: bool
) -> tuple[list[_Fetch], list[FileEntry]]:
    """What to download, grouped by content, and what the cache already has."""
    fetches: dict[str, _Fetch] = {}
    present: list[FileEntry] = []
    seen: set[Path] = set()
    for manifest in manifests:
        repo_dir = root / manifest.repo.folder
        snapshot = repo_dir / "snapshots" / manifest.commit
        for entry in manifest.files:
            target = _target(repo_dir, snapshot, entry, copy_mode)
            if target.dest in seen:
                continue
            seen.add(target.dest)
            if _has(target.dest, entry.size) or _has(snapshot / entry.path, entry.size):
                present.append(entry)
                continue
            fetch = fetches.setdefault(entry.sha256, _Fetch(entry.sha256, entry.size))
            fetch.targets.append(target)
    return list(fetches.values()), present


def _target(
    repo_dir: Path, snapshot: Path, entry: FileEntry, copy_mode: bool
) -> _Target:
    if copy_mode:
        dest = cachewrite.inside(repo_dir.parent, snapshot, entry.path)
    else:
        dest = cachewrite.inside(repo_dir.parent, repo_dir / "blobs", entry.blob)
    return _Target(repo_dir, entry.blob, dest, entry.mtime_ns)


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


def _fetch_all(
    store: Store,
    root: Path,
    fetches: list[_Fetch],
    jobs: int,
    progress: Progress,
    findings: list[Finding],
) -> set[str]:
    """Download every fetch; return the SHA-256s that failed."""
    progress.start("downloading", len(fetches), sum(f.size for f in fetches))

    def work(fetch: _Fetch) -> None:
        _fetch(store, root, fetch, progress)
        progress.file_done()

    failed: set[str] = set()
    for fetch, result in run_all(fetches, work, jobs):
        if isinstance(result, HubstashError):
            failed.add(fetch.sha256)
            findings.append(_fetch_failed(fetch, result))
    progress.finish()
    return failed


def _fetch(store: Store, root: Path, fetch: _Fetch, progress: Progress) -> None:
    first, *others = fetch.targets
    _download(store, root, fetch, first, progress)
    for target in others:
        _copy_local(root, first.dest, target)


def _download(
    store: Store, root: Path, fetch: _Fetch, target: _Target, progress: Progress
) -> None:
    with cachewrite.blob_lock(root, target.repo_dir, target.blob):
        if _has(target.dest, fetch.size):
            return  # another process restored it while we waited for the lock
        for attempt in range(1, ATTEMPTS + 1):
            try:
                _download_once(store, fetch, target, progress)
                return
            except IntegrityError:
                raise
            except HubstashError as exc:
                if attempt == ATTEMPTS or not _transient(exc):
                    raise
                logger.warning("retrying %s after: %s", fetch.sha256[:12], exc)


def _download_once(
    store: Store, fetch: _Fetch, target: _Target, progress: Progress
) -> None:
    temp = cachewrite.temp_blob(target.repo_dir, target.blob)
    try:
        with open(temp, "w+b") as f:
            sink = VerifyingSink(
                f, fetch.size, git_sha1=not is_sha256_name(target.blob)
            )
            store.download(
                layout.blob_key(fetch.sha256), sink, fetch.size, progress.advance
            )
            _check(fetch, target.blob, sink)
        cachewrite.place(temp, target.dest, target.mtime_ns)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise LocalFilesystemError(f"cannot write {temp}: {exc.strerror}") from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _check(fetch: _Fetch, blob: str, sink: VerifyingSink) -> None:
    digests = sink.digests()
    if digests.size != fetch.size or digests.sha256 != fetch.sha256:
        raise IntegrityError(
            f"store blob {fetch.sha256[:12]} is damaged: {digests.size} bytes hashing"
            f" to {digests.sha256[:12]}, expected {fetch.size} bytes",
            path=layout.blob_key(fetch.sha256),
            expected=fetch.sha256,
            actual=digests.sha256,
            hint="push it again from a machine that has the right bytes",
        )
    if not name_matches(blob, digests):
        raise IntegrityError(
            f"store content {fetch.sha256[:12]} does not match blob name {blob}",
            path=layout.blob_key(fetch.sha256),
            expected=blob,
            actual=digests.git_sha1 or digests.sha256,
        )


def _copy_local(root: Path, source: Path, target: _Target) -> None:
    """Give another repo or path the same verified content without downloading it."""
    with cachewrite.blob_lock(root, target.repo_dir, target.blob):
        temp = cachewrite.temp_blob(target.repo_dir, target.blob)
        try:
            shutil.copyfile(source, temp)
            cachewrite.place(temp, target.dest, target.mtime_ns)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise LocalFilesystemError(
                f"cannot write {target.dest}: {exc.strerror}"
            ) from exc


def _transient(exc: HubstashError) -> bool:
    return isinstance(exc, StoreUnreachable)


def _fetch_failed(fetch: _Fetch, error: HubstashError) -> Finding:
    target = fetch.targets[0]
    severity = (
        Severity.INTEGRITY if isinstance(error, IntegrityError) else Severity.FAILURE
    )
    return Finding(
        "download-failed",
        target.repo_dir.name,
        str(target.dest),
        f"{error}; the revisions using it were not restored",
        severity,
        expected=getattr(error, "expected", ""),
        actual=getattr(error, "actual", ""),
    )


def _finish(
    store: Store,
    root: Path,
    wanted: list[_Wanted],
    manifests: list[Manifest],
    failed: set[str],
    copy_mode: bool,
    findings: list[Finding],
) -> int:
    """Link every complete revision and write its refs; return refs written."""
    refs_written = 0
    for want, manifest in zip(wanted, manifests, strict=True):
        if any(f.sha256 in failed for f in manifest.files):
            findings.append(_not_restored(manifest, "some of its blobs failed"))
            continue
        repo_dir = root / manifest.repo.folder
        try:
            _materialize(store, repo_dir, manifest, copy_mode)
        except HubstashError as exc:
            findings.append(_not_restored(manifest, str(exc), exc.exit_code))
            continue
        refs_written += _write_refs(repo_dir, want)
    return refs_written


def _materialize(
    store: Store, repo_dir: Path, manifest: Manifest, copy_mode: bool
) -> None:
    snapshot = repo_dir / "snapshots" / manifest.commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo_dir / "blobs").mkdir(exist_ok=True)
    if not copy_mode:
        for entry in manifest.files:
            _link(repo_dir, snapshot, entry)
    for path in manifest.no_exist:
        cachewrite.touch_empty(
            cachewrite.inside(
                repo_dir.parent, repo_dir / ".no_exist" / manifest.commit, path
            )
        )
    if manifest.tree is not None:
        _write_tree(store, repo_dir, manifest)


def _link(repo_dir: Path, snapshot: Path, entry: FileEntry) -> None:
    link = cachewrite.inside(repo_dir.parent, snapshot, entry.path)
    if not link.is_symlink() and _has(link, entry.size):
        return  # a plain copy from the no-symlink layout serves the client as well
    blob = repo_dir / "blobs" / entry.blob
    cachewrite.write_link(link, cachewrite.relative_link(link, blob))


def _write_tree(store: Store, repo_dir: Path, manifest: Manifest) -> None:
    assert manifest.tree is not None
    if _has_listing(repo_dir, manifest):
        return
    data = store.read(layout.blob_key(manifest.tree.sha256))
    if hashlib.sha256(data).hexdigest() != manifest.tree.sha256:
        raise IntegrityError(
            f"the tree listing of {manifest.repo}@{manifest.commit[:12]} is damaged"
            " in the store",
            path=layout.blob_key(manifest.tree.sha256),
            expected=manifest.tree.sha256,
        )
    # The client creates tree listings with mkstemp, hence 0600.
    tree = cachewrite.inside(
        repo_dir.parent, repo_dir / "trees", f"{manifest.commit}.json"
    )
    cachewrite.write_small(tree, data, 0o600)


def _write_refs(repo_dir: Path, want: _Wanted) -> int:
    stale = _stale_refs(repo_dir.parent, want)
    for name in stale:
        path = cachewrite.inside(repo_dir.parent, repo_dir / "refs", name)
        cachewrite.write_small(
            path, want.commit.encode("ascii"), cachewrite.file_mode()
        )
    return len(stale)


def _stale_refs(root: Path, want: _Wanted) -> list[str]:
    """The refs of ``want`` that the cache lacks or points elsewhere."""
    refs = root / want.repo.folder / "refs"
    expected = want.commit.encode("ascii")
    return [name for name in want.refs if not _holds(refs / name, expected)]


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


def _not_restored(
    manifest: Manifest, why: str, code: ExitCode = ExitCode.INCOMPLETE
) -> Finding:
    severity = Severity.INTEGRITY if code == ExitCode.INTEGRITY else Severity.INCOMPLETE
    return Finding(
        "revision-not-restored",
        str(manifest.repo),
        manifest.commit,
        f"revision {manifest.commit[:12]} was not restored: {why}",
        severity,
    )
