"""A read-only Hugging Face Hub on 127.0.0.1 that the real `huggingface_hub` client uses.

It answers exactly the calls a download makes (reference §8.11): `HEAD`/`GET` on
`/resolve/`, the repo-info and tree APIs, and Hub error codes. Blob names in the client
cache come from the ETags served here, so they are the real ones: the git blob SHA-1
for regular files and the SHA-256 for LFS files, as on huggingface.co.

Paths are parsed from the raw request target, because a revision such as `refs/pr/1`
arrives as one percent-encoded segment (`refs%2Fpr%2F1`) that must not be split.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, cast
from urllib.parse import parse_qs, unquote

from tests.support.hashes import (
    git_blob_sha1,
    git_object_sha1,
    lfs_pointer,
    sha256_hex,
)

REPO_TYPES = ("model", "dataset", "space", "kernel")
LFS_SUFFIXES = (".safetensors", ".bin", ".onnx")
LFS_MIN_SIZE = 100 * 1024

# `/resolve/` URLs name the repo type by prefix; models have none.
_RESOLVE_PREFIXES = {"datasets": "dataset", "spaces": "space", "kernels": "kernel"}
_API_TYPES = {f"{repo_type}s": repo_type for repo_type in REPO_TYPES}
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_SEND_CHUNK = 1024 * 1024
_IDLE_TIMEOUT_S = 60


@dataclass(frozen=True)
class HubFile:
    """One file of a commit: its path in the repo, its bytes, and whether git stores
    it through LFS (which changes the ETag the Hub serves and so the blob name)."""

    path: str
    content: bytes
    lfs: bool = False


class SeenRequest(NamedTuple):
    """A request the hub received: method and raw request target (no headers kept)."""

    method: str
    path: str


@dataclass(frozen=True)
class _ServedFile:
    """A file with the hashes the Hub advertises for it, computed once."""

    source: HubFile
    git_oid: str
    sha256: str | None
    pointer_size: int | None

    @property
    def etag(self) -> str:
        return self.sha256 if self.sha256 is not None else self.git_oid

    @classmethod
    def of(cls, hub_file: HubFile) -> _ServedFile:
        content = hub_file.content
        if not hub_file.lfs:
            return cls(hub_file, git_blob_sha1(content), None, None)
        digest = sha256_hex(content)
        pointer = lfs_pointer(digest, len(content))
        return cls(hub_file, git_blob_sha1(pointer), digest, len(pointer))


@dataclass(frozen=True)
class _Commit:
    sha: str
    files: Mapping[str, _ServedFile]
    tree_oids: Mapping[str, str]  # folder path ("" for the root) -> git tree id


@dataclass
class _Repo:
    commits: dict[str, _Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)


class _HubError(Exception):
    """An error answer: status, Hub error code and, for missing entries, the commit."""

    def __init__(
        self, status: int, code: str | None, message: str, commit: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.commit = commit


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Mapping[str, str]
    body: bytes | memoryview = b""


class _Catalog:
    """Repos, commits and refs, safe to read from handler threads while tests add."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._repos: dict[tuple[str, str], _Repo] = {}

    def has_repo(self, repo_type: str, repo_id: str) -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def resolve(self, repo_type: str, repo_id: str, revision: str) -> _Commit:
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                raise _HubError(404, "RepoNotFound", f"Repository {repo_id} not found")
            sha = repo.refs.get(revision, revision)
            commit = repo.commits.get(sha) if _COMMIT_RE.fullmatch(sha) else None
        if commit is None:
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    def add_commit(
        self,
        repo_type: str,
        repo_id: str,
        files: Sequence[HubFile],
        refs: Sequence[str],
        parent_revision: str | None,
    ) -> str:
        parent = None
        if parent_revision is not None:
            parent = self.resolve(repo_type, repo_id, parent_revision)
        commit = _make_commit(repo_type, repo_id, files, parent)
        with self._lock:
            repo = self._repos.setdefault((repo_type, repo_id), _Repo())
            repo.commits[commit.sha] = commit
            repo.refs.update(dict.fromkeys(refs, commit.sha))
        return commit.sha


def _make_commit(
    repo_type: str, repo_id: str, files: Sequence[HubFile], parent: _Commit | None
) -> _Commit:
    served = dict(parent.files) if parent is not None else {}
    served.update((f.path, _ServedFile.of(f)) for f in files)
    tree_oids = _git_tree_oids(served)

    # A git-shaped commit object makes the sha deterministic, and the repo name in the
    # message keeps identical trees in two repos from sharing a commit.
    lines = [f"tree {tree_oids['']}"]
    if parent is not None:
        lines.append(f"parent {parent.sha}")
    lines += ["author fake-hub <hub@localhost> 0 +0000"] * 1
    lines += ["committer fake-hub <hub@localhost> 0 +0000", "", f"{repo_type}/{repo_id}"]
    sha = git_object_sha1("commit", ("\n".join(lines) + "\n").encode())
    return _Commit(sha, served, tree_oids)


def _folders_of(paths: Iterable[str]) -> set[str]:
    """Every folder that holds one of `paths`, with "" for the repo root."""
    folders = {""}
    for path in paths:
        parts = path.split("/")[:-1]
        folders.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return folders


def _parent_and_name(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    return parent, name


def _git_tree_oids(files: Mapping[str, _ServedFile]) -> dict[str, str]:
    """Return the git tree id of every folder, computed bottom-up as git does."""
    folders = _folders_of(files)
    entries: dict[str, list[tuple[bytes, bytes]]] = {folder: [] for folder in folders}
    for path, served in files.items():
        parent, name = _parent_and_name(path)
        entries[parent].append((name.encode(), b"100644 %s\0" % name.encode()))
        entries[parent][-1] = (entries[parent][-1][0], entries[parent][-1][1])
        entries[parent][-1] = (
            entries[parent][-1][0],
            entries[parent][-1][1] + bytes.fromhex(served.git_oid),
        )
    oids: dict[str, str] = {}
    for folder in sorted(folders, key=lambda f: f.count("/") + bool(f), reverse=True):
        # git orders a folder as if its name ended with "/".
        ordered = sorted(entries[folder], key=lambda entry: entry[0])
        oids[folder] = git_object_sha1("tree", b"".join(raw for _, raw in ordered))
        if folder:
            parent, name = _parent_and_name(folder)
            raw = b"40000 %s\0" % name.encode() + bytes.fromhex(oids[folder])
            entries[parent].append((name.encode() + b"/", raw))
    return oids
