"""What a copy of a Hugging Face cache made by a generic sync tool holds, path by path.

``aws s3 sync ~/.cache/huggingface s3://bucket/cache/`` (or the same of its ``hub/``
folder) copies everything it finds: the repo folders, with every snapshot link
followed into a full copy, and also what lies beside them — the client's lock files,
partial downloads, hf_xet's caches and the tokens kept in ``HF_HOME``. Only repo
content is worth adopting; the rest is left behind, tokens reported.

Paths are relative to the root of the copy, ``/``-separated (store keys, or folder
paths made posix).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from hubstash.hashing import is_blob_name, is_sha256_name
from hubstash.manifest import check_repo_path
from hubstash.repos import RepoId, is_commit


class Kind(enum.Enum):
    """What one path of a copy is."""

    CONTENT = "content"  # a repo folder's snapshots, blobs, refs, trees, .no_exist
    LOCK = "lock"  # the client's .locks/
    PARTIAL = "partial"  # partial downloads and temporary files
    SECRET = "secret"  # tokens and sandbox state kept in HF_HOME
    OTHER = "other"  # xet/, assets/, CACHEDIR.TAG, the shared blob store, ...


_REPO_AREAS = ("snapshots", "blobs", "refs", "trees", ".no_exist")
_SECRET_FILES = {
    "token": "is the Hub client's token file",
    "stored_tokens": "is the Hub client's stored tokens file",
}
_SANDBOX = "holds the Hub client's sandbox state (derived from the token)"


def hub_prefix(paths: Iterable[str]) -> str:
    """Where the Hub cache is in a copy: ``""`` (a copy of ``hub/``) or ``"hub/"``.

    A copy with repo folders at its root is a copy of the cache itself; one without
    them but with a ``hub/`` folder is a copy of ``HF_HOME``.
    """
    firsts = {path.split("/", 1)[0] for path in paths}
    if any(RepoId.from_folder(name) is not None for name in firsts):
        return ""
    return "hub/" if "hub" in firsts else ""


def classify(path: str, hub: str) -> Kind:
    """What ``path`` is in a copy whose Hub cache is at ``hub`` (see ``hub_prefix``)."""
    if check_repo_path(path) is not None:
        return Kind.OTHER
    if path.startswith(hub):
        inner = path[len(hub) :].split("/")
        if inner[0] == ".locks":
            return Kind.LOCK
        if len(inner) >= 3 and inner[1] in _REPO_AREAS and RepoId.from_folder(inner[0]):
            return _repo_entry(inner[1], inner[2:])
    return Kind.SECRET if secret_reason(path) else Kind.OTHER


def secret_reason(path: str) -> str | None:
    """Why a path names a secret the client keeps beside the cache, or None."""
    parts = path.split("/")
    if parts[-1] in _SECRET_FILES:
        return _SECRET_FILES[parts[-1]]
    if parts[0] == "sandbox":
        return _SANDBOX
    return None


def holds_cache(paths: Iterable[str]) -> bool:
    """Whether a copy holds any repo content at all."""
    paths = list(paths)
    hub = hub_prefix(paths)
    return any(classify(path, hub) is Kind.CONTENT for path in paths)


def is_blob_copy(path: str, hub: str) -> bool:
    """Whether ``path`` is a repo blob named by its own SHA-256.

    In a copy made by following links, every snapshot file is a full copy of its
    blob, so such a blob adds nothing: its name is the SHA-256 push computes from
    the snapshot copy anyway. Blobs named by a git SHA-1 do add something: their
    name, which the snapshot copy alone cannot give.
    """
    if classify(path, hub) is not Kind.CONTENT:
        return False
    inner = path[len(hub) :].split("/")
    return inner[1] == "blobs" and is_sha256_name(inner[2])


def _repo_entry(area: str, rest: list[str]) -> Kind:
    name = rest[-1]
    if name.endswith(".incomplete"):
        return Kind.PARTIAL
    if area == "blobs" and (len(rest) != 1 or not is_blob_name(name)):
        return Kind.PARTIAL
    if area == "trees" and not (name.endswith(".json") and is_commit(name[:-5])):
        return Kind.PARTIAL
    return Kind.CONTENT
