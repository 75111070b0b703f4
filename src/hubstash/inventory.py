"""What a store or the local cache holds: repos, revisions, refs, files and sizes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hubstash.cache import CachedRepo, scan_cache
from hubstash.cache_location import resolve_cache_dir
from hubstash.repos import RepoId, RepoSpec, parse_repo_spec
from hubstash.stores import Store
from hubstash.storeview import StoreView
from hubstash.transfer import DEFAULT_JOBS


@dataclass(frozen=True)
class StoredRevision:
    """One revision in the store (or the cache)."""

    commit: str
    refs: tuple[str, ...]
    files: int
    size: int


@dataclass(frozen=True)
class StoredRepo:
    """One repo in the store (or the cache), with its revisions."""

    repo: RepoId
    revisions: tuple[StoredRevision, ...]

    @property
    def size(self) -> int:
        """Bytes of its revisions' files, added up (shared content counts again)."""
        return sum(r.size for r in self.revisions)


def list_store(
    store: Store, repos: Sequence[str] = (), *, jobs: int = DEFAULT_JOBS
) -> tuple[StoredRepo, ...]:
    """Describe the repos of a store (all of them, or those named).

    Raises:
        NotFound: the store is not a hubstash store, or a named repo is not in it.
    """
    view = StoreView(store, jobs)
    view.require_format()
    specs = [parse_repo_spec(r) for r in repos] or [
        RepoSpec(r) for r in sorted(view.index())
    ]
    return tuple(_describe(view, spec) for spec in specs)


def _describe(view: StoreView, spec: RepoSpec) -> StoredRepo:
    repo = spec.repo
    refs = view.refs(repo)
    commits = [view.resolve(spec)] if spec.revision else sorted(view.repo(repo).pieces)
    manifests = view.manifests((repo, commit) for commit in commits)
    revisions = tuple(
        StoredRevision(
            m.commit,
            tuple(sorted(n for n, c in refs.items() if c == m.commit)),
            len(m.files),
            m.total_size,
        )
        for m in manifests
    )
    return StoredRepo(repo, revisions)


def list_cache(
    cache_dir: str | Path | None = None, repos: Sequence[str] = ()
) -> tuple[StoredRepo, ...]:
    """Describe the repos of the local cache (all of them, or those named).

    Revisions are those a push would carry: a snapshot still empty (a download in
    progress) is left out. Sizes are of the snapshot files, each counted in every
    revision that holds it. Reads nothing outside the cache folder.

    Raises:
        NotFound: there is no cache at that folder, or a named repo or revision is
            not in it.
    """
    root = resolve_cache_dir(cache_dir).path
    scan = scan_cache(root, tuple(parse_repo_spec(r) for r in repos))
    return tuple(_describe_cached(repo) for repo in scan.repos)


def _describe_cached(repo: CachedRepo) -> StoredRepo:
    revisions = tuple(
        StoredRevision(
            commit,
            tuple(sorted(n for n, c in repo.refs.items() if c == commit)),
            len(revision.files),
            sum(f.size for f in revision.files),
        )
        for commit, revision in sorted(repo.revisions.items())
    )
    return StoredRepo(repo.repo, revisions)
