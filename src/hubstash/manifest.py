"""The manifest of one revision: every file's path, blob name, size and SHA-256.

A manifest is what a pull trusts to rebuild a snapshot, so everything read from a
store is validated here before anything is written: paths stay inside the snapshot,
names are hashes, sizes are sane. Pieces of the same revision pushed from different
machines are merged into their union (see the README, "Store format").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hubstash.errors import UnsafeStoreContent
from hubstash.hashing import is_blob_name, is_sha256_name
from hubstash.repos import REPO_TYPES, RepoId, is_commit

FORMAT = "hubstash-manifest"
VERSION = 1

# Far beyond any real file; a bigger claim is a broken or hostile manifest.
MAX_SIZE = 2**50
MAX_PATH = 4096


@dataclass(frozen=True, order=True)
class FileEntry:
    """One file of a revision.

    Attributes:
        path: path in the repo, ``/``-separated, validated to stay inside it.
        blob: the blob name the cache uses (Hub ETag: git SHA-1 or SHA-256).
        size: content size in bytes.
        sha256: SHA-256 of the content: the key of the content in the store.
        mtime_ns: modification time of the blob when it was pushed, if known.
    """

    path: str
    blob: str
    size: int
    sha256: str
    mtime_ns: int | None = None

    @property
    def content(self) -> tuple[str, int, str]:
        """What the file is: its path, size and SHA-256.

        The blob name is left out: a machine whose snapshot holds plain files and
        no tree listing can only name content by its SHA-256, while another names
        the same bytes by their git SHA-1; both names are valid for those bytes.
        """
        return (self.path, self.size, self.sha256)


@dataclass(frozen=True)
class TreeListing:
    """The stored ``trees/<commit>.json`` file: a blob, restored byte for byte."""

    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """Everything hubstash keeps about one revision of one repo."""

    repo: RepoId
    commit: str
    files: tuple[FileEntry, ...] = ()
    no_exist: tuple[str, ...] = ()
    tree: TreeListing | None = None

    def to_json(self) -> bytes:
        """Canonical bytes: sorted, compact, so equal manifests have equal keys."""
        document = {
            "format": FORMAT,
            "version": VERSION,
            "repo": {"type": self.repo.type, "id": self.repo.id},
            "commit": self.commit,
            "files": [_file_json(f) for f in sorted(self.files)],
            "no_exist": sorted(self.no_exist),
            "tree": None if self.tree is None else vars(self.tree),
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    def piece_name(self) -> str:
        """The name of this manifest as an immutable piece: its own SHA-256."""
        return hashlib.sha256(self.to_json()).hexdigest()

    def covers(self, other: Manifest) -> bool:
        """Whether this manifest already says everything ``other`` says."""
        mine = {f.content for f in self.files}
        return (
            all(f.content in mine for f in other.files)
            and set(other.no_exist) <= set(self.no_exist)
            # Any listing of a commit serves; another one adds nothing.
            and (other.tree is None or self.tree is not None)
        )

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def parse_manifest(data: bytes, *, source: str) -> Manifest:
    """Read and validate a manifest piece.

    Raises:
        UnsafeStoreContent: the piece is not valid JSON, of an unknown format, or
            names a path, blob or size that cannot be trusted.
    """
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _unsafe(source, f"not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise _unsafe(source, "not valid JSON (nested too deeply)") from exc
    return _build(_expect(document, dict, source, "manifest"), source)


def merge(pieces: Iterable[Manifest], *, source: str) -> Manifest:
    """The union of the pieces of one revision.

    Raises:
        UnsafeStoreContent: two pieces give one path different content.
    """
    pieces = list(pieces)
    first = pieces[0]
    files: dict[str, FileEntry] = {}
    for entry in (f for p in pieces for f in p.files):
        known = files.get(entry.path)
        if known is not None and known.content != entry.content:
            raise _unsafe(source, f"pieces disagree about {entry.path!r}")
        if known is None or _preferred(entry) < _preferred(known):
            files[entry.path] = entry
    trees = sorted({p.tree for p in pieces if p.tree}, key=lambda t: t.sha256)
    no_exist = sorted({n for p in pieces for n in p.no_exist})
    manifest = Manifest(
        first.repo,
        first.commit,
        tuple(sorted(files.values())),
        tuple(no_exist),
        # Two machines may hold different listings of one commit; both are valid,
        # and picking by hash keeps every reader's choice the same.
        trees[0] if trees else None,
    )
    _check_layout(manifest, source)
    return manifest


def _preferred(entry: FileEntry) -> tuple[bool, str, int]:
    """Order of choice among pieces' entries for one file: smallest first.

    A name that is not the content's SHA-256 wins (the SHA-256 may be only a
    fallback for a snapshot of plain files); then the newest modification time.
    """
    return (entry.blob == entry.sha256, entry.blob, -(entry.mtime_ns or 0))


def check_repo_path(path: str) -> str | None:
    """Why a path from a manifest cannot be used, or None when it is safe.

    Safe means: relative, ``/``-separated, no empty, ``.`` or ``..`` parts, no
    backslash, drive letter or control character, sane length.
    """
    if not path or len(path.encode("utf-8", "surrogatepass")) > MAX_PATH:
        return "empty or too long"
    if path.startswith("/") or "\\" in path:
        return "absolute or with a backslash"
    if len(path) >= 2 and path[1] == ":":
        return "has a drive letter"
    if any(ord(c) < 32 or c == "\x7f" for c in path):
        return "has a control character"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "has an empty, '.' or '..' part"
    return None


def _build(document: Mapping[str, Any], source: str) -> Manifest:
    if document.get("format") != FORMAT:
        raise _unsafe(source, "not a hubstash manifest")
    version = document.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise _unsafe(
            source, f"manifest version {version!r} is newer than this hubstash"
        )
    repo_doc = _expect(document.get("repo"), dict, source, "repo")
    repo_type = _expect(repo_doc.get("type"), str, source, "repo type")
    repo_id = _expect(repo_doc.get("id"), str, source, "repo id")
    if repo_type not in REPO_TYPES:
        raise _unsafe(source, f"unknown repo type {repo_type!r}")
    commit = _expect(document.get("commit"), str, source, "commit")
    if not is_commit(commit):
        raise _unsafe(source, f"commit {commit!r} is not a 40-hex hash")
    files = [
        _entry(f, source) for f in _expect(document.get("files"), list, source, "files")
    ]
    no_exist = [
        _safe_path(p, source)
        for p in _expect(document.get("no_exist", []), list, source, "no_exist")
    ]
    manifest = Manifest(
        _repo(repo_type, repo_id, source),
        commit,
        tuple(sorted(files)),
        tuple(sorted(no_exist)),
        _tree(document.get("tree"), source),
    )
    _check_layout(manifest, source)
    return manifest


def _repo(repo_type: str, repo_id: str, source: str) -> RepoId:
    try:
        return RepoId(repo_type, repo_id)
    except ValueError as exc:
        raise _unsafe(source, str(exc)) from exc


def _entry(raw: object, source: str) -> FileEntry:
    doc = _expect(raw, dict, source, "file entry")
    path = _safe_path(doc.get("path"), source)
    blob = _expect(doc.get("blob"), str, source, f"blob of {path!r}")
    if not is_blob_name(blob):
        raise _unsafe(source, f"blob name {blob!r} of {path!r} is not a 40/64-hex hash")
    sha256 = _expect(doc.get("sha256"), str, source, f"sha256 of {path!r}")
    if not is_sha256_name(sha256):
        raise _unsafe(source, f"sha256 {sha256!r} of {path!r} is not 64 hex")
    mtime = doc.get("mtime_ns")
    if mtime is not None and (not isinstance(mtime, int) or isinstance(mtime, bool)):
        raise _unsafe(source, f"mtime of {path!r} is not an integer")
    return FileEntry(path, blob, _size(doc.get("size"), source, path), sha256, mtime)


def _tree(raw: object, source: str) -> TreeListing | None:
    if raw is None:
        return None
    doc = _expect(raw, dict, source, "tree")
    sha256 = _expect(doc.get("sha256"), str, source, "tree sha256")
    if not is_sha256_name(sha256):
        raise _unsafe(source, "tree sha256 is not 64 hex")
    return TreeListing(sha256, _size(doc.get("size"), source, "tree"))


def _size(raw: object, source: str, what: str) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= MAX_SIZE:
        raise _unsafe(source, f"size {raw!r} of {what!r} is not a sane byte count")
    return raw


def _safe_path(raw: object, source: str) -> str:
    path: str = _expect(raw, str, source, "path")
    why = check_repo_path(path)
    if why is not None:
        raise _unsafe(source, f"path {path!r} is unsafe: {why}")
    return path


def _check_layout(manifest: Manifest, source: str) -> None:
    """Refuse duplicate paths, and a path that is both a file and a folder."""
    paths = [f.path for f in manifest.files]
    if len(paths) != len(set(paths)):
        raise _unsafe(source, "a path is listed twice")
    folders = {p.rsplit("/", i)[0] for p in paths for i in range(1, p.count("/") + 1)}
    clash = folders.intersection(paths)
    if clash:
        raise _unsafe(source, f"{sorted(clash)[0]!r} is both a file and a folder")


def _file_json(entry: FileEntry) -> dict[str, object]:
    document: dict[str, object] = {
        "path": entry.path,
        "blob": entry.blob,
        "size": entry.size,
        "sha256": entry.sha256,
    }
    if entry.mtime_ns is not None:
        document["mtime_ns"] = entry.mtime_ns
    return document


def _expect(value: Any, kind: type, source: str, what: str) -> Any:
    if not isinstance(value, kind):
        raise _unsafe(source, f"{what} is missing or not a {kind.__name__}")
    return value


def _unsafe(source: str, why: str) -> UnsafeStoreContent:
    return UnsafeStoreContent(
        f"refusing manifest {source}: {why}",
        path=source,
        hint="the store may be damaged or written by another tool; nothing was written",
    )
