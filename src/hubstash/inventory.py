"""What a store holds: repos, revisions, refs, files and sizes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hubstash.repos import RepoId, RepoSpec, parse_repo_spec
from hubstash.stores import Store
from hubstash.storeview import StoreView
from hubstash.transfer import DEFAULT_JOBS


@dataclass(frozen=True)
class StoredRevision:
    """One revision in the store."""

    commit: str
    refs: tuple[str, ...]
    files: int
    size: int


@dataclass(frozen=True)
class StoredRepo:
    """One repo in the store, with its revisions."""

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
