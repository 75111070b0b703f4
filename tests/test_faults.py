"""A misbehaving S3 endpoint: push and pull finish verified, or stop cleanly.

A fault-injecting proxy on 127.0.0.1 sits between hubstash and moto. Throttling and
5xx answers are retried by botocore; answers that break off midway (a reset, a body
cut short, a stall past the read timeout) and bytes damaged on the way (refused by
the hash) are retried by hubstash, a ranged download only for the part that failed.
Either the run succeeds with the cache equal to the original, or it stops with one
clear error and leaves the cache and the store valid for the next run. Retries are
counted in ``--json``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hubstash import layout
from hubstash.cli import main
from tests.support.caches import snapshot_tree, write_canonical_repo
from tests.support.fake_hub import HubFile
from tests.support.fault_proxy import (
    Fault,
    FaultProxy,
    Flip,
    Reset,
    Stall,
    Status,
    Truncate,
    fault_proxy,
)
from tests.support.hashes import pseudo_random_bytes
from tests.support.hf_client import scan
from tests.support.s3server import S3Server
from tests.support.stores import s3_credentials

MiB = 1024 * 1024
# Short, so stalls end quickly; a loaded machine may add a retry of its own, so
# retry counts are checked as "at least the faults injected".
READ_TIMEOUT = "1.0"
# Over two 1 MiB parts: pulled with --part-size 1 it comes down in three ranges.
WEIGHTS = pseudo_random_bytes("fault-weights", 2 * MiB + 512 * 1024)
# Over one 5 MiB part (S3's smallest): pushed with --part-size 5 it goes up in two.
LARGE = pseudo_random_bytes("fault-large", 5 * MiB + 64 * 1024)


def files(*extra: HubFile) -> list[HubFile]:
    return [
        HubFile("config.json", b'{"model_type": "faulty"}\n'),
        HubFile("model.safetensors", WEIGHTS, lfs=True),
        HubFile("tokenizer/vocab.txt", b"[PAD]\n[UNK]\nhello\n"),
        *extra,
    ]


def blob_path(content: bytes) -> str:
    return "/" + layout.blob_key(hashlib.sha256(content).hexdigest())


@dataclass(frozen=True)
class Run:
    code: int
    document: dict[str, Any]
    err: str


@dataclass
class World:
    """A cache, an S3 bucket behind the fault proxy, and the command line."""

    cache: Path
    restored: Path
    store: str
    proxy: FaultProxy
    capsys: pytest.CaptureFixture[str]

    def run(self, command: str, cache: Path, *extra: str) -> Run:
        args = [command, "--store", self.store, "--endpoint-url", self.proxy.endpoint]
        args += ["--cache-dir", str(cache), "--json", "--jobs", "2", *extra]
        code = main(args)
        captured = self.capsys.readouterr()
        return Run(code, json.loads(captured.out), captured.err)

    def push(self, *extra: str) -> Run:
        return self.run("push", self.cache, *extra)

    def pull(self, *extra: str) -> Run:
        return self.run("pull", self.restored, "--part-size", "1", *extra)


@pytest.fixture
def world(
    tmp_path: Path,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[World]:
    s3_credentials(monkeypatch)
    monkeypatch.setenv("HUBSTASH_S3_READ_TIMEOUT", READ_TIMEOUT)
    write_canonical_repo(tmp_path / "hub", "acme/faulty", files(), trees=True)
    bucket = s3_server.new_bucket()
    with fault_proxy(s3_server.endpoint) as proxy:
        yield World(
            tmp_path / "hub", tmp_path / "restored", f"s3://{bucket}/hf", proxy, capsys
        )


def assert_restored_exactly(world: World) -> None:
    assert snapshot_tree(world.restored) == snapshot_tree(world.cache)
    report = scan(world.restored)
    assert report.warnings == ()
    assert report.incomplete_files == ()


def partial_or_visible(cache: Path) -> list[Path]:
    """Partial downloads left behind, and anything of a revision the client sees."""
    return [
        *cache.rglob("*.incomplete"),
        *cache.glob("*/snapshots/*/*"),
        *cache.glob("*/refs/*"),
    ]


SLOW_DOWN = Status(503, "SlowDown", retry_after=1)

# Faults that a retry survives: (what they are, method, path, fault, times).
PUSH_FAULTS = [
    ("500 on a blob upload", "PUT", "/blobs/", Status(500), 2),
    ("503 SlowDown on a blob upload", "PUT", "/blobs/", SLOW_DOWN, 2),
    ("reset instead of an upload's answer", "PUT", "/blobs/", Reset(), 1),
    ("stalled upload answer", "PUT", "/blobs/", Stall(), 1),
    ("500 on the listing", "GET", "list-type=2", Status(500), 1),
    ("listing cut short", "GET", "list-type=2", Truncate(100), 1),
    ("listing reset midway", "GET", "list-type=2", Reset(100), 1),
    ("manifest upload stalled", "PUT", "/manifests/", Stall(), 1),
]


@pytest.mark.parametrize(
    ("method", "path", "fault", "times"),
    [case[1:] for case in PUSH_FAULTS],
    ids=[case[0] for case in PUSH_FAULTS],
)
def test_push_survives_a_transient_fault_and_counts_its_retries(
    world: World, method: str, path: str, fault: Fault, times: int
) -> None:
    world.proxy.inject(method, path, fault, times)

    pushed = world.push()
    pulled = world.pull()

    assert len(world.proxy.faults()) == times
    assert pushed.code == 0, pushed.err
    assert pushed.document["retries"] >= times
    assert pulled.code == 0, pulled.err
    assert_restored_exactly(world)


def test_a_multipart_upload_resends_only_the_part_that_failed(
    world: World, tmp_path: Path
) -> None:
    large = HubFile("onnx/model.onnx", LARGE, lfs=True)
    write_canonical_repo(world.cache, "acme/large", [large])
    world.proxy.inject("PUT", "partNumber=2", Reset())

    pushed = world.push("acme/large", "--part-size", "5")
    pulled = world.pull("acme/large")

    parts = [r.path for r in world.proxy.requests if "partNumber=" in r.path]
    assert pushed.code == 0, pushed.err
    assert pushed.document["retries"] >= 1
    assert sum("partNumber=1" in p for p in parts) == 1
    assert sum("partNumber=2" in p for p in parts) == 2
    assert pulled.code == 0, pulled.err
    assert (world.restored / "models--acme--large").is_dir()


PULL_FAULTS = [
    ("500 on a blob", "GET", "/blobs/", Status(500), 2),
    ("503 SlowDown on a blob", "GET", "/blobs/", SLOW_DOWN, 2),
    ("blob reset midway", "GET", blob_path(WEIGHTS), Reset(1000), 1),
    ("blob cut short", "GET", blob_path(WEIGHTS), Truncate(1000), 1),
    ("blob stalled before its answer", "GET", blob_path(WEIGHTS), Stall(), 1),
    ("blob stalled midway", "GET", blob_path(WEIGHTS), Stall(1000), 1),
    ("blob with a flipped byte", "GET", blob_path(WEIGHTS), Flip(), 1),
    ("small blob with a flipped byte", "GET", "/blobs/", Flip(0), 1),
    ("manifest cut short", "GET", "/manifests/", Truncate(10), 1),
    ("listing reset midway", "GET", "list-type=2", Reset(100), 1),
]


@pytest.mark.parametrize(
    ("method", "path", "fault", "times"),
    [case[1:] for case in PULL_FAULTS],
    ids=[case[0] for case in PULL_FAULTS],
)
def test_pull_survives_a_transient_fault_and_counts_its_retries(
    world: World, method: str, path: str, fault: Fault, times: int
) -> None:
    assert world.push().code == 0
    world.proxy.inject(method, path, fault, times)

    pulled = world.pull()

    assert len(world.proxy.faults()) == times
    assert pulled.code == 0, pulled.err
    assert pulled.document["retries"] >= times
    assert_restored_exactly(world)


@pytest.mark.parametrize(
    "fault", [Reset(1000), Truncate(1000), Stall(1000)], ids=["reset", "cut", "stall"]
)
def test_a_ranged_download_fetches_again_only_the_part_that_failed(
    world: World, fault: Fault
) -> None:
    assert world.push().code == 0
    weights = blob_path(WEIGHTS)
    world.proxy.inject("GET", weights, fault)

    pulled = world.pull()

    ranges = [
        r.headers.get("range")
        for r in world.proxy.requests
        if r.method == "GET" and weights in r.path
    ]
    failed = world.proxy.faults()[0].headers.get("range")
    assert pulled.code == 0, pulled.err
    assert len(set(ranges)) == 3
    assert ranges.count(failed) == 2
    assert len(ranges) == 4
    assert_restored_exactly(world)


@pytest.mark.parametrize(
    "fault",
    [Truncate(MiB + MiB // 2), Stall(MiB + MiB // 2)],
    ids=["cut", "stall"],
)
def test_a_streamed_download_resumes_from_the_first_missing_byte(
    world: World, fault: Fault
) -> None:
    """What arrived is kept: at least every whole chunk read before the fault."""
    assert world.push().code == 0
    weights = blob_path(WEIGHTS)
    world.proxy.inject("GET", weights, fault)

    pulled = world.pull("--part-size", "5")

    asked = [
        r.headers.get("range")
        for r in world.proxy.requests
        if r.method == "GET" and weights in r.path
    ]
    assert pulled.code == 0, pulled.err
    assert pulled.document["retries"] >= 1
    assert len(asked) == 2
    assert asked[0] is None
    resumed_at = int(str(asked[1]).removeprefix("bytes=").removesuffix("-"))
    assert MiB <= resumed_at <= MiB + MiB // 2
    assert_restored_exactly(world)


def test_a_pull_that_keeps_stalling_stops_with_exit_6_and_leaves_no_trace(
    world: World,
) -> None:
    assert world.push().code == 0
    world.proxy.inject("GET", "/blobs/", Stall(), count=1000)

    failed = world.pull()
    visible = partial_or_visible(world.restored)
    world.proxy.clear()
    again = world.pull()

    assert failed.code == 6
    assert visible == []
    assert "stopped answering" in failed.err
    assert "HUBSTASH_S3_READ_TIMEOUT" in failed.err
    assert "Traceback" not in failed.err
    assert failed.document["retries"] > 0
    assert again.code == 0, again.err
    assert_restored_exactly(world)


def test_a_blob_that_arrives_damaged_every_time_never_reaches_the_cache(
    world: World,
) -> None:
    assert world.push().code == 0
    world.proxy.inject("GET", blob_path(WEIGHTS), Flip(), count=1000)

    failed = world.pull()
    leftovers = snapshot_tree(world.restored)
    visible = partial_or_visible(world.restored)
    world.proxy.clear()
    again = world.pull()

    assert failed.code == 3
    assert "is damaged" in failed.err
    assert failed.document["retries"] >= 2
    assert not any(hashlib.sha256(WEIGHTS).hexdigest() in p for p in leftovers)
    assert visible == []
    assert again.code == 0, again.err
    assert_restored_exactly(world)


def test_a_push_that_keeps_failing_stops_cleanly_and_the_next_one_completes(
    world: World, s3_server: S3Server
) -> None:
    world.proxy.inject("PUT", blob_path(WEIGHTS), Status(500), count=1000)

    failed = world.push()
    bucket = world.store.removeprefix("s3://").split("/")[0]
    keys = s3_server.keys(bucket)
    world.proxy.clear()
    again = world.push()
    pulled = world.pull()

    assert failed.code == 6
    assert "answered 500 InternalError (5 retries)" in failed.err
    assert "run the command again later" in failed.err
    assert "Traceback" not in failed.err
    assert not [k for k in keys if "/repos/" in k]
    assert again.code == 0, again.err
    assert pulled.code == 0, pulled.err
    assert_restored_exactly(world)


def test_a_push_whose_uploads_keep_stalling_stops_with_exit_6(world: World) -> None:
    world.proxy.inject("PUT", "/blobs/", Stall(), count=1000)

    failed = world.push()

    assert failed.code == 6
    assert "stopped answering" in failed.err
    assert "Traceback" not in failed.err
