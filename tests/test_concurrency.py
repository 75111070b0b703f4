"""Several writers at once: pulls into one cache, pushes into one store, the client.

Processes are stepped past each other with crash-point pauses (`PausedRun`): one
stops at a named point, the other runs, then the first goes on. Nothing is timed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hubstash import push
from hubstash.stores import FolderStore
from tests.support.caches import default_files, snapshot_tree, write_canonical_repo
from tests.support.fake_hub import FakeHub
from tests.support.hf_client import (
    CallOutcome,
    SnapshotDownload,
    download,
    run_offline,
    scan,
)
from tests.support.runs import PausedRun, leftovers, run_cli

REPOS = ("acme/a", "acme/b", "acme/c")


def write_repos(cache: Path, repos: tuple[str, ...] = REPOS) -> Path:
    """Small models sharing their config and vocabulary blobs."""
    for repo in repos:
        write_canonical_repo(cache, repo, default_files(repo), trees=True)
    return cache


def assert_clean(cache: Path) -> None:
    report = scan(cache)
    assert report.warnings == ()
    assert report.incomplete_files == ()
    assert leftovers(cache) == []


def pull_args(store: Path, cache: Path, *repos: str) -> list[str]:
    return ["pull", *repos, "--store", str(store), "--cache-dir", str(cache)]


def push_args(store: Path, cache: Path, *more: str) -> list[str]:
    return ["push", "--store", str(store), "--cache-dir", str(cache), *more]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_repos(tmp_path / "source")


@pytest.fixture
def store(source: Path, tmp_path: Path) -> Path:
    assert push(FolderStore(tmp_path / "store"), source).exit_code == 0
    return tmp_path / "store"


# --------------------------------------------------------------------------------------
# Two pulls into one cache


@pytest.mark.parametrize(
    "point",
    [
        "pull-links-written",  # between a revision's links and its refs
        "pull-blob-chunk-written",  # holding the lock of a blob both pulls need
        "pull-blob-placed:2",
    ],
)
def test_two_pulls_of_overlapping_repos_into_one_cache_both_succeed(
    point: str, source: Path, store: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "hub"
    first = PausedRun(
        pull_args(store, cache, "acme/a", "acme/b"), point, tmp_path / "fifos"
    )

    first.wait_until_paused()
    second = run_cli(pull_args(store, cache, "acme/b", "acme/c"))
    first.resume()
    first_ran = first.finish()

    assert (first_ran.code, second.code) == (0, 0), (first_ran.err, second.err)
    assert snapshot_tree(cache) == snapshot_tree(source)
    assert_clean(cache)


def test_two_pulls_started_together_both_succeed(
    source: Path, store: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "hub"
    outcomes: list[int] = []

    def pull_in_thread(*repos: str) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: outcomes.append(
                run_cli(pull_args(store, cache, *repos)).code
            )
        )
        thread.start()
        return thread

    threads = [pull_in_thread("acme/a", "acme/b"), pull_in_thread("acme/b", "acme/c")]
    for thread in threads:
        thread.join()

    assert outcomes == [0, 0]
    assert snapshot_tree(cache) == snapshot_tree(source)
    assert_clean(cache)


# --------------------------------------------------------------------------------------
# Two pushes into one store


@pytest.mark.parametrize(
    "point", ["push-blobs-uploaded", "push-manifests-written", "store-temp-written:3"]
)
def test_two_pushes_of_different_files_of_one_revision_end_in_their_union(
    point: str, tmp_path: Path
) -> None:
    source = write_repos(tmp_path / "source", ("acme/a",))
    store = tmp_path / "store"
    jsons = PausedRun(
        push_args(store, source, "--include", "*.json"), point, tmp_path / "fifos"
    )

    jsons.wait_until_paused()
    others = run_cli(push_args(store, source, "--exclude", "*.json"))
    jsons.resume()
    jsons_ran = jsons.finish()
    pulled = run_cli(pull_args(store, tmp_path / "hub"))

    assert (jsons_ran.code, others.code) == (0, 0), (jsons_ran.err, others.err)
    assert pulled.code == 0, pulled.err
    assert snapshot_tree(tmp_path / "hub") == snapshot_tree(source)


# --------------------------------------------------------------------------------------
# A pull while a push runs


@pytest.mark.parametrize(
    "point", ["push-blobs-uploaded", "push-manifests-written", "store-temp-written:4"]
)
def test_a_pull_during_a_push_gets_a_consistent_cache(
    point: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    source = write_repos(tmp_path / "source")
    assert push(FolderStore(store), source, repos=["acme/a"]).exit_code == 0
    pushing = PausedRun(push_args(store, source), point, tmp_path / "fifos")

    pushing.wait_until_paused()
    during = run_cli(pull_args(store, tmp_path / "hub"))
    assert_clean(tmp_path / "hub")
    pushing.resume()
    pushed = pushing.finish()
    after = run_cli(pull_args(store, tmp_path / "hub"))

    assert during.code == 0, during.err
    assert pushed.code == 0, pushed.err
    assert after.code == 0, after.err
    assert snapshot_tree(tmp_path / "hub") == snapshot_tree(source)
    assert_clean(tmp_path / "hub")


# --------------------------------------------------------------------------------------
# hubstash and the Hub client writing the same blobs


def test_a_pull_beside_the_hub_client_downloading_the_same_repo(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    files = default_files("live")
    fake_hub.add_commit("model", "acme/live", files, ["main"])
    genuine = tmp_path / "genuine"
    assert _ok(download(genuine, fake_hub.endpoint, [SnapshotDownload("acme/live")]))
    assert push(FolderStore(tmp_path / "store"), genuine).exit_code == 0
    cache = tmp_path / "hub"
    asked_before = _metadata_requests(fake_hub)
    client: list[list[CallOutcome]] = []
    pulling = PausedRun(
        [*pull_args(tmp_path / "store", cache), "--jobs", "1"],
        "pull-blob-chunk-written",  # holding the client's lock of that blob
        tmp_path / "fifos",
    )

    pulling.wait_until_paused()
    downloading = threading.Thread(
        target=lambda: client.append(
            download(cache, fake_hub.endpoint, [SnapshotDownload("acme/live")])
        )
    )
    downloading.start()
    # The client asks for every file's metadata before it takes that file's lock.
    wanted = asked_before + len(files)
    while downloading.is_alive() and _metadata_requests(fake_hub) < wanted:
        downloading.join(timeout=0.01)
    waits_for_the_lock = downloading.is_alive()
    pulling.resume()
    pulled = pulling.finish()
    downloading.join()

    assert waits_for_the_lock
    assert pulled.code == 0, pulled.err
    assert _ok(client[0])
    assert_clean(cache)
    offline = run_offline(cache, [SnapshotDownload("acme/live")])
    assert offline[0].files == tuple(sorted(f.path for f in files))


def _metadata_requests(hub: FakeHub) -> int:
    return sum(r.method == "HEAD" and "/resolve/" in r.path for r in hub.requests)


def _ok(outcomes: list[CallOutcome]) -> bool:
    return all(o.error is None for o in outcomes)
