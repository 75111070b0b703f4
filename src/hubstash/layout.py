"""Where things live in a store (format version 1).

Every key is relative to the store's root (a folder, or ``s3://bucket/prefix/``)::

    hubstash-store.json                          format marker
    blobs/sha256/<h[:2]>/<h>                     content, named by its SHA-256
    repos/<repo folder>/manifests/<commit>/<p>.json
                                                 manifest pieces, each named by the
                                                 SHA-256 <p> of its own bytes
    repos/<repo folder>/refs/<ref name>          40-hex commit, no newline
    pending/<id>.json                            a push in progress: the blobs it uses
    gc/<id>.json                                 a gc deleting blobs, and the pushes
                                                 it has seen (see ``gcprotocol``)

``<repo folder>`` is the cache's own folder name (``models--acme--tiny``): the Hub
forbids ``--`` inside repo ids, so it is unambiguous even for nested ref names.
Write order: blobs, then manifests, then refs; a reader that sees a ref can rely on
the manifests and blobs below it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from hubstash.errors import StoreFormatError
from hubstash.hashing import is_sha256_name
from hubstash.repos import RepoId, check_ref_name, is_commit

FORMAT_KEY = "hubstash-store.json"
FORMAT_NAME = "hubstash-store"
FORMAT_VERSION = 1
BLOBS = "blobs/sha256/"
REPOS = "repos/"
PENDING = "pending/"
GC_RUNS = "gc/"


def blob_key(sha256: str) -> str:
    return f"{BLOBS}{sha256[:2]}/{sha256}"


def manifest_key(repo: RepoId, commit: str, piece: str) -> str:
    return f"{REPOS}{repo.folder}/manifests/{commit}/{piece}.json"


def ref_key(repo: RepoId, ref: str) -> str:
    return f"{REPOS}{repo.folder}/refs/{ref}"


def pending_key(name: str) -> str:
    return f"{PENDING}{name}.json"


def gc_key(name: str) -> str:
    return f"{GC_RUNS}{name}.json"


def blob_of_key(key: str) -> str | None:
    """The SHA-256 a key under ``blobs/`` stores, or None for any other key."""
    name = key.rsplit("/", 1)[-1]
    return name if is_sha256_name(name) and key == blob_key(name) else None


def format_marker() -> bytes:
    document = {"format": FORMAT_NAME, "version": FORMAT_VERSION}
    return json.dumps(document, indent=2).encode() + b"\n"


def check_format_marker(data: bytes, where: str) -> None:
    """Refuse a store this hubstash cannot read.

    Raises:
        StoreFormatError: not a hubstash store, or one of a newer format version.
    """
    try:
        document = json.loads(data)
        name, version = document["format"], document["version"]
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreFormatError(f"{where} has an unreadable {FORMAT_KEY}") from exc
    if name != FORMAT_NAME or not isinstance(version, int):
        raise StoreFormatError(f"{where} is not a hubstash store ({FORMAT_KEY})")
    if version > FORMAT_VERSION:
        raise StoreFormatError(
            f"{where} uses store format {version}; this hubstash reads"
            f" format {FORMAT_VERSION}",
            hint="upgrade hubstash: pip install -U hubstash",
        )


@dataclass
class RepoIndex:
    """What the store holds for one repo: refs and the manifest pieces per commit."""

    repo: RepoId
    refs: dict[str, str] = field(default_factory=dict)  # ref name -> key
    pieces: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def index_repo_keys(keys: Iterable[str]) -> tuple[dict[RepoId, RepoIndex], list[str]]:
    """Group the keys under ``repos/`` by repo; also return keys that make no sense.

    Unknown keys are returned rather than raised so that a store written by a later
    minor version, or touched by hand, can still be read.
    """
    index: dict[RepoId, RepoIndex] = {}
    strange: list[str] = []
    for key in keys:
        parsed = _parse_repo_key(key)
        if parsed is None:
            strange.append(key)
            continue
        repo, kind, rest = parsed
        entry = index.setdefault(repo, RepoIndex(repo))
        if kind == "refs":
            entry.refs[rest] = key
        else:
            entry.pieces[rest.split("/")[0]].append(key)
    return index, strange


def _parse_repo_key(key: str) -> tuple[RepoId, str, str] | None:
    if not key.startswith(REPOS):
        return None
    folder, _, rest = key[len(REPOS) :].partition("/")
    kind, _, rest = rest.partition("/")
    repo = RepoId.from_folder(folder)
    if repo is None:
        return None
    if kind == "refs" and _valid_ref(rest):
        return repo, kind, rest
    if kind == "manifests" and _valid_piece(rest):
        return repo, kind, rest
    return None


def _valid_ref(name: str) -> bool:
    try:
        check_ref_name(name)
    except ValueError:
        return False
    return True


def _valid_piece(rest: str) -> bool:
    commit, _, name = rest.partition("/")
    return is_commit(commit) and name.endswith(".json") and is_sha256_name(name[:-5])
