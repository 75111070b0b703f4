"""Field cases about cache layouts and links (L1-L4), each built as users meet it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hubstash import ExitCode, pull, push
from hubstash.stores import FolderStore
from tests.support.caches import (
    HandBuiltRepo,
    default_files,
    make_absolute_links,
    make_copy_beside_blob,
    make_cwd_relative_link,
    make_degraded,
    make_xet_two_hop,
    write_canonical_repo,
)
from tests.support.fake_hub import HubFile
from tests.support.hashes import sha256_hex
from tests.support.hf_client import load_offline, scan

MiB = 1024 * 1024


def manifest_entries(store: FolderStore, repo: HandBuiltRepo) -> dict[str, str]:
    """Path to blob name, as the store's manifests of the repo's commit say."""
    entries: dict[str, str] = {}
    prefix = f"repos/{repo.folder}/manifests/{repo.commit}/"
    for obj in store.listing(prefix):
        for f in json.loads(store.read(obj.key))["files"]:
            entries[f["path"]] = f["blob"]
    return entries


def links_of(cache: Path, repo: HandBuiltRepo) -> dict[str, str]:
    snapshot = cache / repo.folder / "snapshots" / repo.commit
    return {
        p.relative_to(snapshot).as_posix(): os.readlink(p)
        for p in snapshot.rglob("*")
        if p.is_symlink()
    }


def canonical_links(repo: HandBuiltRepo) -> dict[str, str]:
    return {
        path: "../" * (path.count("/") + 2) + f"blobs/{repo.blob_name(path)}"
        for path in repo.files
    }


def test_l1_links_in_every_form_are_recorded_as_blobs_and_restored_canonical(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "tmp" / "cache"
    relative = write_canonical_repo(cache, "acme/relative", default_files("a"))
    absolute = make_absolute_links(cache, "acme/absolute")
    cwd = make_cwd_relative_link(cache, tmp_path, "acme/cwd-relative").repo
    store = FolderStore(tmp_path / "store")

    result = push(store, cache)
    pull(store, tmp_path / "restored")

    assert result.exit_code == ExitCode.OK, result.findings
    for repo in (relative, absolute, cwd):
        expected = {p: repo.blob_name(p) for p in repo.files}
        assert manifest_entries(store, repo) == expected
        assert links_of(tmp_path / "restored", repo) == canonical_links(repo)
    assert scan(tmp_path / "restored").warnings == ()


def test_l1_a_link_that_resolves_nowhere_is_reported_and_the_rest_is_pushed(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "hub"
    repo = write_canonical_repo(cache, "acme/dangling", default_files())
    repo.blob_path("config.json").unlink()
    store = FolderStore(tmp_path / "store")

    result = push(store, cache)

    dangling = [f for f in result.findings if f.kind == "dangling-link"]
    assert [(f.repo, f.path) for f in dangling] == [("acme/dangling", "config.json")]
    assert result.exit_code == ExitCode.INCOMPLETE
    assert set(manifest_entries(store, repo)) == set(repo.files) - {"config.json"}


def test_l2_content_linked_from_two_commits_is_stored_and_restored_once(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "hub"
    weights = HubFile("model.safetensors", os.urandom(200 * MiB), lfs=True)
    first = write_canonical_repo(cache, "acme/big", [weights, HubFile("a.txt", b"1")])
    write_canonical_repo(
        cache, "acme/big", [weights, HubFile("a.txt", b"2")], refs=("v2",)
    )
    store = FolderStore(tmp_path / "store")

    pushed = push(store, cache)
    again = push(store, cache)
    pull(store, tmp_path / "restored")

    big_blobs = [o for o in store.listing("blobs/") if o.size == 200 * MiB]
    assert len(big_blobs) == 1
    assert pushed.uploaded_bytes < 201 * MiB
    assert again.uploaded_files == 0
    assert 200 * MiB <= disk_usage(tmp_path / "restored") < 201 * MiB
    assert (
        len(list((tmp_path / "restored" / first.folder / "snapshots").iterdir())) == 2
    )


def disk_usage(folder: Path) -> int:
    """Bytes the folder really occupies: each inode once, links not followed."""
    seen: set[int] = set()
    total = 0
    for path in folder.rglob("*"):
        info = path.lstat()
        if info.st_ino not in seen:
            seen.add(info.st_ino)
            total += info.st_blocks * 512
    return total


def test_l3_every_layout_is_pushed_and_stored_once(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    normal = write_canonical_repo(cache, "acme/normal", default_files())
    beside = make_copy_beside_blob(cache, "acme/beside").repo
    degraded = make_degraded(cache, "acme/degraded", trees=True)
    store = FolderStore(tmp_path / "store")

    result = push(store, cache)

    distinct = {sha256_hex(f.content) for f in default_files()}
    assert result.exit_code == ExitCode.OK, result.findings
    assert len(list(store.listing("blobs/"))) == len(distinct) + 1  # + trees listing
    for repo in (normal, beside, degraded):
        assert manifest_entries(store, repo) == {
            p: normal.blob_name(p) for p in normal.files
        }


def test_l3_pull_writes_links_by_default_and_copies_when_asked(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    degraded = make_degraded(cache, "acme/degraded")
    beside = make_copy_beside_blob(cache, "acme/beside").repo
    store = FolderStore(tmp_path / "store")
    push(store, cache)

    pull(store, tmp_path / "linked")
    pull(store, tmp_path / "copied", copy=True)

    assert set(links_of(tmp_path / "linked", beside)) == set(beside.files)
    assert set(links_of(tmp_path / "linked", degraded)) == set(degraded.files)
    copied = tmp_path / "copied" / beside.folder
    assert links_of(tmp_path / "copied", beside) == {}
    assert list((copied / "blobs").iterdir()) == []
    for path, hub_file in beside.files.items():
        assert (
            copied / "snapshots" / beside.commit / path
        ).read_bytes() == hub_file.content
    for where in ("linked", "copied"):
        assert scan(tmp_path / where).warnings == ()
        content = load_offline(
            tmp_path / where, "model", "acme/degraded", "config.json"
        )
        assert content == degraded.files["config.json"].content


def test_l4_two_hop_xet_chains_are_followed_and_restored_as_plain_blobs(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "hub"
    xet = make_xet_two_hop(cache, ("acme/xet-a", "acme/xet-b"))
    store = FolderStore(tmp_path / "store")

    result = push(store, cache)
    pull(store, tmp_path / "restored")

    assert result.exit_code == ExitCode.OK, result.findings
    assert result.uploaded_bytes >= xet.payload.stat().st_size
    for repo in xet.repos:
        blob = tmp_path / "restored" / repo.folder / "blobs" / xet.blob_name
        assert blob.is_file()
        assert not blob.is_symlink()
        assert sha256_hex(blob.read_bytes()) == xet.blob_name
    assert scan(tmp_path / "restored").warnings == ()
    content = load_offline(tmp_path / "restored", "model", "acme/xet-b", xet.filename)
    assert sha256_hex(content) == xet.blob_name


def test_l4_a_corrupt_shared_payload_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    xet = make_xet_two_hop(cache, ("acme/xet-a",))
    os.chmod(xet.payload, 0o644)
    with open(xet.payload, "r+b") as f:
        f.write(b"\xff")

    result = push(FolderStore(tmp_path / "store"), cache)

    corrupt = [f for f in result.findings if f.kind == "corrupt-blob"]
    assert [f.expected for f in corrupt] == [xet.blob_name]
    assert result.exit_code == ExitCode.INTEGRITY


def test_l3_two_machines_with_different_layouts_of_one_revision_share_it(
    tmp_path: Path,
) -> None:
    linked = write_canonical_repo(tmp_path / "a", "acme/shared", default_files())
    copies = make_degraded(tmp_path / "b", "acme/shared")
    assert copies.commit == linked.commit
    store = FolderStore(tmp_path / "store")

    first = push(store, tmp_path / "a")
    second = push(store, tmp_path / "b")
    again = push(store, tmp_path / "b")
    pulled = pull(store, tmp_path / "restored")

    assert [r.exit_code for r in (first, second, again, pulled)] == [0, 0, 0, 0]
    assert again.changed_nothing
    assert links_of(tmp_path / "restored", linked) == canonical_links(linked)


def test_l3_a_piece_that_contradicts_the_store_is_never_written(tmp_path: Path) -> None:
    honest = write_canonical_repo(tmp_path / "a", "acme/x", default_files())
    other_files = [HubFile("config.json", b'{"other": true}\n'), *default_files()[1:]]
    liar = write_canonical_repo(tmp_path / "b", "acme/x", other_files)
    # The same commit, other bytes for one path: a store must never hold both.
    (liar.path / "snapshots" / liar.commit).rename(
        liar.path / "snapshots" / honest.commit
    )
    (liar.path / "refs" / "main").write_text(honest.commit)
    store = FolderStore(tmp_path / "store")
    push(store, tmp_path / "a")

    result = push(store, tmp_path / "b")

    assert [f.kind for f in result.findings] == ["manifest-conflict"]
    assert result.exit_code == ExitCode.INTEGRITY
    assert pull(store, tmp_path / "restored").exit_code == ExitCode.OK
