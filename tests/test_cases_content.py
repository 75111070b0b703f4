"""Field cases about refs, markers, incomplete or corrupt content and secrets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hubstash import ExitCode, UnsafeStoreContent, pull, push, verify
from hubstash.stores import FolderStore
from tests.support.caches import (
    MODEL_ID,
    build_genuine_cache,
    default_files,
    make_corrupt_blob,
    make_partial_download,
    make_token_files,
    write_canonical_repo,
)
from tests.support.fake_hub import FakeHub, HubFile
from tests.support.hf_client import scan, snapshot_offline
from tests.support.stores import StoreUnderTest


def stored_bytes(store: FolderStore) -> dict[str, bytes]:
    return {o.key: store.read(o.key) for o in store.listing("")}


# M1 — refs


def test_m1_refs_are_restored_byte_for_byte(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    repo = write_canonical_repo(
        cache, "acme/refs", default_files(), refs=("main", "refs/pr/1", "feature/x")
    )
    store = FolderStore(tmp_path / "store")
    push(store, cache)

    pull(store, tmp_path / "restored")

    refs = tmp_path / "restored" / repo.folder / "refs"
    for name in ("main", "refs/pr/1", "feature/x"):
        assert (refs / name).read_bytes() == repo.commit.encode()
        assert len((refs / name).read_bytes()) == 40


def test_m1_verify_names_each_broken_ref(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    newline = write_canonical_repo(cache, "acme/newline", default_files("n"))
    (newline.path / "refs" / "main").write_bytes(newline.commit.encode() + b"\n")
    missing = write_canonical_repo(cache, "acme/missing", default_files("m"))
    (missing.path / "refs" / "v1").write_bytes(b"f" * 40)
    no_refs = write_canonical_repo(cache, "acme/norefs", default_files("r"), refs=())

    result = verify(cache)

    named = {(f.kind, f.repo, f.path) for f in result.findings}
    assert named == {
        ("bad-ref", "acme/newline", "refs/main"),
        ("ref-without-snapshot", "acme/missing", "refs/v1"),
        ("no-refs", "acme/norefs", "refs/"),
    }
    assert result.exit_code != ExitCode.OK
    assert no_refs.commit


def test_m1_a_ref_with_a_newline_is_pushed_as_the_commit_it_means(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "hub"
    repo = write_canonical_repo(cache, "acme/newline", default_files())
    (repo.path / "refs" / "main").write_bytes(repo.commit.encode() + b"\n")
    store = FolderStore(tmp_path / "store")

    push(store, cache)

    assert store.read(f"repos/{repo.folder}/refs/main") == repo.commit.encode()


# M2 — .no_exist and empty files


def test_m2_markers_and_empty_files_round_trip(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    files = [*default_files(), HubFile("empty.txt", b"")]
    repo = write_canonical_repo(cache, "acme/empty", files)
    marker = repo.path / ".no_exist" / repo.commit / "adapter_config.json"
    marker.parent.mkdir(parents=True)
    marker.touch()
    store = FolderStore(tmp_path / "store")
    push(store, cache)

    pull(store, tmp_path / "restored")

    restored = tmp_path / "restored" / repo.folder
    restored_marker = restored / ".no_exist" / repo.commit / "adapter_config.json"
    assert restored_marker.is_file()
    assert restored_marker.stat().st_size == 0
    assert (restored / "snapshots" / repo.commit / "empty.txt").read_bytes() == b""


# M3 — trees listings of partial snapshots


def test_m3_tree_listings_round_trip_and_offline_snapshots_behave_the_same(
    tmp_path: Path,
) -> None:
    with FakeHub() as hub:
        genuine = build_genuine_cache(tmp_path / "hub", hub)
    store = FolderStore(tmp_path / "store")
    push(store, genuine.cache_dir)
    restored = tmp_path / "restored" / "hub"

    pull(store, restored)

    name = f"models--acme--tiny-model/trees/{genuine.model_pr}.json"
    original, copy = genuine.cache_dir / name, restored / name
    assert copy.read_bytes() == original.read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    for patterns in (None, ["*.json"]):
        before = snapshot_offline(
            genuine.cache_dir, "model", MODEL_ID, "refs/pr/1", patterns
        )
        after = snapshot_offline(restored, "model", MODEL_ID, "refs/pr/1", patterns)
        assert after == before


# I1 — interrupted downloads


def test_i1_partial_downloads_never_reach_the_store(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    partial = make_partial_download(cache)
    store = FolderStore(tmp_path / "store")

    result = push(store, cache)

    keys = [o.key for o in store.listing("")]
    assert not any("incomplete" in key for key in keys)
    assert result.files == len(partial.present)
    reported = [f for f in result.findings if f.kind == "partial-download"]
    assert len(reported) == 1
    assert partial.missing in reported[0].message


# I2 — corrupt blobs


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_i2_push_refuses_a_corrupt_blob_and_pushes_the_rest(
    tmp_path: Path, how: str
) -> None:
    cache = tmp_path / "hub"
    corrupt = make_corrupt_blob(cache, how)  # type: ignore[arg-type]
    store = FolderStore(tmp_path / "store")

    result = push(store, cache)

    (finding,) = result.findings
    assert finding.kind == "corrupt-blob"
    assert (finding.repo, finding.path) == ("acme/corrupt", corrupt.path)
    assert (finding.expected, finding.actual) == (corrupt.expected, corrupt.actual)
    assert result.exit_code == ExitCode.INTEGRITY
    assert result.files == len(corrupt.repo.files) - 1


@pytest.mark.parametrize("copy", [False, True], ids=["links", "copies"])
def test_i2_pull_refuses_a_store_blob_corrupted_after_upload(
    store: StoreUnderTest, tmp_path: Path, copy: bool
) -> None:
    cache = tmp_path / "hub"
    repo = write_canonical_repo(cache, "acme/tiny", default_files())
    backend = store.open()
    push(backend, cache)
    blob = repo.blob_name("model.safetensors")
    key = f"blobs/sha256/{blob[:2]}/{blob}"
    good = b"".join(backend.read_stream(key))
    backend.write(key, good[:100] + bytes([good[100] ^ 1]) + good[101:])
    target = tmp_path / "restored"

    result = pull(store.open(), target, copy=copy)

    assert result.exit_code == ExitCode.INTEGRITY
    assert result.revisions == 0
    failed = [f for f in result.findings if f.kind == "download-failed"]
    assert [f.expected for f in failed] == [blob]
    # Verified blobs may stay for the next run; nothing the client reads appears.
    repo_dir = target / repo.folder
    assert not (repo_dir / "blobs" / blob).exists()
    assert list((repo_dir / "snapshots").iterdir()) == []
    assert not (repo_dir / "refs").exists()
    assert not list(target.rglob("*.incomplete"))
    assert scan(target).warnings == ()


# S1 — secrets beside the cache


def test_s1_no_token_ever_reaches_the_store(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf_home"
    tokens = make_token_files(hf_home)
    repo = write_canonical_repo(hf_home / "hub", "acme/tiny", default_files())
    sneaky = repo.snapshot_path("token")
    os.symlink(os.path.relpath(tokens.token, sneaky.parent), sneaky)
    store = FolderStore(tmp_path / "store")

    push(store, hf_home)
    push(store, hf_home / "hub")

    everything = stored_bytes(store)
    for secret in tokens.secrets:
        assert not any(secret.encode() in data for data in everything.values())
    assert not any(
        name in key
        for key in everything
        for name in ("token", "stored_tokens", "sandbox")
    )


def test_s1_a_snapshot_folder_linked_outside_the_cache_is_not_read(
    tmp_path: Path,
) -> None:
    hf_home = tmp_path / "hf_home"
    tokens = make_token_files(hf_home)
    repo = write_canonical_repo(hf_home / "hub", "acme/tiny", default_files())
    os.symlink(hf_home, repo.path / "snapshots" / ("e" * 40))
    store = FolderStore(tmp_path / "store")

    result = push(store, hf_home)

    everything = stored_bytes(store)
    assert any(f.kind == "link-outside-cache" for f in result.findings)
    for secret in tokens.secrets:
        assert not any(secret.encode() in data for data in everything.values())


def test_pull_never_writes_through_a_cache_folder_linked_elsewhere(
    tmp_path: Path,
) -> None:
    repo = write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())
    store = FolderStore(tmp_path / "store")
    push(store, tmp_path / "hub")
    outside = tmp_path / "outside"
    outside.mkdir()
    snapshots = tmp_path / "restored" / repo.folder / "snapshots"
    snapshots.mkdir(parents=True)
    os.symlink(outside, snapshots / repo.commit)

    with pytest.raises(UnsafeStoreContent):
        pull(store, tmp_path / "restored", copy=True)
    pull(store, tmp_path / "linked")

    assert list(outside.iterdir()) == []
