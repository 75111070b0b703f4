"""Content hashes: how blob names are checked and how store keys are made.

The cache names a blob after the Hub's ETag: the SHA-256 of the content for LFS/Xet
files (64 hex) and the git blob SHA-1 for regular git files (40 hex). The store
addresses content by SHA-256 whatever the name. S3 ETags are never used as hashes:
multipart uploads give ETags that are not digests of the content.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1024 * 1024

_SHA256_NAME = re.compile(r"[0-9a-f]{64}")
_SHA1_NAME = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Digests:
    """What one pass over some content computed."""

    size: int
    sha256: str
    git_sha1: str | None = None


def is_sha256_name(name: str) -> bool:
    return _SHA256_NAME.fullmatch(name) is not None


def is_git_sha1_name(name: str) -> bool:
    return _SHA1_NAME.fullmatch(name) is not None


def is_blob_name(name: str) -> bool:
    """True for the only blob names hubstash accepts: 40 or 64 lowercase hex."""
    return is_sha256_name(name) or is_git_sha1_name(name)


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git LFS pointer file that stands for content in a git repo."""
    return (
        b"version https://git-lfs.github.com/spec/v1\n"
        + f"oid sha256:{sha256}\nsize {size}\n".encode()
    )


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(
        b"blob %d\0" % len(data) + data, usedforsecurity=False
    ).hexdigest()


class StreamHasher:
    """Hashes content as it streams by, for a size known in advance.

    The git blob SHA-1 needs the size before the content, so it is only computed
    when asked for and the size is known.
    """

    def __init__(self, size: int, *, git_sha1: bool) -> None:
        self.expected_size = size
        self.seen = 0
        self._sha256 = hashlib.sha256()
        self._sha1 = None
        if git_sha1:
            self._sha1 = hashlib.sha1(usedforsecurity=False)
            self._sha1.update(b"blob %d\0" % size)

    def update(self, chunk: bytes | memoryview) -> None:
        self.seen += len(chunk)
        self._sha256.update(chunk)
        if self._sha1 is not None:
            self._sha1.update(chunk)

    def digests(self) -> Digests:
        git_sha1 = self._sha1.hexdigest() if self._sha1 is not None else None
        if self.seen != self.expected_size:
            # The SHA-1 header promised another size, so that digest means nothing.
            git_sha1 = None
        return Digests(self.seen, self._sha256.hexdigest(), git_sha1)


def read_chunks(path: Path, chunk: int = CHUNK) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(chunk):
            yield block


def hash_file(path: Path, *, git_sha1: bool = True) -> Digests:
    """Hash a file in one streaming pass; memory stays at one chunk."""
    with open(path, "rb") as f:
        hasher = StreamHasher(os.fstat(f.fileno()).st_size, git_sha1=git_sha1)
        while block := f.read(CHUNK):
            hasher.update(block)
    return hasher.digests()


def name_matches(name: str, digests: Digests) -> bool:
    """Whether content with these digests may carry this blob name.

    A 40-hex name is the git blob SHA-1 of the content, or, for an LFS file cached
    from a server that sent no ``X-Linked-Etag``, the SHA-1 of its LFS pointer.
    """
    if is_sha256_name(name):
        return name == digests.sha256
    if is_git_sha1_name(name):
        pointer = lfs_pointer(digests.sha256, digests.size)
        return name in (digests.git_sha1, git_blob_sha1(pointer))
    return False
