"""A push or pull killed with SIGKILL anywhere is made whole by running it again.

Each kill comes from `hubstash.crashpoints`: the child kills itself at a named point
(the N-th time it passes it), which is exactly where a power cut or OOM kill could
land, with no cleanup code run. After a plain rerun the cache equals the source,
the Hub client's scan has nothing to say, nothing temporary is left where the client
looks, and the store serves a fresh pull.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import scan_cache_dir

from hubstash import push
from hubstash.stores import FolderStore, S3Options, open_store
from tests.support.caches import (
    TreeEntry,
    default_files,
    snapshot_tree,
    write_canonical_repo,
)
from tests.support.fake_hub import HubFile
from tests.support.hashes import pseudo_random_bytes
from tests.support.hf_client import scan
from tests.support.runs import KILLED, Forker, leftovers, run_cli
from tests.support.s3server import S3Server
from tests.support.stores import TEST_PART_SIZE, s3_credentials

PULL_POINTS = [
    "pull-blob-chunk-written",
    "pull-blob-chunk-written:3",
    "pull-blob-placed",
    "pull-blob-placed:3",
    "pull-links-written",
    "pull-links-written:2",
    "cache-temp-written",
    "cache-temp-written:4",
    "cache-temp-written:5",
    "cache-temp-written:9",
]
PUSH_POINTS = [
    "store-temp-written",
    "store-temp-written:2",
    "store-temp-written:4",
    "push-blob-uploaded",
    "push-blob-uploaded:3",
    "push-blobs-uploaded",
    "push-manifests-written",
    "store-temp-written:11",
]
# How often each point is passed at most by one run on the source below (a random N
# beyond that lets the run finish, which is an outcome worth having too).
PULL_PASSES = {
    "pull-blob-chunk-written": 4,
    "pull-blob-placed": 4,
    "pull-links-written": 2,
    "cache-temp-written": 10,
}
PUSH_PASSES = {
    "store-temp-written": 12,
    "push-blob-uploaded": 5,
    "push-blobs-uploaded": 1,
    "push-manifests-written": 1,
}
PULL_TRIALS = 100
PUSH_TRIALS = 80
SEED = 20261204


def write_source(cache: Path) -> Path:
    """Two repos sharing two blobs, one with a tree listing, one with two refs."""
    write_canonical_repo(cache, "acme/a", default_files("a"), trees=True)
    write_canonical_repo(
        cache, "acme/b", default_files("b"), repo_type="dataset", refs=("main", "v1")
    )
    return cache


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_source(tmp_path_factory.mktemp("source") / "hub")


@pytest.fixture(scope="module")
def source_tree(source: Path) -> dict[str, TreeEntry]:
    return snapshot_tree(source)


@pytest.fixture(scope="module")
def filled_store(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("filled") / "store"
    assert push(FolderStore(folder), source).exit_code == 0
    return folder


@pytest.fixture(scope="module")
def forker() -> Iterator[Forker]:
    forker = Forker()
    yield forker
    forker.close()


def pull_args(store: str, cache: Path, *more: str) -> list[str]:
    return ["pull", "--store", store, "--cache-dir", str(cache), *more]


def push_args(store: str, cache: Path, *more: str) -> list[str]:
    return ["push", "--store", store, "--cache-dir", str(cache), *more]


def assert_whole(cache: Path, expected: dict[str, TreeEntry]) -> None:
    """The cache equals the source and the client's own scan finds nothing wrong."""
    assert snapshot_tree(cache) == expected
    assert leftovers(cache) == []
    report = scan(cache)
    assert report.warnings == ()
    assert report.incomplete_files == ()


def assert_whole_quickly(cache: Path, expected: dict[str, TreeEntry]) -> None:
    """`assert_whole` with the client's scan run in this process."""
    assert snapshot_tree(cache) == expected
    assert leftovers(cache) == []
    info = scan_cache_dir(cache)
    assert [str(w) for w in info.warnings] == []
    assert not getattr(info, "incomplete_files", ())


def store_temp_keys(folder: Path) -> list[str]:
    keys = [o.key for o in FolderStore(folder).listing("")]
    return [k for k in keys if ".hubstash-tmp-" in k]


# --------------------------------------------------------------------------------------
# Deterministic crash points


@pytest.mark.parametrize("point", PULL_POINTS)
def test_a_pull_killed_at_a_crash_point_is_completed_by_the_next_pull(
    point: str,
    filled_store: Path,
    source_tree: dict[str, TreeEntry],
    tmp_path: Path,
) -> None:
    cache = tmp_path / "hub"

    killed = run_cli(pull_args(str(filled_store), cache), crash_at=point)
    rerun = run_cli(pull_args(str(filled_store), cache))

    assert killed.code == KILLED, killed.err
    assert rerun.code == 0, rerun.err
    assert_whole(cache, source_tree)


@pytest.mark.parametrize("point", PUSH_POINTS)
def test_a_push_killed_at_a_crash_point_is_completed_by_the_next_push(
    point: str, source: Path, source_tree: dict[str, TreeEntry], tmp_path: Path
) -> None:
    store = tmp_path / "store"

    killed = run_cli(push_args(str(store), source), crash_at=point)
    rerun = run_cli(push_args(str(store), source))
    pulled = run_cli(pull_args(str(store), tmp_path / "hub"))

    assert killed.code == KILLED, killed.err
    assert rerun.code == 0, rerun.err
    assert pulled.code == 0, pulled.err
    assert store_temp_keys(store) == []
    assert_whole(tmp_path / "hub", source_tree)


def test_a_push_from_a_cache_a_pull_was_killed_in_carries_no_temporary_file(
    filled_store: Path, tmp_path: Path
) -> None:
    cache, store, restored = tmp_path / "hub", tmp_path / "store", tmp_path / "again"
    # The second link of a snapshot is still under its temporary name.
    killed = run_cli(
        pull_args(str(filled_store), cache), crash_at="cache-temp-written:2"
    )

    pushed = run_cli(push_args(str(store), cache))
    pulled = run_cli(pull_args(str(store), restored))

    assert killed.code == KILLED, killed.err
    assert leftovers(cache) != []
    assert (pushed.code, pulled.code) == (0, 0), (pushed.err, pulled.err)
    assert leftovers(restored) == []
    assert scan(restored).warnings == ()


# --------------------------------------------------------------------------------------
# On S3: a multipart upload and a ranged download cut short


@pytest.fixture
def s3_store(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, list[str]]:
    s3_credentials(monkeypatch)
    url = f"s3://{s3_server.new_bucket()}/hf"
    return url, ["--endpoint-url", s3_server.endpoint, "--part-size", "1"]


def big_source(cache: Path) -> Path:
    """A repo with one file of two upload parts (S3 refuses parts under 5 MiB)."""
    weights = pseudo_random_bytes("big", 6 * 1024 * 1024)
    files = [*default_files("s3"), HubFile("big.safetensors", weights, lfs=True)]
    write_canonical_repo(cache, "acme/big", files, trees=True)
    return cache


@pytest.mark.parametrize(
    "point", ["s3-part-uploaded", "push-blobs-uploaded", "push-manifests-written"]
)
def test_a_push_to_s3_killed_mid_upload_is_completed_by_the_next_push(
    point: str,
    s3_store: tuple[str, list[str]],
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    url, options = s3_store
    source = big_source(tmp_path / "source")

    killed = run_cli([*push_args(url, source), *options], crash_at=point)
    rerun = run_cli([*push_args(url, source), *options])
    pulled = run_cli([*pull_args(url, tmp_path / "hub"), *options])

    assert killed.code == KILLED, killed.err
    assert rerun.code == 0, rerun.err
    assert pulled.code == 0, pulled.err
    bucket = url.removeprefix("s3://").split("/")[0]
    assert [k for k in s3_server.keys(bucket) if "tmp" in k] == []
    assert_whole(tmp_path / "hub", snapshot_tree(source))


def test_a_pull_from_s3_killed_mid_download_is_completed_by_the_next_pull(
    s3_store: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, options = s3_store
    source = big_source(tmp_path / "source")
    s3 = open_store(url, _s3_options(options))
    assert push(s3, source).exit_code == 0
    cache = tmp_path / "hub"

    killed = run_cli([*pull_args(url, cache), *options], crash_at="pull-blob-placed")
    rerun = run_cli([*pull_args(url, cache), *options])

    assert killed.code == KILLED, killed.err
    assert rerun.code == 0, rerun.err
    assert_whole(cache, snapshot_tree(source))


def _s3_options(cli_options: list[str]) -> S3Options:
    return S3Options(endpoint_url=cli_options[1], part_size=TEST_PART_SIZE)


# --------------------------------------------------------------------------------------
# Seeded random kills


def random_crash(rng: random.Random, passes: dict[str, int]) -> str:
    point = rng.choice(sorted(passes))
    return f"{point}:{rng.randint(1, passes[point] + 1)}"


def kill_repeatedly(
    forker: Forker,
    args: list[str],
    rng: random.Random,
    passes: dict[str, int],
    outcomes: Counter[str],
) -> None:
    """Run the command one to three times, each to a random pass of a random point."""
    for _ in range(rng.randint(1, 3)):
        crash = random_crash(rng, passes)
        ran = forker.run(args, crash_at=crash)
        assert ran.code in (KILLED, 0), (crash, ran)
        outcomes["runs killed" if ran.code == KILLED else "runs done first"] += 1


def test_pulls_killed_at_random_points_are_completed_by_the_next_pull(
    filled_store: Path,
    source_tree: dict[str, TreeEntry],
    forker: Forker,
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    outcomes: Counter[str] = Counter()
    for trial in range(PULL_TRIALS):
        cache = tmp_path / f"hub-{trial}"
        args = pull_args(str(filled_store), cache)
        kill_repeatedly(forker, args, rng, PULL_PASSES, outcomes)

        rerun = forker.run(args)

        assert rerun.code == 0, (trial, outcomes)
        assert_whole_quickly(cache, source_tree)
        outcomes["trials made whole"] += 1
    print(f"random pull kills, seed {SEED}: {dict(outcomes)}")
    assert outcomes["trials made whole"] == PULL_TRIALS
    # How often a random point is reached depends on what earlier killed runs
    # left, which threads decide; half the trials must at least see a kill.
    assert outcomes["runs killed"] >= PULL_TRIALS // 2


def test_pushes_killed_at_random_points_are_completed_by_the_next_push(
    source: Path,
    source_tree: dict[str, TreeEntry],
    forker: Forker,
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED + 1)
    outcomes: Counter[str] = Counter()
    for trial in range(PUSH_TRIALS):
        store = tmp_path / f"store-{trial}"
        args = push_args(str(store), source)
        kill_repeatedly(forker, args, rng, PUSH_PASSES, outcomes)

        rerun = forker.run(args)
        pulled = forker.run(pull_args(str(store), tmp_path / f"hub-{trial}"))

        assert (rerun.code, pulled.code) == (0, 0), (trial, outcomes)
        assert store_temp_keys(store) == []
        assert_whole_quickly(tmp_path / f"hub-{trial}", source_tree)
        outcomes["trials made whole"] += 1
    print(f"random push kills, seed {SEED + 1}: {dict(outcomes)}")
    assert outcomes["trials made whole"] == PUSH_TRIALS
    # How often a random point is reached depends on what earlier killed runs
    # left, which threads decide; half the trials must at least see a kill.
    assert outcomes["runs killed"] >= PUSH_TRIALS // 2
