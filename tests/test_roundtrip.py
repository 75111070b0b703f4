"""Push a genuine cache, wipe it, pull it: the Hub client cannot tell the difference.

The cache is written by the real huggingface_hub client downloading from a local
Hub-compatible server; the restored cache is judged by the same client, offline.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubstash import pull, push
from hubstash.stores import FolderStore
from tests.support.caches import (
    DATASET_ID,
    MODEL_ID,
    GenuineCache,
    build_genuine_cache,
    snapshot_tree,
)
from tests.support.fake_hub import FakeHub
from tests.support.hf_client import FileDownload, SnapshotDownload, run_offline, scan
from tests.support.stores import StoreUnderTest


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GenuineCache]:
    """One genuine cache per module; tests only read it."""
    cache = tmp_path_factory.mktemp("genuine") / "hub"
    with FakeHub() as hub:
        yield build_genuine_cache(cache, hub)


def offline_calls(genuine: GenuineCache) -> list[FileDownload | SnapshotDownload]:
    """Every file at every ref, plus snapshots as the cache was made."""
    calls: list[FileDownload | SnapshotDownload] = []
    for repo in genuine.repos:
        for ref, commit in repo.refs.items():
            for path in repo.revisions[commit].files:
                calls.append(FileDownload(repo.repo_id, path, repo.repo_type, ref))
    calls.append(SnapshotDownload(MODEL_ID))
    calls.append(SnapshotDownload(MODEL_ID, allow_patterns=("*.json", "onnx/*")))
    calls.append(SnapshotDownload(DATASET_ID, repo_type="dataset"))
    return calls


def assert_client_accepts(cache: Path, genuine: GenuineCache) -> None:
    report = scan(cache)
    assert report.warnings == ()
    assert report.incomplete_files == ()
    outcomes = run_offline(cache, offline_calls(genuine))
    assert [o.error for o in outcomes] == [None] * len(outcomes)


def test_restored_cache_is_identical_to_the_original(
    genuine: GenuineCache, store: StoreUnderTest, tmp_path: Path
) -> None:
    restored = tmp_path / "restored" / "hub"

    pushed = push(store.open(), genuine.cache_dir)
    pulled = pull(store.open(), restored)

    assert pushed.exit_code == 0, pushed.findings
    assert pulled.exit_code == 0, pulled.findings
    assert snapshot_tree(restored) == snapshot_tree(genuine.cache_dir)
    assert_client_accepts(restored, genuine)


def test_a_second_push_uploads_nothing_and_a_second_pull_downloads_nothing(
    genuine: GenuineCache, store: StoreUnderTest, tmp_path: Path
) -> None:
    first = push(store.open(), genuine.cache_dir)
    pull(store.open(), tmp_path / "hub")

    again = push(store.open(), genuine.cache_dir)
    pulled_again = pull(store.open(), tmp_path / "hub")

    assert first.uploaded_files > 0
    assert again.changed_nothing
    assert again.present_files == first.uploaded_files + first.present_files
    assert pulled_again.downloaded_files == 0
    assert pulled_again.present_bytes > 0


def test_content_shared_by_two_repos_is_stored_once(
    genuine: GenuineCache, tmp_path: Path
) -> None:
    store = FolderStore(tmp_path / "store")

    push(store, genuine.cache_dir)

    blobs = [o.key for o in store.listing("blobs/")]
    assert (
        blobs.count(f"blobs/sha256/{genuine.shared_blob[:2]}/{genuine.shared_blob}")
        == 1
    )
    assert len(blobs) == len(set(blobs))
    for folder in genuine.shared_by:
        assert (genuine.cache_dir / folder / "blobs" / genuine.shared_blob).is_file()


def test_one_revision_restores_only_its_files_and_ref(
    genuine: GenuineCache, tmp_path: Path
) -> None:
    store = FolderStore(tmp_path / "store")
    push(store, genuine.cache_dir)
    restored = tmp_path / "hub"

    result = pull(store, restored, [f"{MODEL_ID}@refs/pr/1"])

    repo = restored / "models--acme--tiny-model"
    assert result.revisions == 1
    assert sorted(p.name for p in (repo / "snapshots").iterdir()) == [genuine.model_pr]
    assert (
        repo / "refs" / "refs" / "pr" / "1"
    ).read_bytes() == genuine.model_pr.encode()
    assert not (repo / "refs" / "main").exists()
    assert scan(restored).warnings == ()


def test_dry_run_writes_nothing(genuine: GenuineCache, tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "store")

    planned = push(store, genuine.cache_dir, dry_run=True)

    assert planned.uploaded_files > 0
    assert not (tmp_path / "store").exists()
    push(store, genuine.cache_dir)
    planned_pull = pull(store, tmp_path / "hub", dry_run=True)
    assert planned_pull.downloaded_bytes == planned.uploaded_bytes
    assert not (tmp_path / "hub").exists()


def test_patterns_select_files_on_push_and_on_pull(
    genuine: GenuineCache, tmp_path: Path
) -> None:
    store = FolderStore(tmp_path / "store")
    push(store, genuine.cache_dir, [MODEL_ID], include=["*.json", "onnx/"])
    restored = tmp_path / "hub"

    pull(store, restored, [MODEL_ID], exclude=["onnx/*"])

    snapshot = restored / "models--acme--tiny-model" / "snapshots" / genuine.model_main
    files = sorted(
        p.relative_to(snapshot).as_posix()
        for p in snapshot.rglob("*")
        if not p.is_dir()
    )
    assert files == ["config.json"]


def test_copy_mode_writes_the_no_symlink_layout(
    genuine: GenuineCache, tmp_path: Path
) -> None:
    store = FolderStore(tmp_path / "store")
    push(store, genuine.cache_dir)
    restored = tmp_path / "hub"

    result = pull(store, restored, copy=True)

    repo = restored / "models--acme--tiny-model"
    snapshot_files = [p for p in (repo / "snapshots").rglob("*") if not p.is_dir()]
    assert result.copy_mode
    assert snapshot_files
    assert not any(p.is_symlink() for p in snapshot_files)
    assert list((repo / "blobs").iterdir()) == []
    assert_client_accepts(restored, genuine)


def test_disabling_symlinks_in_the_environment_chooses_copies(
    genuine: GenuineCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FolderStore(tmp_path / "store")
    push(store, genuine.cache_dir, [MODEL_ID])
    monkeypatch.setenv("HF_HUB_DISABLE_SYMLINKS", "1")

    result = pull(store, tmp_path / "hub")

    assert result.copy_mode
    assert not any(p.is_symlink() for p in (tmp_path / "hub").rglob("*"))


def test_wiped_cache_is_restored_in_place(
    genuine: GenuineCache, tmp_path: Path
) -> None:
    cache = tmp_path / "hub"
    shutil.copytree(genuine.cache_dir, cache, symlinks=True)
    store = FolderStore(tmp_path / "store")
    push(store, cache)
    before = snapshot_tree(cache)

    shutil.rmtree(cache)
    pull(store, cache)

    assert snapshot_tree(cache) == before


def test_content_shared_by_two_repos_is_restored_into_both(
    genuine: GenuineCache, tmp_path: Path
) -> None:
    store = FolderStore(tmp_path / "store")
    push(store, genuine.cache_dir)

    # One job: the shared content is fetched before the second repo has a folder.
    result = pull(store, tmp_path / "hub", jobs=1)

    assert result.exit_code == 0, result.findings
    for folder in genuine.shared_by:
        assert (tmp_path / "hub" / folder / "blobs" / genuine.shared_blob).is_file()
