"""Push: save repos of the local cache into a store.

Order of work, which is also the store's write order: hash and check every file
that will be uploaded, upload blobs, write manifest pieces, then move refs. A reader
of the store therefore never sees a ref whose manifest or blobs are missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hubstash import layout
from hubstash.cache import CachedFile, CachedRepo, CacheScan, scan_cache
from hubstash.cache_location import resolve_cache_dir
from hubstash.errors import ExitCode, HubstashError
from hubstash.findings import Finding, Severity, exit_code_for
from hubstash.hashing import Digests, hash_file, is_sha256_name, name_matches
from hubstash.manifest import FileEntry, Manifest, TreeListing
from hubstash.patterns import FileFilter
from hubstash.progress import SILENT, Progress
from hubstash.repos import RepoId, RepoSpec, parse_repo_spec
from hubstash.stores import Store
from hubstash.storeview import StoreView
from hubstash.transfer import DEFAULT_JOBS, run_all

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
class _Use:
    """One snapshot file of one revision, as found in the cache."""

    repo: CachedRepo
    commit: str
    file: CachedFile


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
        jobs: concurrent hashes and transfers.
        progress: receives progress.

    Raises:
        NotFound: the cache, or a named repo or revision, is missing.
        HubstashError: the store cannot be reached or written (subclasses say why).
    """
    started = time.monotonic()
    location = resolve_cache_dir(cache_dir)
    scan = scan_cache(location.path, tuple(_spec(r) for r in repos))
    findings = list(scan.findings)
    view = StoreView(store, jobs)
    has_marker = view.check_format(create=not dry_run)

    uses = _collect(scan, FileFilter.of(include, exclude))
    stored = view.blob_sizes() if has_marker else {}
    digests = _hash_contents(uses, scan, stored, jobs, progress, findings)
    entries = _entries(uses, digests, findings)
    trees = _trees(scan, digests)
    files = {e.sha256: e.size for es in entries.values() for e in es}
    listings = {t.sha256: t.size for t in trees.values()}
    uploads = _uploads({**listings, **files}, digests, stored)

    if not dry_run:
        _upload_all(store, uploads, jobs, progress)
    manifests = _manifests(scan, entries, trees)
    written = _write_manifests(view, manifests, dry_run, has_marker)
    pushed = {(m.repo, m.commit) for m in manifests}
    refs = _push_refs(view, scan, pushed, force_refs, dry_run, findings)
    # Counts are of file contents; tree listings travel like manifests, uncounted.
    uploaded = [u.size for u in uploads if u.sha256 in files]
    present = [size for sha, size in files.items() if stored.get(sha) == size]

    return PushResult(
        cache_dir=location.path,
        store=store.url,
        repos=len({m.repo for m in manifests}),
        revisions=len(manifests),
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


def _collect(scan: CacheScan, selection: FileFilter) -> list[_Use]:
    return [
        _Use(repo, commit, file)
        for repo in scan.repos
        for commit, revision in repo.revisions.items()
        for file in revision.files
        if selection.accepts(file.path)
    ]


def _hash_contents(
    uses: list[_Use],
    scan: CacheScan,
    stored: dict[str, int],
    jobs: int,
    progress: Progress,
    findings: list[Finding],
) -> dict[Path, Digests]:
    """Digests of every distinct content file: snapshot blobs and tree listings.

    A 64-hex blob the store already holds at the same size is not read: its name is
    its SHA-256, and it will not be uploaded.
    """
    names = {u.file.source: u.file.blob for u in uses}
    for repo in scan.repos:
        for revision in repo.revisions.values():
            if revision.tree_file is not None:
                names[revision.tree_file] = None
    sizes = {u.file.source: u.file.size for u in uses}
    known = {
        source: Digests(sizes[source], name)
        for source, name in names.items()
        if name is not None
        and is_sha256_name(name)
        and stored.get(name) == sizes[source]
    }
    todo = [source for source in names if source not in known]

    progress.start("hashing", len(todo), sum(sizes.get(s, 0) for s in todo))

    def work(source: Path) -> Digests:
        name = names[source]
        try:
            digests = hash_file(
                source, git_sha1=name is None or not is_sha256_name(name)
            )
        except OSError as exc:
            raise HubstashError(f"cannot read {source}: {exc.strerror}") from exc
        progress.advance(digests.size)
        progress.file_done()
        return digests

    for source, result in run_all(todo, work, jobs):
        if isinstance(result, HubstashError):
            findings.append(
                Finding("unreadable", "", str(source), str(result), Severity.FAILURE)
            )
        else:
            known[source] = result
    progress.finish()
    return known


def _entries(
    uses: list[_Use], digests: dict[Path, Digests], findings: list[Finding]
) -> dict[tuple[RepoId, str], list[FileEntry]]:
    """Manifest entries of every revision, leaving out content that fails its name."""
    entries: dict[tuple[RepoId, str], list[FileEntry]] = {}
    for use in uses:
        found = digests.get(use.file.source)
        if found is None:
            continue
        name = _blob_name(use, found)
        if name is None or not name_matches(name, found):
            findings.append(_corrupt(use, name, found))
            continue
        entry = FileEntry(
            use.file.path, name, found.size, found.sha256, use.file.mtime_ns
        )
        entries.setdefault((use.repo.repo, use.commit), []).append(entry)
    return entries


def _blob_name(use: _Use, digests: Digests) -> str | None:
    """The blob name a file has, or should have when the snapshot holds a plain file.

    A plain file (the no-symlink layout) takes its name from the revision's tree
    listing; else from a blob of the repo with the same content (layout with both);
    else its SHA-256.
    """
    if use.file.blob is not None:
        return use.file.blob
    listed = use.repo.tree_names(use.commit).get(use.file.path)
    if listed is not None:
        return listed
    for candidate in (digests.sha256, digests.git_sha1):
        if candidate and use.repo.blob_path(candidate).is_file():
            return candidate
    return digests.sha256


def _corrupt(use: _Use, name: str | None, digests: Digests) -> Finding:
    actual = (
        digests.sha256 if name is None or is_sha256_name(name) else digests.git_sha1
    )
    return Finding(
        "corrupt-blob",
        str(use.repo.repo),
        use.file.path,
        f"{use.file.path} (blob {name}) does not match its name: content hashes to"
        f" {actual}; not pushed",
        Severity.INTEGRITY,
        expected=name or "",
        actual=actual or "",
    )


def _trees(
    scan: CacheScan, digests: dict[Path, Digests]
) -> dict[tuple[RepoId, str], TreeListing]:
    trees: dict[tuple[RepoId, str], TreeListing] = {}
    for repo in scan.repos:
        for commit, revision in repo.revisions.items():
            found = digests.get(revision.tree_file) if revision.tree_file else None
            if found is not None:
                trees[(repo.repo, commit)] = TreeListing(found.sha256, found.size)
    return trees


def _uploads(
    wanted: dict[str, int], digests: dict[Path, Digests], stored: dict[str, int]
) -> list[_Upload]:
    by_hash = {d.sha256: source for source, d in digests.items()}
    return [
        _Upload(sha256, by_hash[sha256], size)
        for sha256, size in sorted(wanted.items())
        if stored.get(sha256) != size
    ]


def _upload_all(
    store: Store, uploads: list[_Upload], jobs: int, progress: Progress
) -> None:
    progress.start("uploading", len(uploads), sum(u.size for u in uploads))

    def work(upload: _Upload) -> None:
        store.upload(
            layout.blob_key(upload.sha256), upload.source, upload.size, progress.advance
        )
        progress.file_done()

    for upload, result in run_all(uploads, work, jobs):
        if isinstance(result, HubstashError):
            # Manifests must not name a blob the store lacks: stop before writing any.
            raise result
        logger.debug("uploaded %s (%d bytes)", upload.sha256, upload.size)
    progress.finish()


def _manifests(
    scan: CacheScan,
    entries: dict[tuple[RepoId, str], list[FileEntry]],
    trees: dict[tuple[RepoId, str], TreeListing],
) -> list[Manifest]:
    manifests: dict[tuple[RepoId, str], Manifest] = {}
    for repo in scan.repos:
        for commit, revision in repo.revisions.items():
            key = (repo.repo, commit)
            files = tuple(sorted(entries.get(key, ())))
            tree = trees.get(key)
            if files or revision.no_exist or tree:
                manifests[key] = Manifest(
                    repo.repo, commit, files, revision.no_exist, tree
                )
    return list(manifests.values())


def _write_manifests(
    view: StoreView, manifests: Iterable[Manifest], dry_run: bool, has_marker: bool
) -> int:
    index = view.index() if has_marker else {}
    written = 0
    for manifest in manifests:
        if _already_covered(view, index, manifest):
            continue
        if not dry_run:
            key = layout.manifest_key(
                manifest.repo, manifest.commit, manifest.piece_name()
            )
            view.store.write(key, manifest.to_json())
        written += 1
    return written


def _already_covered(
    view: StoreView, index: dict[RepoId, layout.RepoIndex], manifest: Manifest
) -> bool:
    entry = index.get(manifest.repo)
    if entry is None or not entry.pieces.get(manifest.commit):
        return False
    return view.manifest(manifest.repo, manifest.commit).covers(manifest)


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
