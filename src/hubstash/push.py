"""Push: save repos of the local cache into a store.

Order of work, which is also the store's write order: hash and check every file
that will be uploaded, upload blobs, write manifest pieces, then move refs. A reader
of the store therefore never sees a ref whose manifest or blobs are missing. Around
the writes, the push announces the blobs it uses and confirms them afterwards, so a
gc running at the same time cannot delete one from under it (``gcprotocol``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hubstash import crashpoints, layout
from hubstash.cache import CacheScan, scan_cache
from hubstash.cache_location import resolve_cache_dir
from hubstash.cachecontent import read_content
from hubstash.errors import ExitCode, HubstashError, UnsafeStoreContent
from hubstash.findings import Finding, Severity, exit_code_for
from hubstash.gcprotocol import REAL_TIME, Hooks, PushGuard
from hubstash.manifest import Manifest, merge
from hubstash.patterns import FileFilter
from hubstash.progress import SILENT, Progress
from hubstash.repos import RepoId, RepoSpec, parse_repo_spec
from hubstash.storecheck import check_blobs
from hubstash.stores import Store
from hubstash.storeview import StoreView
from hubstash.transfer import DEFAULT_JOBS, cancellable, run_all

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    """What a push did (or, with ``dry_run``, would do).

    Attributes:
        cache_dir: the cache folder that was read.
        store: the store's URL.
        repos: repos pushed.
        revisions: revisions pushed.
        files: snapshot files recorded in manifests.
        uploaded_files: distinct file contents uploaded (each once).
        uploaded_bytes: their bytes.
        present_files: distinct file contents the store already had.
        present_bytes: their bytes.
        manifests_written: manifest pieces written.
        refs_written: refs created or moved.
        findings: problems met; files they name were not pushed.
        dry_run: nothing was written.
        seconds: wall time.
        reuploaded_files: blobs uploaded again because a gc running at the same
            time deleted them.
        repaired_files: with ``repair``, damaged store blobs replaced by the
            cache's verified bytes.
        retries: requests and answers asked for again after a transient failure
            (throttling, a 5xx, a broken-off answer).
    """

    cache_dir: Path
    store: str
    repos: int
    revisions: int
    files: int
    uploaded_files: int
    uploaded_bytes: int
    present_files: int
    present_bytes: int
    manifests_written: int
    refs_written: int
    findings: tuple[Finding, ...]
    dry_run: bool
    seconds: float
    reuploaded_files: int = 0
    repaired_files: int = 0
    retries: int = 0

    @property
    def exit_code(self) -> ExitCode:
        return exit_code_for(self.findings)

    @property
    def changed_nothing(self) -> bool:
        return not (self.uploaded_files or self.manifests_written or self.refs_written)


@dataclass(frozen=True)
class _Upload:
    sha256: str
    source: Path
    size: int


def push(
    store: Store,
    cache_dir: str | Path | None = None,
    repos: Sequence[str | RepoSpec] = (),
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    dry_run: bool = False,
    force_refs: bool = False,
    repair: bool = False,
    selections: Mapping[RepoId, FileFilter] | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
    hooks: Hooks = REAL_TIME,
) -> PushResult:
    """Save repos of the local Hub cache into a store.

    Every blob that is uploaded is first hashed and checked against its name (SHA-256
    for 64-hex names, git blob SHA-1 for 40-hex names); a blob that fails is not
    uploaded, is reported in ``findings`` with expected and actual hash, and its
    files are left out of the manifest, while everything else is still pushed.
    Content the store already holds is not uploaded again. Refs the store already
    has are never moved to another commit unless ``force_refs``. A blob the store
    held but a concurrent gc deleted is uploaded again before the push returns.

    Args:
        store: where to save.
        cache_dir: the Hub cache (or an ``HF_HOME``); found as huggingface_hub
            finds it when None.
        repos: ``[type/]org/name[@revision]``; everything in the cache when empty.
        include: only files matching one of these patterns (allow_patterns rules).
        exclude: no files matching these patterns.
        dry_run: plan and report, write nothing.
        force_refs: move refs the store has to the cache's commits.
        repair: read back and hash the blobs the store lists at the right size,
            which are otherwise trusted, and replace the damaged ones with the
            cache's bytes (every local blob is then hashed too).
        selections: further include/exclude patterns for some repos.
        jobs: concurrent hashes and transfers.
        progress: receives progress.
        hooks: the clock and steps of the push/gc protocol (tests pause here).

    Raises:
        NotFound: the cache, or a named repo or revision, is missing.
        HubstashError: the store cannot be reached or written (subclasses say why).
    """
    started = time.monotonic()
    retried = store.retries
    location = resolve_cache_dir(cache_dir)
    scan = scan_cache(location.path, tuple(_spec(r) for r in repos))
    if not scan.repos:
        logger.warning(
            "%s holds no repos: is it the right cache? (%s)",
            location.path,
            location.reason,
        )
    findings = list(scan.findings)
    view = StoreView(store, jobs)
    has_marker = view.check_format(create=not dry_run)

    stored = view.blob_sizes() if has_marker else {}
    selection = FileFilter.of(include, exclude)
    content = read_content(
        scan,
        selection,
        per_repo=selections,
        trusted={} if repair else stored,
        jobs=jobs,
        progress=progress,
    )
    findings += content.findings
    files = content.file_sizes
    named = {**content.listing_sizes, **files}
    damaged = _damaged(store, named, stored, jobs, progress) if repair else set()
    stored = {sha: size for sha, size in stored.items() if sha not in damaged}
    uploads = _uploads(named, content.sources, stored)
    manifests = list(content.manifests)
    pieces, pushed = _pieces_to_write(view, manifests, has_marker, findings)

    # The listing above is only a hint until confirm() has checked it again.
    guard = PushGuard(store, named, hooks, jobs)
    if not dry_run and (uploads or pieces):
        guard.announce()
    try:
        if not dry_run:
            _upload_all(store, uploads, jobs, progress)
            crashpoints.reached("push-blobs-uploaded")
            _write_pieces(view, pieces)
            crashpoints.reached("push-manifests-written")
        refs = _push_refs(view, scan, pushed, force_refs, dry_run, findings)
        reuploaded = guard.confirm(
            lambda missing: _upload_all(
                store, _uploads(missing, content.sources, {}), jobs, progress
            )
        )
    finally:
        guard.release()
    # Counts are of file contents; tree listings travel like manifests, uncounted.
    uploaded = [u.size for u in uploads if u.sha256 in files]
    present = [size for sha, size in files.items() if stored.get(sha) == size]

    return PushResult(
        cache_dir=location.path,
        store=store.url,
        repos=len({m.repo for m in manifests}),
        revisions=len(pushed),
        files=sum(len(m.files) for m in manifests),
        uploaded_files=len(uploaded),
        uploaded_bytes=sum(uploaded),
        present_files=len(present),
        present_bytes=sum(present),
        manifests_written=len(pieces),
        refs_written=refs,
        findings=tuple(findings),
        dry_run=dry_run,
        seconds=time.monotonic() - started,
        reuploaded_files=reuploaded,
        repaired_files=len(damaged),
        retries=store.retries - retried,
    )


def _spec(repo: str | RepoSpec) -> RepoSpec:
    return repo if isinstance(repo, RepoSpec) else parse_repo_spec(repo)


def _damaged(
    store: Store,
    named: Mapping[str, int],
    stored: Mapping[str, int],
    jobs: int,
    progress: Progress,
) -> set[str]:
    """The blobs this push names that the store holds with other bytes.

    A blob listed at another size is damaged too (truncated, say); a normal push
    replaces it as well, but only a repair counts it.
    """
    held = {sha: size for sha, size in named.items() if sha in stored}
    same_size = {sha: size for sha, size in held.items() if stored[sha] == size}
    checked = check_blobs(store, same_size, jobs=jobs, progress=progress)
    for finding in checked.findings:
        logger.warning("repairing: %s", finding.message)
    # An object that could not be read back is not known good either.
    bad = {f.path for f in checked.findings}
    return {s for s in held if s not in same_size or layout.blob_key(s) in bad}


def _uploads(
    wanted: dict[str, int], sources: Mapping[str, Path], stored: dict[str, int]
) -> list[_Upload]:
    return [
        _Upload(sha256, sources[sha256], size)
        for sha256, size in sorted(wanted.items())
        if stored.get(sha256) != size
    ]


def _upload_all(
    store: Store, uploads: list[_Upload], jobs: int, progress: Progress
) -> None:
    progress.start("uploading", len(uploads), sum(u.size for u in uploads))
    cancel = threading.Event()
    advance = cancellable(progress.advance, cancel)

    def work(upload: _Upload) -> None:
        store.upload(
            layout.blob_key(upload.sha256), upload.source, upload.size, advance
        )
        crashpoints.reached("push-blob-uploaded")
        progress.file_done()

    for upload, result in run_all(uploads, work, jobs, cancel=cancel):
        if isinstance(result, HubstashError):
            # Manifests must not name a blob the store lacks: stop before writing any.
            raise result
        logger.debug("uploaded %s (%d bytes)", upload.sha256, upload.size)
    progress.finish()


def _pieces_to_write(
    view: StoreView,
    manifests: Iterable[Manifest],
    has_marker: bool,
    findings: list[Finding],
) -> tuple[list[Manifest], set[tuple[RepoId, str]]]:
    """The pieces the store lacks, and the revisions stored once they are written.

    A piece is written only when it merges with the pieces already stored, so a
    push can never make a revision unreadable for others.
    """
    index = view.index() if has_marker else {}
    needed: list[Manifest] = []
    stored: set[tuple[RepoId, str]] = set()
    for manifest in manifests:
        try:
            if _needs_piece(view, index, manifest):
                needed.append(manifest)
        except UnsafeStoreContent as exc:
            findings.append(_piece_refused(manifest, exc))
            continue
        stored.add((manifest.repo, manifest.commit))
    return needed, stored


def _write_pieces(view: StoreView, pieces: Iterable[Manifest]) -> None:
    for manifest in pieces:
        key = layout.manifest_key(manifest.repo, manifest.commit, manifest.piece_name())
        view.store.write(key, manifest.to_json())


def _needs_piece(
    view: StoreView, index: dict[RepoId, layout.RepoIndex], manifest: Manifest
) -> bool:
    """False when the stored pieces already say everything this one says.

    Raises:
        UnsafeStoreContent: the stored pieces, or this one with them, disagree.
    """
    entry = index.get(manifest.repo)
    if entry is None or not entry.pieces.get(manifest.commit):
        return True
    existing = view.manifest(manifest.repo, manifest.commit)
    if existing.covers(manifest):
        return False
    merge([existing, manifest], source=f"{manifest.repo}@{manifest.commit}")
    return True


def _piece_refused(manifest: Manifest, exc: UnsafeStoreContent) -> Finding:
    return Finding(
        "manifest-conflict",
        str(manifest.repo),
        manifest.commit,
        f"revision {manifest.commit[:12]} not pushed: {exc.message}",
        Severity.INTEGRITY,
    )


def _push_refs(
    view: StoreView,
    scan: CacheScan,
    pushed: set[tuple[RepoId, str]],
    force: bool,
    dry_run: bool,
    findings: list[Finding],
) -> int:
    written = 0
    for repo in scan.repos:
        stored = _stored_refs(view, repo.repo)
        for name, commit in sorted(repo.refs.items()):
            if (repo.repo, commit) not in pushed or stored.get(name) == commit:
                continue
            if name in stored and not force:
                findings.append(_ref_conflict(repo.repo, name, stored[name], commit))
                continue
            if not dry_run:
                view.store.write(
                    layout.ref_key(repo.repo, name), commit.encode("ascii")
                )
            written += 1
    return written


def _stored_refs(view: StoreView, repo: RepoId) -> dict[str, str]:
    entry = view.index().get(repo)
    return view.refs(repo) if entry is not None and entry.refs else {}


def _ref_conflict(repo: RepoId, name: str, stored: str, local: str) -> Finding:
    return Finding(
        "ref-conflict",
        str(repo),
        f"refs/{name}",
        f"the store's {name} names {stored[:12]}, the cache's names {local[:12]};"
        " the store's ref was kept (pass --force-refs to move it)",
        Severity.FAILURE,
        expected=stored,
        actual=local,
    )
