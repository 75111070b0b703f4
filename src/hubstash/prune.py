"""prune: remove from a store the revisions no lockfile (and no kept ref) needs.

A revision goes with its manifest pieces and the refs naming it; refs are deleted
first, so a reader never meets a ref without its manifest. Blobs are left to
``gc``, which deletes those no remaining manifest names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hubstash.errors import UsageError
from hubstash.lockfile import Lock
from hubstash.repos import RepoId
from hubstash.stats import DEFAULT_PRICE_PER_GB, monthly_cost
from hubstash.storecontent import (
    Revision,
    StoreContent,
    blob_listing,
    read_store_content,
)
from hubstash.stores import Store
from hubstash.transfer import DEFAULT_JOBS


@dataclass(frozen=True)
class PrunedRevision:
    """A revision to remove (from a store or a cache).

    Attributes:
        repo: the repo.
        commit: the commit.
        refs: the refs naming it, removed with it.
        files: its files.
        size: their bytes.
    """

    repo: RepoId
    commit: str
    refs: tuple[str, ...]
    files: int
    size: int


@dataclass(frozen=True)
class StorePrunePlan:
    """What pruning a store removes.

    Attributes:
        store: the store's URL.
        kept: revisions kept.
        removed: revisions removed.
        keys: refs, then manifest pieces, in the order they are deleted.
        key_bytes: their bytes.
        freed_blobs: blobs only removed revisions name; ``gc`` deletes them.
        freed_bytes: their bytes.
        price_per_gb: the price used, per 10^9 bytes and month.
        monthly_saving: what ``key_bytes`` and ``freed_bytes`` cost per month.
    """

    store: str
    kept: int
    removed: tuple[PrunedRevision, ...]
    keys: tuple[str, ...]
    key_bytes: int
    freed_blobs: int
    freed_bytes: int
    price_per_gb: float
    monthly_saving: float


def locked_revisions(locks: Iterable[Lock]) -> set[Revision]:
    """The revisions the locks pin."""
    return {(locked.repo, locked.commit) for lock in locks for locked in lock.repos}


def require_something_kept(locks: Sequence[Lock], keep_refs: bool) -> None:
    """Refuse a prune that would keep nothing.

    Raises:
        UsageError: neither a lock nor ``keep_refs`` was given.
    """
    if not locks and not keep_refs:
        raise UsageError(
            "prune keeps what lockfiles or refs name, and none were given: it would"
            " remove everything",
            hint="pass --keep-locked hubstash.lock and/or --keep-refs",
        )


def plan_store_prune(
    store: Store,
    locks: Sequence[Lock],
    *,
    keep_refs: bool = False,
    price_per_gb: float = DEFAULT_PRICE_PER_GB,
    jobs: int = DEFAULT_JOBS,
) -> StorePrunePlan:
    """Find the revisions of a store that no lock pins and (with ``keep_refs``) no
    ref names. Reads every manifest piece and ref; writes nothing.

    Raises:
        UsageError: nothing would be kept (no lock, no ``keep_refs``).
        NotFound: the store is not a hubstash store.
        UnsafeStoreContent: a manifest piece or ref is invalid.
    """
    require_something_kept(locks, keep_refs)
    content = read_store_content(store, jobs=jobs)
    keep = locked_revisions(locks)
    if keep_refs:
        keep |= {(ref.repo, ref.commit) for ref in content.refs}
    doomed = sorted(set(content.pieces) - keep)
    keys = _doomed_keys(content, keep, doomed)
    freed = _freed_blobs(store, content, doomed)
    key_bytes = sum(content.key_sizes.get(key, 0) for key in keys)
    return StorePrunePlan(
        store=store.url,
        kept=len(content.pieces) - len(doomed),
        removed=tuple(_removal(content, revision) for revision in doomed),
        keys=keys,
        key_bytes=key_bytes,
        freed_blobs=len(freed),
        freed_bytes=sum(freed.values()),
        price_per_gb=price_per_gb,
        monthly_saving=monthly_cost(key_bytes + sum(freed.values()), price_per_gb),
    )


def apply_store_prune(store: Store, plan: StorePrunePlan) -> None:
    """Delete the plan's refs, then its manifest pieces.

    Raises:
        AccessDenied: the credentials may not delete.
    """
    store.delete(plan.keys)


def _doomed_keys(
    content: StoreContent, keep: set[Revision], doomed: list[Revision]
) -> tuple[str, ...]:
    """Refs naming a revision not kept (dangling ones too), then doomed pieces."""
    refs = [r.key for r in content.refs if (r.repo, r.commit) not in keep]
    pieces = [key for revision in doomed for key, _ in content.pieces[revision]]
    return tuple(refs + pieces)


def _freed_blobs(
    store: Store, content: StoreContent, doomed: list[Revision]
) -> dict[str, int]:
    if not doomed:
        return {}
    gone = set(doomed)
    kept = content.referenced(r for r in content.pieces if r not in gone)
    stored = blob_listing(store)
    return {
        sha: stored[sha].size
        for sha in content.referenced(doomed)
        if sha not in kept and sha in stored
    }


def _removal(content: StoreContent, revision: Revision) -> PrunedRevision:
    manifest = content.manifest(revision)
    refs = tuple(sorted(r.name for r in content.refs_naming(revision)))
    return PrunedRevision(
        manifest.repo, manifest.commit, refs, len(manifest.files), manifest.total_size
    )
