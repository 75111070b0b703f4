"""The hashes a Hugging Face cache is named by, computed independently of hubstash.

Tests compare what hubstash writes against these values, so nothing here may import
the library under test.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

LFS_POINTER_VERSION = "https://git-lfs.github.com/spec/v1"
_READ_CHUNK = 1024 * 1024


def sha256_hex(content: bytes) -> str:
    """Return the SHA-256 of `content`: the name of an LFS/Xet blob in the cache."""
    return hashlib.sha256(content).hexdigest()


def git_object_sha1(kind: str, payload: bytes) -> str:
    """Return the id git gives an object of `kind` ("blob", "tree", "commit")."""
    header = b"%s %d\0" % (kind.encode("ascii"), len(payload))
    return hashlib.sha1(header + payload).hexdigest()


def git_blob_sha1(content: bytes) -> str:
    """Return the git blob id of `content`, as `git hash-object` computes it.

    This is the name of a regular (non-LFS) blob in the cache.
    """
    return git_object_sha1("blob", content)


def lfs_pointer(sha256: str, size: int) -> bytes:
    """Return the git LFS pointer text that git stores for an LFS file."""
    text = f"version {LFS_POINTER_VERSION}\noid sha256:{sha256}\nsize {size}\n"
    return text.encode("ascii")


def lfs_pointer_oid(content: bytes) -> str:
    """Return the git oid of the LFS pointer of `content`: its `oid` in a tree."""
    return git_blob_sha1(lfs_pointer(sha256_hex(content), len(content)))


def hub_etag(content: bytes, *, lfs: bool) -> str:
    """Return the ETag the Hub serves for a file, which the client uses as blob name."""
    return sha256_hex(content) if lfs else git_blob_sha1(content)


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def pseudo_random_bytes(seed: str, size: int) -> bytes:
    """Return `size` deterministic bytes that do not compress, derived from `seed`."""
    return random.Random(seed).randbytes(size)
