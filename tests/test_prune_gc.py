"""Deleting: stores delete, prune removes unlocked revisions, gc removes unused blobs,
and a push running beside a gc never loses a blob it relies on."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hubstash import ExitCode, layout, list_store, pull, push
from hubstash.cacheprune import apply_cache_prune, plan_cache_prune
from hubstash.cli import main
from hubstash.errors import (
    AccessDenied,
    StoreFormatError,
    UnsafeStoreContent,
    UsageError,
)
from hubstash.gc import plan_gc, run_gc
from hubstash.gcprotocol import (
    GC_CHECKED,
    GC_DELETING,
    GC_LEASE,
    PENDING_TTL,
    PUSH_ANNOUNCED,
    PUSH_CONFIRMED,
    PUSH_WAITING,
    Hooks,
)
from hubstash.lockfile import Lock, LockedRepo, read_lock, write_lock
from hubstash.prune import apply_store_prune, plan_store_prune
from hubstash.repos import RepoId
from hubstash.stores import S3Options, Store, open_store
from hubstash.stores import s3 as s3_module
from tests.support.caches import HandBuiltRepo, default_files, write_canonical_repo
from tests.support.hashes import pseudo_random_bytes, sha256_hex
from tests.support.hf_client import scan
from tests.support.s3_error_server import ACCESS_DENIED, s3_error_server
from tests.support.s3server import S3Server
from tests.support.stores import StoreUnderTest, s3_credentials

STEP_TIMEOUT = 30.0  # a deadline for a step that never comes, not a pause


# --------------------------------------------------------------------------------------
# Helpers


class Choreography(Hooks):
    """Pauses a push or a gc at chosen steps until the test lets it go.

    Time is the real clock shifted by ``ahead`` seconds, and polling never sleeps.
    """

    def __init__(self, *pauses: str, ahead: float = 0.0) -> None:
        self._pauses = set(pauses)
        self._ahead = ahead
        self._changed = threading.Condition()
        self._arrivals: Counter[str] = Counter()
        self._releases: Counter[str] = Counter()
        self.steps: list[str] = []

    def reached(self, step: str) -> None:
        with self._changed:
            self.steps.append(step)
            self._arrivals[step] += 1
            self._changed.notify_all()
            turn = self._arrivals[step]
            if not self._changed.wait_for(
                lambda: step not in self._pauses or self._releases[step] >= turn,
                timeout=STEP_TIMEOUT,
            ):
                raise RuntimeError(f"the test never released {step!r}")

    def arrived(self, step: str, times: int = 1) -> None:
        """Wait until the worker has reached ``step`` ``times`` times."""
        with self._changed:
            assert self._changed.wait_for(
                lambda: self._arrivals[step] >= times, timeout=STEP_TIMEOUT
            ), f"never reached {step!r} {times} times; steps: {self.steps}"

    def release(self, step: str) -> None:
        """Let the worker past one arrival at ``step``."""
        with self._changed:
            self._releases[step] += 1
            self._changed.notify_all()

    def let_go(self, step: str) -> None:
        """Stop pausing at ``step``."""
        with self._changed:
            self._pauses.discard(step)
            self._changed.notify_all()

    def now(self) -> float:
        return time.time() + self._ahead

    def sleep(self, seconds: float) -> None:
        """Polls go round at once: the pauses above order everything."""


def _blob_keys(backend: Store) -> set[str]:
    return {o.key for o in backend.listing(layout.BLOBS)}


def _all_keys(backend: Store) -> dict[str, int]:
    return {o.key: o.size for o in backend.listing("")}


def _files_blobs(repo: HandBuiltRepo) -> set[str]:
    return {layout.blob_key(sha256_hex(f.content)) for f in repo.files.values()}


def _forget_manifests(backend: Store) -> None:
    """Leave the blobs, remove what names them (as a prune does)."""
    backend.delete([o.key for o in backend.listing(layout.REPOS)])


def _lock(tmp_path: Path, *repos: HandBuiltRepo, name: str = "hubstash.lock") -> Path:
    locked = tuple(
        LockedRepo(RepoId(r.repo_type, r.repo_id), "main", r.commit, (), (), ())
        for r in repos
    )
    path = tmp_path / name
    write_lock(Lock(locked), path)
    return path


def _record(kind: str, **fields: list[str]) -> bytes:
    return json.dumps({"format": kind, "version": 1, **fields}).encode()


def _two_revisions(cache: Path) -> tuple[HandBuiltRepo, HandBuiltRepo]:
    """acme/tiny at v1 (old weights) and main (new weights, same config)."""
    old = write_canonical_repo(cache, "acme/tiny", default_files("old"), refs=("v1",))
    new = write_canonical_repo(cache, "acme/tiny", default_files("new"), refs=("main",))
    return old, new


# --------------------------------------------------------------------------------------
# Stores delete


def test_delete_removes_objects_and_ignores_missing_ones(store: StoreUnderTest) -> None:
    backend = store.open()
    for key in ("repos/r/refs/a", "repos/r/refs/b", "blobs/sha256/aa/x"):
        backend.write(key, b"x")

    backend.delete(["repos/r/refs/a", "blobs/sha256/aa/x", "repos/r/refs/never"])

    assert set(_all_keys(backend)) == {"repos/r/refs/b"}


def test_listings_say_when_objects_were_written(store: StoreUnderTest) -> None:
    backend = store.open()
    before = time.time()

    backend.write("repos/r/refs/a", b"x")

    (listed,) = backend.listing("repos/")
    assert listed.modified is not None
    assert before - 5 <= listed.modified <= time.time() + 5


def test_a_folder_store_deletes_the_folders_it_empties(tmp_path: Path) -> None:
    backend = open_store(str(tmp_path / "store"))
    backend.write("repos/models--a--b/manifests/c/p.json", b"{}")
    backend.write("repos/models--a--b/refs/main", b"c")

    backend.delete(["repos/models--a--b/manifests/c/p.json"])

    assert not (tmp_path / "store/repos/models--a--b/manifests").exists()
    assert (tmp_path / "store/repos/models--a--b/refs/main").is_file()


@pytest.fixture
def s3_store(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[s3_module.S3Store]:
    s3_credentials(monkeypatch)
    options = S3Options(endpoint_url=s3_server.endpoint)
    backend = s3_module.S3Store(s3_server.new_bucket(), "hf", options)
    yield backend
    backend.close()


def _count_calls(backend: s3_module.S3Store, operation: str) -> list[int]:
    calls: list[int] = []

    def count(**_: Any) -> None:
        calls.append(1)

    backend.client.meta.events.register(f"before-call.s3.{operation}", count)
    return calls


def test_s3_deletes_in_batches(
    s3_store: s3_module.S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [f"repos/r/refs/{i}" for i in range(5)]
    for key in keys:
        s3_store.write(key, b"x")
    monkeypatch.setattr(s3_module, "MAX_DELETE_BATCH", 2)
    batches = _count_calls(s3_store, "DeleteObjects")

    s3_store.delete(keys)

    assert len(batches) == 3
    assert list(s3_store.listing("")) == []


def test_s3_deletes_one_by_one_where_batch_deletes_are_missing(
    s3_store: s3_module.S3Store,
) -> None:
    keys = [f"repos/r/refs/{i}" for i in range(3)]
    for key in keys:
        s3_store.write(key, b"x")

    # What a service without DeleteObjects answers, given before any request.
    answer = SimpleNamespace(status_code=501)
    error = {"Code": "NotImplemented", "Message": "no DeleteObjects here"}
    parsed = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 501}}
    s3_store.client.meta.events.register(
        "before-call.s3.DeleteObjects",
        lambda **_: (answer, parsed),  # type: ignore[arg-type] # a response ends it
    )
    singles = _count_calls(s3_store, "DeleteObject")

    s3_store.delete(keys)
    s3_store.delete(["repos/r/refs/already-gone"])

    assert list(s3_store.listing("")) == []
    assert len(singles) == 4


def test_s3_denied_deletes_name_the_permission(monkeypatch: pytest.MonkeyPatch) -> None:
    s3_credentials(monkeypatch)
    with s3_error_server(ACCESS_DENIED) as server:
        backend = open_store("s3://bucket/hf", S3Options(endpoint_url=server.endpoint))
        with pytest.raises(AccessDenied, match="s3:DeleteObject"):
            backend.delete(["blobs/sha256/aa/x"])


# --------------------------------------------------------------------------------------
# prune: a store


def test_prune_removes_what_no_lock_pins_and_gc_what_only_it_used(
    store: StoreUnderTest, tmp_path: Path
) -> None:
    cache = tmp_path / "hub"
    old, new = _two_revisions(cache)
    backend = store.open()
    push(backend, cache)
    lock = Lock(
        (LockedRepo(RepoId("model", "acme/tiny"), "main", new.commit, (), (), ()),)
    )

    plan = plan_store_prune(backend, [lock])
    apply_store_prune(backend, plan)
    collected = run_gc(backend, plan_gc(backend, grace_seconds=0))

    (removed,) = plan.removed
    assert (removed.commit, removed.refs, plan.kept) == (old.commit, ("v1",), 1)
    only_old = _files_blobs(old) - _files_blobs(new)
    assert plan.freed_blobs == collected.deleted_blobs == len(only_old) == 1
    assert plan.freed_bytes == collected.deleted_bytes == 128 * 1024
    (listed,) = list_store(backend)
    assert [(r.commit, r.refs) for r in listed.revisions] == [(new.commit, ("main",))]


def test_prune_and_gc_leave_what_pushing_only_the_kept_revision_writes(
    store: StoreUnderTest, tmp_path: Path
) -> None:
    cache = tmp_path / "hub"
    _old, new = _two_revisions(cache)
    backend = store.open()
    push(backend, cache)
    expected = open_store(str(tmp_path / "expected"))
    push(expected, cache, ["acme/tiny@main"])

    plan = plan_store_prune(backend, [read_lock(_lock(tmp_path, new))])
    apply_store_prune(backend, plan)
    run_gc(backend, plan_gc(backend, grace_seconds=0))

    assert _all_keys(backend) == _all_keys(expected)


def test_prune_keeping_refs_removes_only_revisions_no_ref_names(
    store: StoreUnderTest, tmp_path: Path
) -> None:
    cache = tmp_path / "hub"
    detached = write_canonical_repo(cache, "acme/tiny", default_files("d"), refs=())
    kept = write_canonical_repo(cache, "acme/tiny", default_files("k"), refs=("main",))
    backend = store.open()
    push(backend, cache)

    plan = plan_store_prune(backend, [], keep_refs=True)

    assert [(r.commit, r.refs) for r in plan.removed] == [(detached.commit, ())]
    assert plan.kept == 1
    assert all(kept.commit not in key for key in plan.keys)


def test_prune_without_a_lock_or_kept_refs_refuses(store: StoreUnderTest) -> None:
    with pytest.raises(UsageError, match="remove everything"):
        plan_store_prune(store.open(), [])


# --------------------------------------------------------------------------------------
# gc


def test_gc_keeps_young_blobs_and_deletes_them_once_older_than_the_grace(
    store: StoreUnderTest,
) -> None:
    backend = store.open()
    backend.write(layout.FORMAT_KEY, layout.format_marker())
    loose = pseudo_random_bytes("loose", 777)
    backend.write(layout.blob_key(sha256_hex(loose)), loose)

    fresh = plan_gc(backend, grace_seconds=3600)
    later = plan_gc(backend, grace_seconds=3600, hooks=Choreography(ahead=7200))
    result = run_gc(backend, later, hooks=Choreography(ahead=7200))

    assert (fresh.young_blobs, fresh.young_bytes, fresh.blobs) == (1, 777, ())
    assert [b.sha256 for b in later.blobs] == [sha256_hex(loose)]
    assert (result.deleted_blobs, result.deleted_bytes) == (1, 777)
    assert _blob_keys(backend) == set()


def test_gc_reads_age_from_the_store(tmp_path: Path) -> None:
    backend = open_store(str(tmp_path / "store"))
    backend.write(layout.FORMAT_KEY, layout.format_marker())
    old, young = b"old blob", b"young blob"
    for content in (old, young):
        backend.write(layout.blob_key(sha256_hex(content)), content)
    week_ago = time.time() - 8 * 86400
    os.utime(tmp_path / "store" / layout.blob_key(sha256_hex(old)), (week_ago,) * 2)

    plan = plan_gc(backend)

    assert [b.sha256 for b in plan.blobs] == [sha256_hex(old)]
    assert plan.young_blobs == 1


def test_gc_never_deletes_a_blob_a_manifest_names(
    store: StoreUnderTest, tmp_path: Path
) -> None:
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())
    backend = store.open()
    push(backend, tmp_path / "hub")
    before = _blob_keys(backend)

    plan = plan_gc(backend, grace_seconds=0)
    run_gc(backend, plan)

    assert (plan.blobs, plan.referenced_blobs) == ((), 3)
    assert _blob_keys(backend) == before


def test_gc_refuses_a_store_it_cannot_read_fully(store: StoreUnderTest) -> None:
    backend = store.open()
    backend.write(layout.FORMAT_KEY, layout.format_marker())
    backend.write(layout.blob_key("a" * 64), b"content")
    backend.write(
        f"repos/models--acme--tiny/manifests/{'c' * 40}/{'d' * 64}.json", b"{"
    )

    with pytest.raises(UnsafeStoreContent):
        plan_gc(backend, grace_seconds=0)

    backend.write("repos/models--acme--tiny/what-is-this", b"?")
    with pytest.raises(StoreFormatError, match="what-is-this"):
        plan_gc(backend, grace_seconds=0)
    assert _blob_keys(backend) == {layout.blob_key("a" * 64)}


def test_gc_removes_records_of_pushes_and_gcs_that_stopped(
    store: StoreUnderTest, tmp_path: Path
) -> None:
    cache = tmp_path / "hub"
    repo = write_canonical_repo(cache, "acme/tiny", default_files())
    backend = store.open()
    push(backend, cache)
    _forget_manifests(backend)
    blobs = sorted(sha256_hex(f.content) for f in repo.files.values())
    dead_push, dead_gc = layout.pending_key("dead"), layout.gc_key("dead")
    backend.write(dead_push, _record("hubstash-pending", blobs=blobs))
    backend.write(dead_gc, _record("hubstash-gc", acknowledged=[]))

    today = plan_gc(backend, grace_seconds=0)
    weeks_later = Choreography(ahead=PENDING_TTL + 60)
    plan = plan_gc(backend, grace_seconds=0, hooks=weeks_later)
    run_gc(backend, plan, hooks=weeks_later)

    assert (today.pending_blobs, today.blobs, today.records) == (3, (), ())
    assert sorted(plan.records) == sorted([dead_push, dead_gc])
    assert len(plan.blobs) == 3
    assert _all_keys(backend) == {layout.FORMAT_KEY: len(layout.format_marker())}


# --------------------------------------------------------------------------------------
# gc and push at the same time


@pytest.fixture
def relied_on(store: StoreUnderTest, tmp_path: Path) -> HandBuiltRepo:
    """A cache whose blobs the store holds, named by no manifest (as after a prune):
    a push finds them stored and relies on them; a gc wants to delete them."""
    cache = tmp_path / "hub"
    write_canonical_repo(cache, "acme/old", default_files("shared"))
    push(store.open(), cache)
    _forget_manifests(store.open())
    shutil.rmtree(cache / "models--acme--old")
    return write_canonical_repo(cache, "acme/new", default_files("shared"))


def test_a_blob_a_gc_deletes_under_a_push_is_uploaded_again(
    store: StoreUnderTest, tmp_path: Path, relied_on: HandBuiltRepo
) -> None:
    plan = plan_gc(store.open(), grace_seconds=0)
    gc_hooks, push_hooks = Choreography(GC_DELETING), Choreography(PUSH_WAITING)

    with ThreadPoolExecutor(2) as pool:
        gc = pool.submit(run_gc, store.open(), plan, hooks=gc_hooks)
        # The gc has read pending records and manifests: none names the blobs.
        gc_hooks.arrived(GC_DELETING)
        pushing = pool.submit(push, store.open(), relied_on.cache_dir, hooks=push_hooks)
        # The push found every blob stored, wrote its manifest, and sees the gc.
        push_hooks.arrived(PUSH_WAITING)
        gc_hooks.release(GC_DELETING)
        deleted = gc.result()
        gone_meanwhile = _files_blobs(relied_on) - _blob_keys(store.open())
        push_hooks.release(PUSH_WAITING)
        pushed = pushing.result()

    assert deleted.deleted_blobs == 3
    assert gone_meanwhile == _files_blobs(relied_on)
    assert (pushed.exit_code, pushed.uploaded_files, pushed.reuploaded_files) == (
        ExitCode.OK,
        0,
        3,
    )
    assert _files_blobs(relied_on) <= _blob_keys(store.open())
    assert pull(store.open(), tmp_path / "restored").exit_code == ExitCode.OK
    assert not list(store.open().listing(layout.PENDING))
    assert not list(store.open().listing(layout.GC_RUNS))


def test_a_push_waits_for_the_gc_to_acknowledge_it(
    store: StoreUnderTest, tmp_path: Path, relied_on: HandBuiltRepo
) -> None:
    plan = plan_gc(store.open(), grace_seconds=0)
    gc_hooks, push_hooks = Choreography(GC_DELETING), Choreography(PUSH_WAITING)

    with ThreadPoolExecutor(2) as pool:
        gc = pool.submit(run_gc, store.open(), plan, hooks=gc_hooks, batch_size=1)
        gc_hooks.arrived(GC_DELETING)
        pushing = pool.submit(push, store.open(), relied_on.cache_dir, hooks=push_hooks)
        push_hooks.arrived(PUSH_WAITING)
        # One blob goes; before its next request the gc reads the push's record.
        gc_hooks.release(GC_DELETING)
        gc_hooks.arrived(GC_CHECKED, times=2)
        gc_hooks.arrived(GC_DELETING, times=2)
        # Acknowledged: the push confirms its blobs while the gc is still running.
        push_hooks.release(PUSH_WAITING)
        pushed = pushing.result()
        gc_hooks.let_go(GC_DELETING)
        collected = gc.result()

    assert push_hooks.steps.count(PUSH_WAITING) == 1
    assert pushed.reuploaded_files == 1
    assert (collected.deleted_blobs, collected.spared_blobs) == (1, 2)
    assert _files_blobs(relied_on) <= _blob_keys(store.open())
    assert pull(store.open(), tmp_path / "restored").exit_code == ExitCode.OK


def test_a_gc_spares_the_blobs_a_push_has_announced(
    store: StoreUnderTest, tmp_path: Path, relied_on: HandBuiltRepo
) -> None:
    plan = plan_gc(store.open(), grace_seconds=0)
    push_hooks = Choreography(PUSH_ANNOUNCED)

    with ThreadPoolExecutor(1) as pool:
        pushing = pool.submit(push, store.open(), relied_on.cache_dir, hooks=push_hooks)
        # The push has announced its blobs and written nothing else yet.
        push_hooks.arrived(PUSH_ANNOUNCED)
        replanned = plan_gc(store.open(), grace_seconds=0)
        collected = run_gc(store.open(), plan)
        push_hooks.release(PUSH_ANNOUNCED)
        pushed = pushing.result()

    assert (len(plan.blobs), replanned.blobs, replanned.pending_blobs) == (3, (), 3)
    assert (collected.deleted_blobs, collected.spared_blobs) == (0, 3)
    assert pushed.reuploaded_files == 0
    assert PUSH_WAITING not in push_hooks.steps
    assert pull(store.open(), tmp_path / "restored").exit_code == ExitCode.OK


def test_a_push_alone_waits_for_nothing_and_leaves_no_record(
    store: StoreUnderTest, tmp_path: Path
) -> None:
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())
    first, again = Choreography(), Choreography()

    push(store.open(), tmp_path / "hub", hooks=first)
    stored = _all_keys(store.open())
    push(store.open(), tmp_path / "hub", hooks=again)

    assert first.steps == [PUSH_ANNOUNCED, PUSH_CONFIRMED]
    assert again.steps == []
    assert _all_keys(store.open()) == stored
    assert not any(k.startswith((layout.PENDING, layout.GC_RUNS)) for k in stored)


def test_a_push_does_not_wait_for_a_gc_that_stopped(
    store: StoreUnderTest, tmp_path: Path
) -> None:
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())
    backend = store.open()
    backend.write(layout.gc_key("stopped"), _record("hubstash-gc", acknowledged=[]))
    later = Choreography(ahead=GC_LEASE + 60)

    result = push(backend, tmp_path / "hub", hooks=later)

    assert result.exit_code == ExitCode.OK
    assert PUSH_WAITING not in later.steps


# --------------------------------------------------------------------------------------
# prune: the local cache


def test_cache_prune_keeps_the_locked_revisions_and_a_clean_cache(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "hub"
    old, new = _two_revisions(cache)
    other = write_canonical_repo(cache, "acme/other", default_files("other"))
    partial = new.path / "blobs" / f"{'e' * 64}.1a2b3c4d.incomplete"
    partial.write_bytes(b"half")

    plan = plan_cache_prune(cache, [read_lock(_lock(tmp_path, new))])
    apply_cache_prune(plan)

    assert sorted(r.commit for r in plan.removed) == sorted([old.commit, other.commit])
    # Old weights, and all of acme/other; refs are 40 bytes; links take nothing.
    weights = len(old.files["model.safetensors"].content)
    small = sum(
        len(other.files[p].content) for p in ("config.json", "tokenizer/vocab.txt")
    )
    assert plan.freed_bytes == weights + (weights + small) + 2 * 40
    report = scan(cache)
    assert report.warnings == ()
    assert [
        (r.repo_id, [v.commit_hash for v in r.revisions]) for r in report.repos
    ] == [("acme/tiny", [new.commit])]
    assert [v.refs for v in report.repos[0].revisions] == [("main",)]
    assert not old.blob_path("model.safetensors").exists()
    assert new.blob_path("config.json").exists()
    assert partial.exists()
    assert not other.path.exists()


def test_cache_prune_keeping_refs_removes_detached_revisions_and_nested_refs(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "hub"
    kept = write_canonical_repo(cache, "acme/tiny", default_files("k"), refs=("main",))
    pr = write_canonical_repo(
        cache, "acme/tiny", default_files("pr"), refs=("refs/pr/1",)
    )
    detached = write_canonical_repo(cache, "acme/tiny", default_files("d"), refs=())

    plan = plan_cache_prune(cache, [read_lock(_lock(tmp_path, kept))], keep_refs=False)
    refs_kept = plan_cache_prune(cache, [], keep_refs=True)
    apply_cache_prune(plan)

    assert [r.commit for r in refs_kept.removed] == [detached.commit]
    assert sorted(r.commit for r in plan.removed) == sorted(
        [pr.commit, detached.commit]
    )
    assert not (kept.path / "refs" / "refs").exists()
    assert scan(cache).warnings == ()


# --------------------------------------------------------------------------------------
# The commands


@pytest.fixture
def pushed_two_revisions(
    store: StoreUnderTest, tmp_path: Path
) -> tuple[HandBuiltRepo, HandBuiltRepo]:
    old, new = _two_revisions(tmp_path / "hub")
    push(store.open(), tmp_path / "hub")
    return old, new


def test_prune_dry_run_prints_the_plan_and_deletes_nothing(
    store: StoreUnderTest,
    tmp_path: Path,
    pushed_two_revisions: tuple[HandBuiltRepo, HandBuiltRepo],
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, new = pushed_two_revisions
    before = _all_keys(store.open())
    lock = _lock(tmp_path, new)

    code = main(["prune", *store.cli_args(), "--keep-locked", str(lock), "--dry-run"])

    out = capsys.readouterr().out.splitlines()
    doomed = [k for k in before if old.commit in k or k.endswith("/refs/v1")]
    assert code == ExitCode.OK
    assert len(doomed) == 2
    assert out[0] == (
        f"would remove 1 revision from {store.open().url}: 2 refs and manifests,"
        f" {sum(before[k] for k in doomed):,} bytes; 1 revision kept"
    )
    assert out[1] == f"  acme/tiny  {old.commit[:12]}  v1  3 files  128.0 KiB"
    assert out[2].startswith(
        "hubstash gc can then delete 1 blob only they use, 131,072 bytes (128.0 KiB)"
    )
    assert _all_keys(store.open()) == before


def test_prune_refuses_without_a_terminal_or_yes(
    store: StoreUnderTest,
    tmp_path: Path,
    pushed_two_revisions: tuple[HandBuiltRepo, HandBuiltRepo],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _old, new = pushed_two_revisions
    before = _all_keys(store.open())
    monkeypatch.setattr("sys.stdin", _Answer("", tty=False))

    code = main(
        ["prune", *store.cli_args(), "--keep-locked", str(_lock(tmp_path, new))]
    )

    assert code == ExitCode.USAGE
    assert "pass --yes" in capsys.readouterr().err
    assert _all_keys(store.open()) == before


@pytest.mark.parametrize(("answer", "deleted"), [("n\n", False), ("y\n", True)])
def test_prune_asks_on_a_terminal(
    store: StoreUnderTest,
    tmp_path: Path,
    pushed_two_revisions: tuple[HandBuiltRepo, HandBuiltRepo],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    deleted: bool,
) -> None:
    old, new = pushed_two_revisions
    monkeypatch.setattr("sys.stdin", _Answer(answer, tty=True))

    code = main(
        ["prune", *store.cli_args(), "--keep-locked", str(_lock(tmp_path, new))]
    )

    (listed,) = list_store(store.open())
    commits = {r.commit for r in listed.revisions}
    assert code == (ExitCode.OK if deleted else ExitCode.FAILURE)
    assert commits == ({new.commit} if deleted else {old.commit, new.commit})


def test_prune_and_gc_with_yes_delete_and_report_as_json(
    store: StoreUnderTest,
    tmp_path: Path,
    pushed_two_revisions: tuple[HandBuiltRepo, HandBuiltRepo],
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, new = pushed_two_revisions
    lock = str(_lock(tmp_path, new))

    pruned = main(
        ["prune", *store.cli_args(), "--keep-locked", lock, "--yes", "--json"]
    )
    prune_doc = json.loads(capsys.readouterr().out)
    collected = main(["gc", *store.cli_args(), "--grace", "0", "--yes", "--json"])
    gc_doc = json.loads(capsys.readouterr().out)

    assert (pruned, collected) == (ExitCode.OK, ExitCode.OK)
    assert prune_doc["dry_run"] is False
    assert [r["commit"] for r in prune_doc["plan"]["removed"]] == [old.commit]
    assert gc_doc["result"]["deleted_blobs"] == 1
    assert gc_doc["result"]["deleted_bytes"] == 128 * 1024
    assert gc_doc["plan"]["referenced_blobs"] == 3
    assert layout.blob_key(sha256_hex(old.files["model.safetensors"].content)) not in (
        _blob_keys(store.open())
    )


def test_gc_prints_what_it_deletes_and_saves(
    store: StoreUnderTest, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = store.open()
    backend.write(layout.FORMAT_KEY, layout.format_marker())
    loose = pseudo_random_bytes("loose", 2_000_000)
    backend.write(layout.blob_key(sha256_hex(loose)), loose)
    args = ["gc", *store.cli_args(), "--grace", "0", "--price-per-gb", "1000"]

    planned = main([*args, "--dry-run"])
    plan_out = capsys.readouterr().out.splitlines()
    deleted = main([*args, "--yes"])
    out = capsys.readouterr().out.splitlines()

    assert (planned, deleted) == (ExitCode.OK, ExitCode.OK)
    assert plan_out == [
        "would delete 1 blob no manifest names, 2,000,000 bytes (1.9 MiB), saving"
        " $2.00 a month at $1000 per GB",
        "keeps 0 blobs manifests name, 0 younger than 0s (0 bytes), 0 that pushes in"
        " progress use (0 bytes)",
    ]
    assert out[:2] == plan_out
    assert out[2].startswith(
        "deleted 1 blob, 2,000,000 bytes (1.9 MiB), saving $2.00 a month;"
        " 0 spared for pushes that began meanwhile"
    )
    assert _blob_keys(backend) == set()


@pytest.mark.parametrize("grace", ["7", "a week", "-1d"])
def test_gc_refuses_a_grace_that_is_no_age(
    tmp_path: Path, grace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["gc", "--store", str(tmp_path), f"--grace={grace}"])

    assert exited.value.code == ExitCode.USAGE
    assert "not an age" in capsys.readouterr().err


def test_prune_of_the_cache_and_the_store_are_alternatives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["prune", "--store", str(tmp_path / "s"), "--cache-dir", str(tmp_path / "hub")]
    )

    assert code == ExitCode.USAGE
    assert "alternatives" in capsys.readouterr().err


def test_prune_of_the_cache_prints_what_it_frees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _two_revisions(tmp_path / "hub")
    lock = str(_lock(tmp_path, new))

    code = main(
        ["prune", "--cache-dir", str(tmp_path / "hub"), "--keep-locked", lock, "--yes"]
    )

    out = capsys.readouterr().out.splitlines()
    assert code == ExitCode.OK
    assert out[0] == (
        f"would remove 1 revision from the cache {tmp_path / 'hub'}, freeing"
        " 131,112 bytes (128.0 KiB); 1 revision kept"
    )
    assert out[1] == f"  acme/tiny  {old.commit[:12]}  v1  3 files  128.0 KiB"
    assert out[2].startswith("removed 1 revision from the cache")
    assert not (old.path / "snapshots" / old.commit).exists()


class _Answer:
    """Standard input: a terminal or not, holding one answer."""

    def __init__(self, answer: str, *, tty: bool) -> None:
        self._answer, self._tty = answer, tty

    def isatty(self) -> bool:
        return self._tty

    def readline(self) -> str:
        return self._answer
