"""Reading a store through its format: the marker, the repo index, refs, manifests."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from hubstash import layout
from hubstash.errors import NotFound, UnsafeStoreContent
from hubstash.manifest import Manifest, merge, parse_manifest
from hubstash.repos import RepoId, RepoSpec, is_commit
from hubstash.stores import Store

logger = logging.getLogger(__name__)


class StoreView:
    """A reader of one store that lists it at most once per operation."""

    def __init__(self, store: Store, jobs: int = 8) -> None:
        self.store = store
        self.jobs = jobs
        self._index: dict[RepoId, layout.RepoIndex] | None = None

    def check_format(self, *, create: bool = False) -> bool:
        """Check the format marker; write it when ``create`` and it is missing.

        Returns:
            Whether the store has a marker now.

        Raises:
            StoreFormatError: the store is of a newer format, or not a hubstash store.
        """
        data = self.store.read_optional(layout.FORMAT_KEY)
        if data is not None:
            layout.check_format_marker(data, self.store.url)
            return True
        if create:
            self.store.write(layout.FORMAT_KEY, layout.format_marker())
            return True
        return False

    def require_format(self) -> None:
        """Like ``check_format``, but a store without a marker is an error.

        Raises:
            NotFound: nothing was ever pushed to this store.
        """
        if not self.check_format():
            raise NotFound(
                f"{self.store.url} is not a hubstash store (no {layout.FORMAT_KEY})",
                hint="check the store URL, or push to it first",
            )

    def index(self) -> dict[RepoId, layout.RepoIndex]:
        if self._index is None:
            keys = (o.key for o in self.store.listing(layout.REPOS))
            self._index, strange = layout.index_repo_keys(keys)
            for key in strange:
                logger.warning("ignoring unexpected store key %s", key)
        return self._index

    def repo(self, repo: RepoId) -> layout.RepoIndex:
        entry = self.index().get(repo)
        if entry is None or not entry.pieces:
            raise NotFound(f"{repo} is not in the store {self.store.url}")
        return entry

    def ref(self, repo: RepoId, name: str) -> str:
        """The commit a ref of the store names, validated.

        Raises:
            NotFound: the repo has no such ref.
            UnsafeStoreContent: the ref does not hold a commit hash.
        """
        entry = self.repo(repo)
        if name not in entry.refs:
            known = ", ".join(sorted(entry.refs)) or "none"
            raise NotFound(f"{repo}@{name}: no such ref in the store (refs: {known})")
        raw = self.store.read(entry.refs[name])
        commit = raw.decode("ascii", "replace")
        if not is_commit(commit):
            raise UnsafeStoreContent(
                f"store ref {entry.refs[name]} does not hold a commit hash",
                path=entry.refs[name],
                expected="40 hex characters",
                actual=repr(raw[:60]),
            )
        return commit

    def refs(self, repo: RepoId) -> dict[str, str]:
        names = sorted(self.repo(repo).refs)
        with ThreadPoolExecutor(self.jobs) as pool:
            commits = list(pool.map(lambda n: self.ref(repo, n), names))
        return dict(zip(names, commits, strict=True))

    def resolve(self, spec: RepoSpec) -> str:
        """The commit a ``REPO@REV`` names in the store."""
        assert spec.revision is not None
        if is_commit(spec.revision):
            if spec.revision not in self.repo(spec.repo).pieces:
                raise NotFound(f"{spec}: the store has no manifest of that commit")
            return spec.revision
        return self.ref(spec.repo, spec.revision)

    def manifest(self, repo: RepoId, commit: str) -> Manifest:
        """The merged manifest of one revision, every piece validated.

        Raises:
            NotFound: the store has no manifest of that revision.
            UnsafeStoreContent: a piece is invalid or belongs elsewhere.
        """
        keys = self.repo(repo).pieces.get(commit)
        if not keys:
            raise NotFound(f"{repo}@{commit}: the store has no manifest of that commit")
        pieces = [self._piece(key, repo, commit) for key in keys]
        return merge(pieces, source=f"{repo}@{commit}")

    def manifests(self, wanted: Iterable[tuple[RepoId, str]]) -> list[Manifest]:
        with ThreadPoolExecutor(self.jobs) as pool:
            return list(pool.map(lambda rc: self.manifest(*rc), wanted))

    def blob_sizes(self) -> dict[str, int]:
        """SHA-256 to size of every blob the store holds."""
        sizes: dict[str, int] = {}
        for obj in self.store.listing(layout.BLOBS):
            sizes[obj.key.rsplit("/", 1)[-1]] = obj.size
        return sizes

    def _piece(self, key: str, repo: RepoId, commit: str) -> Manifest:
        piece = parse_manifest(self.store.read(key), source=key)
        if piece.repo != repo or piece.commit != commit:
            raise UnsafeStoreContent(
                f"manifest {key} describes {piece.repo}@{piece.commit}", path=key
            )
        return piece
