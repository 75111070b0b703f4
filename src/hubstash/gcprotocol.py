"""How a push and a gc share one store without losing a blob.

The danger: a push lists the store's blobs, finds X and does not upload it; a gc
that read the manifests before the push wrote one naming X deletes X; the push's
manifest now names a blob the store lacks. Not every S3-compatible service offers
conditional writes, so push and gc coordinate with plain PUT, LIST and DELETE of
small records, and rely only on read-after-write consistency (a listing shows every
object whose PUT has returned):

``pending/<id>.json``
    written by a push after hashing and before uploading: the SHA-256 of every blob
    its manifests will name. Deleted when the push has confirmed them.
``gc/<id>.json``
    written by a gc before it deletes anything, and rewritten before every delete
    request, acknowledging the pending records it has read. Deleted at its end.

A push writes its pending record, uploads, writes manifests and refs, then waits
until every gc record it lists acknowledges it (or is gone, or is stale), then
checks that every blob it names is stored and uploads any that is not, and last
deletes its pending record. A gc writes its record, then before each delete request
reads the pending records, adds their blobs to what it keeps and rewrites its record
to acknowledge them; before the first request it also reads the manifests again.

The README ("Deleting while others push") gives the argument for why no interleaving
loses a blob. ``Hooks`` are where tests pause a push and a gc at these steps.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hubstash import layout
from hubstash.errors import HubstashError, UnsafeStoreContent
from hubstash.hashing import is_sha256_name
from hubstash.stores import Store, StoreObject
from hubstash.transfer import DEFAULT_JOBS

logger = logging.getLogger(__name__)

DAY = 86400.0
#: A pending record this old is from a push that died: gc ignores and deletes it.
PENDING_TTL = 7 * DAY
#: A gc record not rewritten for this long is from a gc that died. S3 refuses
#: requests from clocks more than 15 minutes off, so a live gc's record never looks
#: this old to a client of the same store.
GC_LEASE = 30 * 60.0
POLL_SECONDS = 1.0

PENDING_FORMAT = "hubstash-pending"
GC_FORMAT = "hubstash-gc"

# The steps at which ``Hooks.reached`` is called.
PUSH_ANNOUNCED = "push: pending record written"
PUSH_WAITING = "push: waiting for a gc to acknowledge it"
PUSH_CONFIRMED = "push: blobs confirmed"
GC_CHECKED = "gc: pending records read and acknowledged"
GC_DELETING = "gc: about to send a delete request"
GC_DELETED = "gc: delete request done"


class Hooks:
    """The clock push and gc read, and the steps they report reaching.

    The defaults are real time and doing nothing; tests replace them to pause a push
    and a gc at chosen steps and to run without waiting.
    """

    def reached(self, step: str) -> None:
        """Called at each step named by the constants of this module."""

    def now(self) -> float:
        """Seconds since the epoch, compared with the store's modification times."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


REAL_TIME = Hooks()


@dataclass(frozen=True)
class PendingPush:
    """A push in progress, as its record announces it."""

    key: str
    blobs: frozenset[str]


class PushGuard:
    """One push's side of the protocol. Does nothing when it was not announced."""

    def __init__(
        self,
        store: Store,
        blobs: Mapping[str, int],
        hooks: Hooks = REAL_TIME,
        jobs: int = DEFAULT_JOBS,
    ) -> None:
        self.store = store
        self.blobs = dict(blobs)
        self.hooks = hooks
        self.jobs = jobs
        self.key: str | None = None

    def announce(self) -> None:
        """Write the pending record: from now on a gc keeps these blobs, or this
        push waits for it."""
        if not self.blobs:
            return
        self.key = layout.pending_key(uuid.uuid4().hex)
        self.store.write(self.key, _pending_document(self.blobs, self.hooks.now()))
        self.hooks.reached(PUSH_ANNOUNCED)

    def confirm(self, reupload: Callable[[dict[str, int]], None]) -> int:
        """After the manifests are written: wait until no gc can still delete
        blindly, then upload again every named blob the store lacks.

        Returns:
            How many blobs had to be uploaded again.
        """
        if self.key is None:
            return 0
        self._wait_for_gcs()
        missing = self._missing()
        if missing:
            logger.warning(
                "%d blobs this push uses were deleted by a gc running at the same"
                " time; uploading them again",
                len(missing),
            )
            reupload(missing)
        self.hooks.reached(PUSH_CONFIRMED)
        return len(missing)

    def release(self) -> None:
        """Delete the pending record (a failure to do so only delays a gc)."""
        if self.key is None:
            return
        try:
            self.store.delete([self.key])
        except HubstashError as exc:
            logger.warning(
                "could not delete %s (%s); gc removes it after %d days",
                self.key,
                exc,
                PENDING_TTL // DAY,
            )
        self.key = None

    def _wait_for_gcs(self) -> None:
        told: set[str] = set()
        while waiting := self._unacknowledging_gcs():
            for key in sorted(waiting - told):
                logger.warning("waiting for the gc %s to see this push", key)
            told |= waiting
            self.hooks.reached(PUSH_WAITING)
            self.hooks.sleep(POLL_SECONDS)

    def _unacknowledging_gcs(self) -> set[str]:
        waiting: set[str] = set()
        for obj in self.store.listing(layout.GC_RUNS):
            if is_stale_gc(obj, self.hooks):
                logger.warning(
                    "ignoring %s: not updated for over %d minutes, that gc stopped",
                    obj.key,
                    GC_LEASE // 60,
                )
                continue
            data = self.store.read_optional(obj.key)
            if data is not None and self.key not in _acknowledged(data, obj.key):
                waiting.add(obj.key)
        return waiting

    def _missing(self) -> dict[str, int]:
        """Named blobs the store lacks (or holds at another size)."""
        shards = sorted({sha[:2] for sha in self.blobs})
        with ThreadPoolExecutor(max(1, self.jobs)) as pool:
            listings = pool.map(
                lambda shard: list(self.store.listing(f"{layout.BLOBS}{shard}/")),
                shards,
            )
            present = {o.key: o.size for listing in listings for o in listing}
        return {
            sha: size
            for sha, size in self.blobs.items()
            if present.get(layout.blob_key(sha)) != size
        }


class GcRun:
    """One gc's side of the protocol: its record, and the blobs pushes announced."""

    def __init__(self, store: Store, hooks: Hooks = REAL_TIME) -> None:
        self.store = store
        self.hooks = hooks
        self.key = layout.gc_key(uuid.uuid4().hex)
        self.started = hooks.now()
        self.acknowledged: set[str] = set()
        self.announced: set[str] = set()

    def start(self) -> None:
        """Write the record; every push that finishes after this waits for us."""
        self._write()

    def check(self) -> set[str]:
        """Read the pending records and acknowledge them.

        Returns:
            Every blob a push has announced since this gc started; the next delete
            request must leave them alone.

        Raises:
            UnsafeStoreContent: a pending record cannot be read.
        """
        for push in read_pending(self.store, self.hooks)[0]:
            self.announced |= push.blobs
            self.acknowledged.add(push.key)
        self._write()
        self.hooks.reached(GC_CHECKED)
        return set(self.announced)

    def finish(self) -> None:
        """Delete the record (when that fails, pushes wait until it is stale)."""
        try:
            self.store.delete([self.key])
        except HubstashError as exc:
            logger.warning(
                "could not delete %s (%s): pushes wait for it until it is %d minutes"
                " old; delete it by hand",
                self.key,
                exc,
                GC_LEASE // 60,
            )

    def _write(self) -> None:
        document = {
            "format": GC_FORMAT,
            "version": 1,
            "started": self.started,
            "acknowledged": sorted(self.acknowledged),
        }
        self.store.write(self.key, json.dumps(document, sort_keys=True).encode())


def read_pending(
    store: Store, hooks: Hooks = REAL_TIME
) -> tuple[list[PendingPush], list[str]]:
    """Pushes in progress, and the keys of records older than ``PENDING_TTL``.

    Raises:
        UnsafeStoreContent: a pending record cannot be read: a gc must not guess.
    """
    live: list[PendingPush] = []
    abandoned: list[str] = []
    for obj in store.listing(layout.PENDING):
        if obj.modified is not None and obj.modified < hooks.now() - PENDING_TTL:
            abandoned.append(obj.key)
            continue
        data = store.read_optional(obj.key)
        # Gone since the listing: that push finished, its manifests are written.
        if data is not None:
            live.append(PendingPush(obj.key, _announced(data, obj.key)))
    return live, abandoned


def stale_gc_records(store: Store, hooks: Hooks = REAL_TIME) -> list[str]:
    """Records of gcs that stopped without removing them."""
    return [o.key for o in store.listing(layout.GC_RUNS) if is_stale_gc(o, hooks)]


def is_stale_gc(obj: StoreObject, hooks: Hooks) -> bool:
    return obj.modified is not None and obj.modified < hooks.now() - GC_LEASE


def _pending_document(blobs: Iterable[str], created: float) -> bytes:
    document = {
        "format": PENDING_FORMAT,
        "version": 1,
        "created": created,
        "blobs": sorted(blobs),
    }
    return json.dumps(document, sort_keys=True).encode()


def _announced(data: bytes, key: str) -> frozenset[str]:
    blobs = _field(data, key, PENDING_FORMAT, "blobs")
    names = [b for b in blobs if isinstance(b, str) and is_sha256_name(b)]
    if len(names) != len(blobs):
        raise _unreadable(key, "a blob is not named by its SHA-256")
    return frozenset(names)


def _acknowledged(data: bytes, key: str) -> frozenset[str]:
    return frozenset(str(k) for k in _field(data, key, GC_FORMAT, "acknowledged"))


def _field(data: bytes, key: str, kind: str, name: str) -> list[object]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _unreadable(key, "not JSON") from exc
    if not isinstance(document, dict) or document.get("format") != kind:
        raise _unreadable(key, f"not a {kind} record")
    value = document.get(name)
    if not isinstance(value, list):
        raise _unreadable(key, f"no {name} list")
    return value


def _unreadable(key: str, why: str) -> UnsafeStoreContent:
    return UnsafeStoreContent(
        f"cannot read {key}: {why}",
        path=key,
        hint="delete it if no push or gc of another tool is running",
    )
