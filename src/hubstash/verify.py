"""Verify: is the local cache intact, and does it hold what the store holds?"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hubstash.cache import CachedRepo, CacheScan, scan_cache
from hubstash.cache_location import resolve_cache_dir
from hubstash.errors import ExitCode, HubstashError, UsageError
from hubstash.findings import Finding, Severity, exit_code_for
from hubstash.hashing import Digests, hash_file, is_sha256_name, name_matches
from hubstash.lockfile import Lock, LockedRepo
from hubstash.manifest import FileEntry, Manifest
from hubstash.progress import SILENT, Progress
from hubstash.repos import RepoId, RepoSpec, parse_repo_spec
from hubstash.storecheck import StoreCheck, check_store
from hubstash.stores import Store
from hubstash.storeview import StoreView
from hubstash.transfer import DEFAULT_JOBS, run_all


@dataclass(frozen=True)
class VerifyResult:
    """What ``verify`` checked and found.

    Attributes:
        cache_dir: the cache folder checked.
        repos: repos checked.
        revisions: revisions checked.
        files: snapshot files checked.
        blobs_hashed: distinct contents hashed against their names.
        bytes_hashed: their bytes.
        findings: every problem, each naming repo and path.
        store: the store compared against, if any.
        seconds: wall time.
        store_blobs_hashed: with ``deep``, store blobs read back and hashed.
        store_bytes_hashed: their bytes.
    """

    cache_dir: Path
    repos: int
    revisions: int
    files: int
    blobs_hashed: int
    bytes_hashed: int
    findings: tuple[Finding, ...]
    store: str | None
    seconds: float
    store_blobs_hashed: int = 0
    store_bytes_hashed: int = 0

    @property
    def exit_code(self) -> ExitCode:
        return exit_code_for(self.findings)


def verify(
    cache_dir: str | Path | None = None,
    repos: Sequence[str | RepoSpec] = (),
    *,
    store: Store | None = None,
    deep: bool = False,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
) -> VerifyResult:
    """Check the local cache, offline unless a store is given.

    Checks every blob against its name (SHA-256 or git blob SHA-1), every snapshot
    link, every ref (exactly 40 hex bytes, naming a commit the cache holds), and
    that each repo has refs. With a store, also reports every revision, file and ref
    of the store that the cache lacks. With ``deep``, also reads back and hashes
    what the store holds for those repos (everything, when none is named): every
    blob against its key, streamed, and every manifest piece against its name;
    each damaged object is a finding naming its key, expected and actual hash.
    Nothing is written.

    Raises:
        NotFound: the cache, or a named repo or revision, is missing.
        UsageError: ``deep`` without a store.
        HubstashError: the store cannot be read.
    """
    if deep and store is None:
        raise UsageError("--deep checks a store: give --store")
    started = time.monotonic()
    root = resolve_cache_dir(cache_dir).path
    specs = tuple(r if isinstance(r, RepoSpec) else parse_repo_spec(r) for r in repos)
    scan = scan_cache(root, specs)
    findings = list(scan.findings)
    findings += _repos_without_refs(scan)

    hashed = _check_blobs(scan, jobs, progress, findings)
    deeply = StoreCheck(0, 0, ())
    if store is not None:
        view = StoreView(store, jobs)
        findings += _compare_with_store(view, scan, specs)
        if deep:
            deeply = _check_store(view, specs, jobs, progress)
            findings += deeply.findings

    return VerifyResult(
        cache_dir=root,
        repos=len(scan.repos),
        revisions=sum(len(r.revisions) for r in scan.repos),
        files=sum(len(v.files) for r in scan.repos for v in r.revisions.values()),
        blobs_hashed=len(hashed),
        bytes_hashed=sum(d.size for d in hashed.values()),
        findings=tuple(findings),
        store=store.url if store is not None else None,
        seconds=time.monotonic() - started,
        store_blobs_hashed=deeply.blobs_hashed,
        store_bytes_hashed=deeply.bytes_hashed,
    )


def _check_store(
    view: StoreView, specs: tuple[RepoSpec, ...], jobs: int, progress: Progress
) -> StoreCheck:
    """The deep check: of the named revisions, else of the whole store."""
    if not specs:
        return check_store(view, jobs=jobs, progress=progress)
    revisions = [
        (spec.repo, commit)
        for spec in specs
        for commit in _stored_revisions(view, spec)[0]
    ]
    return check_store(view, revisions, jobs=jobs, progress=progress)


def _repos_without_refs(scan: CacheScan) -> list[Finding]:
    return [
        Finding(
            "no-refs",
            str(repo.repo),
            "refs/",
            "the repo has snapshots but no refs: offline loads by branch or tag fail",
            Severity.INCOMPLETE,
        )
        for repo in scan.repos
        if repo.revisions and not _has_ref_files(repo.path / "refs")
    ]


def _has_ref_files(refs: Path) -> bool:
    return refs.is_dir() and any(p.is_file() for p in refs.rglob("*"))


def _check_blobs(
    scan: CacheScan, jobs: int, progress: Progress, findings: list[Finding]
) -> dict[Path, Digests]:
    """Hash every distinct content with a name, and report those that fail it."""
    named = {
        f.source: (repo, f.path, f.blob or _listed_name(repo, commit, f.path))
        for repo in scan.repos
        for commit, revision in repo.revisions.items()
        for f in revision.files
    }
    todo = [(source, info) for source, info in named.items() if info[2] is not None]
    progress.start("verifying", len(todo), sum(s.stat().st_size for s, _ in todo))

    def work(item: tuple[Path, tuple[CachedRepo, str, str | None]]) -> Digests:
        source, (_, _, name) = item
        try:
            digests = hash_file(source, git_sha1=not is_sha256_name(name or ""))
        except OSError as exc:
            raise HubstashError(f"cannot read {source}: {exc.strerror}") from exc
        progress.advance(digests.size)
        progress.file_done()
        return digests

    hashed: dict[Path, Digests] = {}
    for (source, (repo, path, name)), result in run_all(todo, work, jobs):
        if isinstance(result, HubstashError):
            findings.append(
                Finding(
                    "unreadable", str(repo.repo), path, str(result), Severity.FAILURE
                )
            )
            continue
        hashed[source] = result
        if name is not None and not name_matches(name, result):
            findings.append(_corrupt(repo, path, name, result))
    progress.finish()
    return hashed


def _listed_name(repo: CachedRepo, commit: str, path: str) -> str | None:
    return repo.tree_names(commit).get(path)


def _corrupt(repo: CachedRepo, path: str, name: str, digests: Digests) -> Finding:
    actual = digests.sha256 if is_sha256_name(name) else digests.git_sha1 or ""
    return Finding(
        "corrupt-blob",
        str(repo.repo),
        path,
        f"{path} (blob {name}) is corrupt: its content hashes to {actual}",
        Severity.INTEGRITY,
        expected=name,
        actual=actual,
    )


def _compare_with_store(
    view: StoreView, scan: CacheScan, specs: tuple[RepoSpec, ...]
) -> list[Finding]:
    view.require_format()
    local = {repo.repo: repo for repo in scan.repos}
    specs = specs or tuple(RepoSpec(repo) for repo in sorted(view.index()))
    findings: list[Finding] = []
    for spec in specs:
        commits, refs = _stored_revisions(view, spec)
        for manifest in view.manifests((spec.repo, c) for c in commits):
            findings += _missing_files(local.get(spec.repo), manifest)
        findings += _missing_refs(local.get(spec.repo), spec.repo, refs)
    return findings


def _stored_revisions(
    view: StoreView, spec: RepoSpec
) -> tuple[list[str], dict[str, str]]:
    """The store's commits and refs that a spec names: all, or one revision."""
    if spec.revision is None:
        return sorted(view.repo(spec.repo).pieces), view.refs(spec.repo)
    commit = view.resolve(spec)
    refs = {} if commit == spec.revision else {spec.revision: commit}
    return [commit], refs


def _missing_files(repo: CachedRepo | None, manifest: Manifest) -> list[Finding]:
    revision = repo.revisions.get(manifest.commit) if repo else None
    have = {f.path: f.size for f in revision.files} if revision else {}
    return [
        Finding(
            "missing-from-cache",
            str(manifest.repo),
            f"{manifest.commit[:12]}/{entry.path}",
            f"{entry.path} of revision {manifest.commit[:12]} is in the store, not in"
            " the cache",
            Severity.INCOMPLETE,
        )
        for entry in manifest.files
        if have.get(entry.path) != entry.size
    ]


def _missing_refs(
    repo: CachedRepo | None, repo_id: RepoId, refs: dict[str, str]
) -> list[Finding]:
    local = repo.refs if repo else {}
    return [
        Finding(
            "ref-differs",
            str(repo_id),
            f"refs/{name}",
            f"ref {name} names {commit[:12]} in the store and"
            f" {local[name][:12] if name in local else 'nothing'} in the cache",
            Severity.INCOMPLETE,
        )
        for name, commit in sorted(refs.items())
        if local.get(name) != commit
    ]


def verify_locked(
    lock: Lock,
    cache_dir: str | Path | None = None,
    *,
    strict: bool = False,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
) -> VerifyResult:
    """Check, offline, that the cache holds exactly what the lock pins.

    Every locked file must be in its snapshot with the locked size and SHA-256, and
    each locked revision's ref must name the locked commit. With ``strict``, files
    of those snapshots that the lock does not name are reported too. Missing files
    give exit code 4, corrupt ones 3, extra ones 1.
    """
    started = time.monotonic()
    root = resolve_cache_dir(cache_dir).path
    findings: list[Finding] = []
    checks: list[tuple[LockedRepo, FileEntry, Path]] = []
    for locked in lock.repos:
        snapshot = root / locked.repo.folder / "snapshots" / locked.commit
        findings += _locked_ref(root, locked)
        for entry in locked.files:
            path = snapshot / entry.path
            if not path.is_file():
                findings.append(_missing(locked, entry))
            else:
                checks.append((locked, entry, path))
        if strict:
            findings += _extra_files(snapshot, locked)
    hashed = _hash_locked(checks, jobs, progress, findings)
    return VerifyResult(
        cache_dir=root,
        repos=len({r.repo for r in lock.repos}),
        revisions=len(lock.repos),
        files=sum(len(r.files) for r in lock.repos),
        blobs_hashed=hashed,
        bytes_hashed=sum(path.stat().st_size for _, _, path in checks),
        findings=tuple(findings),
        store=None,
        seconds=time.monotonic() - started,
    )


def _locked_ref(root: Path, locked: LockedRepo) -> list[Finding]:
    if locked.revision == locked.commit:
        return []
    ref = root / locked.repo.folder / "refs" / locked.revision
    try:
        held = ref.read_bytes()
    except OSError:
        held = b""
    if held == locked.commit.encode():
        return []
    return [
        Finding(
            "ref-differs",
            str(locked.repo),
            f"refs/{locked.revision}",
            f"ref {locked.revision} should name {locked.commit[:12]} as locked; the"
            f" cache has {held[:60]!r}",
            Severity.INCOMPLETE,
            expected=locked.commit,
            actual=held.decode("ascii", "replace"),
        )
    ]


def _missing(locked: LockedRepo, entry: FileEntry) -> Finding:
    return Finding(
        "missing",
        str(locked.repo),
        entry.path,
        f"{entry.path} of {locked.revision} ({locked.commit[:12]}) is locked but not"
        " in the cache",
        Severity.INCOMPLETE,
    )


def _extra_files(snapshot: Path, locked: LockedRepo) -> list[Finding]:
    named = {entry.path for entry in locked.files}
    present = sorted(
        p.relative_to(snapshot).as_posix()
        for p in snapshot.rglob("*")
        if not p.is_dir() or p.is_symlink()
    )
    return [
        Finding(
            "extra",
            str(locked.repo),
            path,
            f"{path} is in the snapshot of {locked.commit[:12]} but not in the lock",
            Severity.FAILURE,
        )
        for path in present
        if path not in named
    ]


def _hash_locked(
    checks: list[tuple[LockedRepo, FileEntry, Path]],
    jobs: int,
    progress: Progress,
    findings: list[Finding],
) -> int:
    progress.start("verifying", len(checks), sum(e.size for _, e, _ in checks))
    # A file of another size fails its hash like any other corruption.

    def work(check: tuple[LockedRepo, FileEntry, Path]) -> Digests:
        try:
            digests = hash_file(check[2], git_sha1=False)
        except OSError as exc:
            raise HubstashError(f"cannot read {check[2]}: {exc.strerror}") from exc
        progress.advance(digests.size)
        return digests

    for (locked, entry, _), result in run_all(checks, work, jobs):
        if isinstance(result, HubstashError) or result.sha256 != entry.sha256:
            actual = "" if isinstance(result, HubstashError) else result.sha256
            findings.append(
                Finding(
                    "corrupt",
                    str(locked.repo),
                    entry.path,
                    f"{entry.path} does not match the lock: it hashes to {actual}",
                    Severity.INTEGRITY,
                    expected=entry.sha256,
                    actual=actual,
                )
            )
    progress.finish()
    return len(checks)
