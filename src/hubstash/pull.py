"""Pull: restore repos from a store into the local cache, exactly and verified.

Choosing what to restore lives here: repos and revisions from the store's refs and
manifests, or from a lock file. Restoring them is ``hubstash.restore``'s job.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hubstash import layout
from hubstash.cache_location import resolve_cache_dir
from hubstash.errors import ExitCode, UnsafeStoreContent
from hubstash.findings import Finding, Severity, exit_code_for
from hubstash.lockfile import Lock
from hubstash.manifest import Manifest
from hubstash.patterns import EVERYTHING, FileFilter
from hubstash.progress import SILENT, Progress
from hubstash.repos import RepoId, RepoSpec, parse_repo_spec
from hubstash.restore import Outcome, Revision, restore
from hubstash.stores import Store
from hubstash.storeview import StoreView
from hubstash.transfer import DEFAULT_JOBS


@dataclass(frozen=True)
class PullResult:
    """What a pull did (or, with ``dry_run``, would do).

    Attributes:
        cache_dir: the cache folder written.
        store: the store's URL.
        repos: repos restored.
        revisions: revisions restored.
        files: snapshot files the restored revisions hold.
        downloaded_files: blobs written (each content is downloaded once and
            copied to the other repos that hold it).
        downloaded_bytes: bytes downloaded.
        present_files: blobs the cache already had.
        present_bytes: their bytes.
        refs_written: refs created or moved.
        copy_mode: snapshots hold copies instead of links.
        findings: problems; revisions they name were not restored.
        dry_run: nothing was written.
        seconds: wall time.
        retries: requests and downloads asked for again after a transient
            failure (throttling, a 5xx, a broken-off answer, damaged bytes).
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
    retries: int = 0

    @property
    def exit_code(self) -> ExitCode:
        return exit_code_for(self.findings)


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
    cache already has (same name and size) are not downloaded again. A repo whose
    refs or manifests in the store are unreadable is reported in ``findings``, and
    the others are still restored.

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
    retried = store.retries
    root = resolve_cache_dir(cache_dir).path
    view = StoreView(store, jobs)
    view.require_format()

    findings: list[Finding] = []
    specs = [_spec(r) for r in repos] or [RepoSpec(r) for r in sorted(view.index())]
    selection = FileFilter.of(include, exclude)
    revisions = [
        _filtered(revision, selection, (selections or {}).get(spec.repo, EVERYTHING))
        for spec in specs
        for revision in _readable_revisions(view, spec, findings)
    ]
    outcome = restore(
        store, root, revisions, copy=copy, dry_run=dry_run, jobs=jobs, progress=progress
    )
    return _result(root, store, outcome, findings, dry_run, started, retried)


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
    retried = store.retries
    root = resolve_cache_dir(cache_dir).path
    revisions = [
        Revision(r.manifest(), () if r.revision == r.commit else (r.revision,))
        for r in lock.repos
    ]
    outcome = restore(
        store, root, revisions, copy=copy, dry_run=dry_run, jobs=jobs, progress=progress
    )
    return _result(root, store, outcome, [], dry_run, started, retried)


def _result(
    root: Path,
    store: Store,
    outcome: Outcome,
    findings: list[Finding],
    dry_run: bool,
    started: float,
    retried: int,
) -> PullResult:
    return PullResult(
        cache_dir=root,
        store=store.url,
        repos=outcome.repos,
        revisions=outcome.revisions,
        files=outcome.files,
        downloaded_files=outcome.downloaded_files,
        downloaded_bytes=outcome.downloaded_bytes,
        present_files=outcome.present_files,
        present_bytes=outcome.present_bytes,
        refs_written=outcome.refs_written,
        copy_mode=outcome.copy_mode,
        findings=tuple(findings) + outcome.findings,
        dry_run=dry_run,
        seconds=time.monotonic() - started,
        retries=outcome.retries + store.retries - retried,
    )


def _spec(repo: str | RepoSpec) -> RepoSpec:
    return repo if isinstance(repo, RepoSpec) else parse_repo_spec(repo)


def _readable_revisions(
    view: StoreView, spec: RepoSpec, findings: list[Finding]
) -> list[Revision]:
    """The revisions a spec means, or none (and a finding) when they are unreadable.

    A named repo or revision that does not exist is an error for the whole pull;
    damaged store content of one repo only keeps that repo from being restored.
    """
    try:
        return _revisions(view, spec, findings)
    except UnsafeStoreContent as exc:
        findings.append(
            Finding(
                "unreadable-in-store",
                str(spec.repo),
                exc.path,
                f"not restored: {exc.message}",
                Severity.INTEGRITY,
            )
        )
        return []


def _revisions(
    view: StoreView, spec: RepoSpec, findings: list[Finding]
) -> list[Revision]:
    if spec.revision is not None:
        commit = view.resolve(spec)
        refs = (spec.revision,) if commit != spec.revision else ()
        return [Revision(view.manifest(spec.repo, commit), refs)]
    refs_by_commit: dict[str, list[str]] = {}
    for name, commit in view.refs(spec.repo).items():
        refs_by_commit.setdefault(commit, []).append(name)
    commits = sorted(view.repo(spec.repo).pieces)
    findings += _refs_without_manifest(spec.repo, refs_by_commit, commits)
    return [
        Revision(manifest, tuple(sorted(refs_by_commit.get(manifest.commit, ()))))
        for manifest in view.manifests((spec.repo, c) for c in commits)
    ]


def _refs_without_manifest(
    repo: RepoId, refs_by_commit: dict[str, list[str]], commits: list[str]
) -> list[Finding]:
    return [
        Finding(
            "ref-without-manifest",
            str(repo),
            layout.ref_key(repo, name),
            f"store ref {layout.ref_key(repo, name)} names {commit[:12]}, of which"
            " the store has no manifest: not restored",
            Severity.INCOMPLETE,
        )
        for commit, names in sorted(refs_by_commit.items())
        if commit not in commits
        for name in sorted(names)
    ]


def _filtered(revision: Revision, *selections: FileFilter) -> Revision:
    manifest = revision.manifest
    for selection in selections:
        manifest = _select(manifest, selection)
    return replace(revision, manifest=manifest)


def _select(manifest: Manifest, selection: FileFilter) -> Manifest:
    if selection.is_everything:
        return manifest
    return replace(
        manifest,
        files=tuple(f for f in manifest.files if selection.accepts(f.path)),
        no_exist=tuple(p for p in manifest.no_exist if selection.accepts(p)),
    )
