"""Everything a store's manifests and refs say, read piece by piece.

``stats``, ``prune`` and ``gc`` need the whole store, not one revision: which blobs
each manifest piece names (a merged manifest keeps one tree listing of a revision,
while every piece's listing is stored), and which refs name which commit. Deleting
on partial knowledge would lose content, so anything unreadable here is an error,
never skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hubstash import layout
from hubstash.errors import StoreFormatError, UnsafeStoreContent
from hubstash.manifest import Manifest, merge, parse_manifest
from hubstash.repos import RepoId, is_commit
from hubstash.stores import Store, StoreObject
from hubstash.storeview import StoreView
from hubstash.transfer import DEFAULT_JOBS

Revision = tuple[RepoId, str]


@dataclass(frozen=True)
class StoredRef:
    """One ref of the store."""

    repo: RepoId
    name: str
    commit: str
    key: str


@dataclass(frozen=True)
class StoreContent:
    """The manifest pieces and refs of a store.

    Attributes:
        pieces: every piece of every revision, with its key.
        refs: every ref.
        key_sizes: bytes of every key under ``repos/``.
    """

    pieces: Mapping[Revision, tuple[tuple[str, Manifest], ...]]
    refs: tuple[StoredRef, ...]
    key_sizes: Mapping[str, int]

    def manifest(self, revision: Revision) -> Manifest:
        """The merged manifest of a revision, as a pull reads it."""
        repo, commit = revision
        return merge((p for _, p in self.pieces[revision]), source=f"{repo}@{commit}")

    def manifests(self) -> Iterator[Manifest]:
        return (self.manifest(revision) for revision in sorted(self.pieces))

    def referenced(self, revisions: Iterable[Revision] | None = None) -> dict[str, int]:
        """SHA-256 to size of every blob the pieces of these revisions (all by
        default) name: file contents and tree listings."""
        wanted = self.pieces if revisions is None else revisions
        return {
            sha: size
            for revision in wanted
            for _, piece in self.pieces[revision]
            for sha, size in blobs_of(piece).items()
        }

    def refs_naming(self, revision: Revision) -> tuple[StoredRef, ...]:
        repo, commit = revision
        return tuple(r for r in self.refs if r.repo == repo and r.commit == commit)


def blobs_of(manifest: Manifest) -> dict[str, int]:
    """SHA-256 to size of every blob a manifest names."""
    blobs = {f.sha256: f.size for f in manifest.files}
    if manifest.tree is not None:
        blobs[manifest.tree.sha256] = manifest.tree.size
    return blobs


def read_store_content(store: Store, *, jobs: int = DEFAULT_JOBS) -> StoreContent:
    """Read and validate every manifest piece and ref of a store.

    Raises:
        NotFound: the store is not a hubstash store.
        StoreFormatError: the store is of a newer format, or holds keys under
            ``repos/`` that this version cannot read (they might name blobs).
        UnsafeStoreContent: a piece or a ref is invalid.
    """
    view = StoreView(store, jobs)
    view.require_format()
    objects = list(store.listing(layout.REPOS))
    index, strange = layout.index_repo_keys(o.key for o in objects)
    if strange:
        raise StoreFormatError(
            f"the store holds {strange[0]}, which this hubstash cannot read",
            hint="upgrade hubstash, or remove that object if it was put there by hand",
        )
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        refs = list(pool.map(lambda ref: _read_ref(store, *ref), _ref_keys(index)))
        pieces = dict(
            pool.map(lambda item: _read_pieces(store, *item), _piece_keys(index))
        )
    return StoreContent(pieces, tuple(refs), {o.key: o.size for o in objects})


def blob_listing(store: Store) -> dict[str, StoreObject]:
    """Every blob of the store by SHA-256; other keys under ``blobs/`` are left out."""
    blobs: dict[str, StoreObject] = {}
    for obj in store.listing(layout.BLOBS):
        sha = layout.blob_of_key(obj.key)
        if sha is not None:
            blobs[sha] = obj
    return blobs


def _ref_keys(
    index: Mapping[RepoId, layout.RepoIndex],
) -> list[tuple[RepoId, str, str]]:
    return [
        (repo, name, key)
        for repo, entry in sorted(index.items())
        for name, key in sorted(entry.refs.items())
    ]


def _piece_keys(
    index: Mapping[RepoId, layout.RepoIndex],
) -> list[tuple[Revision, list[str]]]:
    return [
        ((repo, commit), sorted(keys))
        for repo, entry in sorted(index.items())
        for commit, keys in sorted(entry.pieces.items())
    ]


def _read_ref(store: Store, repo: RepoId, name: str, key: str) -> StoredRef:
    raw = store.read(key)
    commit = raw.decode("ascii", "replace")
    if not is_commit(commit):
        raise UnsafeStoreContent(
            f"store ref {key} does not hold a commit hash",
            path=key,
            expected="40 hex characters",
            actual=repr(raw[:60]),
        )
    return StoredRef(repo, name, commit, key)


def _read_pieces(
    store: Store, revision: Revision, keys: list[str]
) -> tuple[Revision, tuple[tuple[str, Manifest], ...]]:
    pieces = []
    for key in keys:
        piece = parse_manifest(store.read(key), source=key)
        if (piece.repo, piece.commit) != revision:
            raise UnsafeStoreContent(
                f"manifest {key} describes {piece.repo}@{piece.commit}", path=key
            )
        pieces.append((key, piece))
    return revision, tuple(pieces)
