"""gc: delete the blobs of a store that no manifest names.

A plan comes first (what would go, what stays and why); running it follows the
protocol of ``gcprotocol``, so a push running at the same time never loses a blob
it relies on. Blobs younger than the grace period are always kept, as are blobs a
push in progress has announced.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from hubstash import layout
from hubstash.gcprotocol import (
    GC_DELETED,
    GC_DELETING,
    REAL_TIME,
    GcRun,
    Hooks,
    read_pending,
    stale_gc_records,
)
from hubstash.stats import DEFAULT_PRICE_PER_GB, monthly_cost
from hubstash.storecontent import blob_listing, read_store_content
from hubstash.stores import Store
from hubstash.transfer import DEFAULT_JOBS

DEFAULT_GRACE = 7 * 86400.0
MAX_BATCH = 1000


@dataclass(frozen=True)
class PlannedBlob:
    """A blob a gc would delete."""

    sha256: str
    size: int


@dataclass(frozen=True)
class GcPlan:
    """What a gc would delete, and what it keeps and why.

    Attributes:
        store: the store's URL.
        grace_seconds: blobs written more recently than this are kept.
        referenced_blobs: blobs a manifest names.
        young_blobs: blobs no manifest names, kept for being younger than the grace.
        young_bytes: their bytes.
        pending_blobs: blobs no manifest names yet, announced by a push in progress.
        pending_bytes: their bytes.
        blobs: every blob to delete.
        bytes: their bytes.
        records: leftovers of pushes and gcs that died (``pending/``, ``gc/``),
            deleted too.
        price_per_gb: the price used, per 10^9 bytes and month.
        monthly_saving: what deleting ``blobs`` saves per month.
    """

    store: str
    grace_seconds: float
    referenced_blobs: int
    young_blobs: int
    young_bytes: int
    pending_blobs: int
    pending_bytes: int
    blobs: tuple[PlannedBlob, ...]
    bytes: int
    records: tuple[str, ...]
    price_per_gb: float
    monthly_saving: float


@dataclass(frozen=True)
class GcResult:
    """What a gc deleted.

    Attributes:
        store: the store's URL.
        deleted_blobs: blobs deleted.
        deleted_bytes: their bytes.
        spared_blobs: planned blobs kept because a push began to use them while the
            gc ran.
        deleted_records: leftover records deleted.
        monthly_saving: what the deleted blobs cost per month.
        seconds: wall time.
    """

    store: str
    deleted_blobs: int
    deleted_bytes: int
    spared_blobs: int
    deleted_records: int
    monthly_saving: float
    seconds: float


def plan_gc(
    store: Store,
    *,
    grace_seconds: float = DEFAULT_GRACE,
    price_per_gb: float = DEFAULT_PRICE_PER_GB,
    hooks: Hooks = REAL_TIME,
    jobs: int = DEFAULT_JOBS,
) -> GcPlan:
    """Find the blobs no manifest names and that are older than the grace period.

    Reads every manifest piece, the blob listing and the pending records; writes
    nothing.

    Raises:
        NotFound: the store is not a hubstash store.
        StoreFormatError: the store holds keys this version cannot read; deleting
            blobs they might name is refused.
        UnsafeStoreContent: a manifest piece, ref or pending record is invalid.
    """
    referenced = read_store_content(store, jobs=jobs).referenced()
    blobs = blob_listing(store)
    live, abandoned = read_pending(store, hooks)
    announced = {sha for push in live for sha in push.blobs}
    cutoff = hooks.now() - grace_seconds
    young: list[int] = []
    pending: list[int] = []
    doomed: list[PlannedBlob] = []
    for sha, obj in sorted(blobs.items()):
        if sha in referenced:
            continue
        if sha in announced:
            pending.append(obj.size)
        elif obj.modified is None or obj.modified > cutoff:
            young.append(obj.size)
        else:
            doomed.append(PlannedBlob(sha, obj.size))
    freed = sum(blob.size for blob in doomed)
    return GcPlan(
        store=store.url,
        grace_seconds=grace_seconds,
        referenced_blobs=len(blobs) - len(young) - len(pending) - len(doomed),
        young_blobs=len(young),
        young_bytes=sum(young),
        pending_blobs=len(pending),
        pending_bytes=sum(pending),
        blobs=tuple(doomed),
        bytes=freed,
        records=tuple(abandoned + stale_gc_records(store, hooks)),
        price_per_gb=price_per_gb,
        monthly_saving=monthly_cost(freed, price_per_gb),
    )


def run_gc(
    store: Store,
    plan: GcPlan,
    *,
    hooks: Hooks = REAL_TIME,
    batch_size: int = MAX_BATCH,
    jobs: int = DEFAULT_JOBS,
) -> GcResult:
    """Delete the planned blobs that are still unused, then the leftover records.

    Before each delete request (of at most ``batch_size`` blobs) the pending
    records are read again and acknowledged, and before the first the manifests
    too: a blob that became used since the plan is spared.

    Raises:
        AccessDenied: the credentials may not delete.
        UnsafeStoreContent: a manifest piece or pending record became unreadable.
    """
    started = time.monotonic()
    deleted = _delete_unused(store, plan.blobs, hooks, batch_size, jobs)
    store.delete(plan.records)
    freed = sum(blob.size for blob in deleted)
    return GcResult(
        store=store.url,
        deleted_blobs=len(deleted),
        deleted_bytes=freed,
        spared_blobs=len(plan.blobs) - len(deleted),
        deleted_records=len(plan.records),
        monthly_saving=monthly_cost(freed, plan.price_per_gb),
        seconds=time.monotonic() - started,
    )


def _delete_unused(
    store: Store,
    blobs: Sequence[PlannedBlob],
    hooks: Hooks,
    batch_size: int,
    jobs: int,
) -> list[PlannedBlob]:
    """Delete in batches, each after reading (and acknowledging) pending records."""
    if not blobs:
        return []
    run = GcRun(store, hooks)
    run.start()
    deleted: list[PlannedBlob] = []
    try:
        kept = run.check() | set(read_store_content(store, jobs=jobs).referenced())
        for number, batch in enumerate(_batches(blobs, batch_size)):
            if number:
                kept |= run.check()
            doomed = [blob for blob in batch if blob.sha256 not in kept]
            hooks.reached(GC_DELETING)
            store.delete([layout.blob_key(blob.sha256) for blob in doomed])
            deleted += doomed
            hooks.reached(GC_DELETED)
    finally:
        run.finish()
    return deleted


def _batches(
    items: Sequence[PlannedBlob], size: int
) -> Iterator[Sequence[PlannedBlob]]:
    step = max(1, min(size, MAX_BATCH))
    for start in range(0, len(items), step):
        yield items[start : start + step]
