"""Push: save repos of the local cache into a store.

Order of work, which is also the store's write order: hash and check every file
that will be uploaded, upload blobs, write manifest pieces, then move refs. A reader
of the store therefore never sees a ref whose manifest or blobs are missing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hubstash import layout
from hubstash.cache import CacheScan, scan_cache
from hubstash.cache_location import resolve_cache_dir
from hubstash.cachecontent import read_content
from hubstash.errors import ExitCode, HubstashError, UnsafeStoreContent
from hubstash.findings import Finding, Severity, exit_code_for
from hubstash.manifest import Manifest, merge
from hubstash.patterns import FileFilter
from hubstash.progress import SILENT, Progress
from hubstash.repos import RepoId, RepoSpec, parse_repo_spec
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
    selections: Mapping[RepoId, FileFilter] | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
) -> PushResult:
    """Save repos of the local Hub cache into a store.

    Every blob that is uploaded is first hashed and checked against its name (SHA-256
    for 64-hex names, git blob SHA-1 for 40-hex names); a blob that fails is not
    uploaded, is reported in ``findings`` with expected and actual hash, and its
    files are left out of the manifest, while everything else is still pushed.
    Content the store already holds is not uploaded again. Refs the store already
    has are never moved to another commit unless ``force_refs``.

    Args:
        store: where to save.
        cache_dir: the Hub cache (or an ``HF_HOME``); found as huggingface_hub
            finds it when None.
        repos: ``[type/]org/name[@revision]``; everything in the cache when empty.
        include: only files matching one of these patterns (allow_patterns rules).
        exclude: no files matching these patterns.
        dry_run: plan and report, write nothing.
        force_refs: move refs the store has to the cache's commits.
        selections: further include/exclude patterns for some repos.
        jobs: concurrent hashes and transfers.
        progress: receives progress.

    Raises:
        NotFound: the cache, or a named repo or revision, is missing.
        HubstashError: the store cannot be reached or written (subclasses say why).
    """
    started = time.monotonic()
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
        trusted=stored,
        jobs=jobs,
        progress=progress,
    )
    findings += content.findings
    files = content.file_sizes
    uploads = _uploads({**content.listing_sizes, **files}, content.sources, stored)

    if not dry_run:
        _upload_all(store, uploads, jobs, progress)
    manifests = list(content.manifests)
    written, pushed = _write_manifests(view, manifests, dry_run, has_marker, findings)
    refs = _push_refs(view, scan, pushed, force_refs, dry_run, findings)
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
        manifests_written=written,
        refs_written=refs,
        findings=tuple(findings),
        dry_run=dry_run,
        seconds=time.monotonic() - started,
    )


def _spec(repo: str | RepoSpec) -> RepoSpec:
    return repo if isinstance(repo, RepoSpec) else parse_repo_spec(repo)


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
        progress.file_done()

    for upload, result in run_all(uploads, work, jobs, cancel=cancel):
        if isinstance(result, HubstashError):
            # Manifests must not name a blob the store lacks: stop before writing any.
            raise result
        logger.debug("uploaded %s (%d bytes)", upload.sha256, upload.size)
    progress.finish()


def _write_manifests(
    view: StoreView,
    manifests: Iterable[Manifest],
    dry_run: bool,
    has_marker: bool,
    findings: list[Finding],
) -> tuple[int, set[tuple[RepoId, str]]]:
    """Write the pieces the store lacks; return how many, and the revisions stored.

    A piece is written only when it merges with the pieces already stored, so a
    push can never make a revision unreadable for others.
    """
    index = view.index() if has_marker else {}
    written = 0
    stored: set[tuple[RepoId, str]] = set()
    for manifest in manifests:
        try:
            needed = _needs_piece(view, index, manifest)
        except UnsafeStoreContent as exc:
            findings.append(_piece_refused(manifest, exc))
            continue
        if needed and not dry_run:
            key = layout.manifest_key(
                manifest.repo, manifest.commit, manifest.piece_name()
            )
            view.store.write(key, manifest.to_json())
        written += needed
        stored.add((manifest.repo, manifest.commit))
    return written, stored


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
