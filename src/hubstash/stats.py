"""What a store holds and costs: objects, bytes, what deduplication saves."""

from __future__ import annotations

from dataclasses import dataclass

from hubstash.manifest import Manifest
from hubstash.storecontent import blob_listing, read_store_content
from hubstash.stores import Store
from hubstash.transfer import DEFAULT_JOBS

#: S3 Standard in us-east-1, first 50 TB, per GB (10^9 bytes) and month.
DEFAULT_PRICE_PER_GB = 0.023


@dataclass(frozen=True)
class StoreStats:
    """Sizes and costs of one store.

    Attributes:
        store: the store's URL.
        objects: every object, of every kind.
        stored_bytes: their bytes: what the store is billed for.
        blobs: objects under ``blobs/``.
        blob_bytes: their bytes.
        repos: repos with at least one revision.
        revisions: revisions (commits with a manifest).
        logical_bytes: every revision's files added up: what a plain copy that
            follows links (``aws s3 sync`` of a cache) stores.
        unique_bytes: the distinct file contents of all revisions.
        saved_bytes: ``logical_bytes - unique_bytes``, what storing each content
            once saves.
        pull_blobs: distinct blobs a full pull into an empty cache downloads (file
            contents and tree listings).
        pull_bytes: their bytes.
        unreferenced_blobs: blobs no manifest names (``gc`` deletes them once they
            are older than its grace period).
        unreferenced_bytes: their bytes.
        price_per_gb: the price used, per 10^9 bytes and month.
        monthly_cost: ``stored_bytes / 10^9 * price_per_gb``.
    """

    store: str
    objects: int
    stored_bytes: int
    blobs: int
    blob_bytes: int
    repos: int
    revisions: int
    logical_bytes: int
    unique_bytes: int
    saved_bytes: int
    pull_blobs: int
    pull_bytes: int
    unreferenced_blobs: int
    unreferenced_bytes: int
    price_per_gb: float
    monthly_cost: float


def monthly_cost(nbytes: int, price_per_gb: float) -> float:
    """What storing ``nbytes`` costs per month at a price per 10^9 bytes."""
    return nbytes / 1e9 * price_per_gb


def store_stats(
    store: Store,
    *,
    price_per_gb: float = DEFAULT_PRICE_PER_GB,
    jobs: int = DEFAULT_JOBS,
) -> StoreStats:
    """Count what a store holds. Reads every manifest piece and ref; writes nothing.

    Raises:
        NotFound: the store is not a hubstash store.
        UnsafeStoreContent: a manifest piece or ref is invalid.
    """
    content = read_store_content(store, jobs=jobs)
    manifests = list(content.manifests())
    objects = list(store.listing(""))
    blobs = {sha: obj.size for sha, obj in blob_listing(store).items()}
    unique, pulled = _distinct_contents(manifests)
    referenced = content.referenced()
    unreferenced = [size for sha, size in blobs.items() if sha not in referenced]
    logical = sum(m.total_size for m in manifests)
    stored = sum(o.size for o in objects)
    return StoreStats(
        store=store.url,
        objects=len(objects),
        stored_bytes=stored,
        blobs=len(blobs),
        blob_bytes=sum(blobs.values()),
        repos=len({repo for repo, _ in content.pieces}),
        revisions=len(content.pieces),
        logical_bytes=logical,
        unique_bytes=sum(unique.values()),
        saved_bytes=logical - sum(unique.values()),
        pull_blobs=len(pulled),
        pull_bytes=sum(pulled.values()),
        unreferenced_blobs=len(unreferenced),
        unreferenced_bytes=sum(unreferenced),
        price_per_gb=price_per_gb,
        monthly_cost=monthly_cost(stored, price_per_gb),
    )


def _distinct_contents(
    manifests: list[Manifest],
) -> tuple[dict[str, int], dict[str, int]]:
    """Distinct file contents, and distinct blobs a pull of every revision reads."""
    files: dict[str, int] = {}
    pulled: dict[str, int] = {}
    for manifest in manifests:
        files.update((f.sha256, f.size) for f in manifest.files)
        pulled.update((f.sha256, f.size) for f in manifest.files)
        if manifest.tree is not None:
            pulled[manifest.tree.sha256] = manifest.tree.size
    return files, pulled
