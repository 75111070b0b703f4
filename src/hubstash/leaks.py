"""Finding Hugging Face tokens that old sync recipes left in a store or a folder.

A leak is reported by its key (or path) and the reason it was flagged, never by its
value: no part of a token beyond ``hf_`` is ever kept, logged or printed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hubstash.errors import HubstashError
from hubstash.stores import StoreObject
from hubstash.transfer import DEFAULT_JOBS, run_all

# User access tokens, as the Hub issues them; the fake ones of tests match too.
TOKEN_PATTERN = re.compile(rb"hf_[A-Za-z0-9]{30,}")
# Token files are a line or an INI file; only objects this small are read.
SMALL_OBJECT = 4 * 1024
HOLDS_TOKEN = "holds an HF token (hf_…)"
ROTATE_HINT = (
    "rotate the token at https://huggingface.co/settings/tokens, then delete the object"
)


@dataclass(frozen=True)
class Leak:
    """An object that holds, or is named like, a Hub token.

    Attributes:
        key: the store key or path, relative to the root scanned.
        reason: why it was flagged; never any part of the secret.
    """

    key: str
    reason: str


@dataclass(frozen=True)
class LeakScan:
    """What a scan found.

    Attributes:
        leaks: the objects flagged, by key.
        read: how many small objects were read.
        unreadable: small objects that could not be read (not checked).
    """

    leaks: tuple[Leak, ...]
    read: int
    unreadable: tuple[str, ...]


def find_leaks(
    objects: Sequence[StoreObject],
    read: Callable[[str], bytes],
    *,
    secret_name: Callable[[str], str | None],
    jobs: int = DEFAULT_JOBS,
) -> LeakScan:
    """Flag objects named like token files, and small objects that hold a token.

    Args:
        objects: what to scan, with sizes.
        read: the bytes of one object; only objects under ``SMALL_OBJECT`` bytes
            are read. Raises a ``HubstashError`` when it cannot read.
        secret_name: why a key names a secret (a token file), or None.
        jobs: concurrent reads.
    """
    small = [o.key for o in objects if 0 < o.size < SMALL_OBJECT]
    holding, unreadable = _holding_tokens(small, read, jobs)
    leaks = []
    for obj in objects:
        reason = HOLDS_TOKEN if obj.key in holding else secret_name(obj.key)
        if reason is not None:
            leaks.append(Leak(obj.key, reason))
    return LeakScan(tuple(leaks), len(small) - len(unreadable), unreadable)


def _holds_token(data: bytes) -> bool:
    return TOKEN_PATTERN.search(data) is not None


def _holding_tokens(
    keys: list[str], read: Callable[[str], bytes], jobs: int
) -> tuple[set[str], tuple[str, ...]]:
    holding: set[str] = set()
    unreadable: list[str] = []

    def check(key: str) -> bool:
        return _holds_token(read(key)[:SMALL_OBJECT])

    for key, result in run_all(keys, check, jobs):
        if isinstance(result, HubstashError):
            unreadable.append(key)
        elif result:
            holding.add(key)
    return holding, tuple(unreadable)
