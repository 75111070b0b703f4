"""verify checks a cache (and compares it with a store); ls describes a store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hubstash import ExitCode, list_store, pull, push, verify
from hubstash.errors import LocalFilesystemError
from hubstash.stores import FolderStore
from tests.support.caches import default_files, make_corrupt_blob, write_canonical_repo


def test_verify_passes_an_intact_cache(tmp_path: Path) -> None:
    repo = write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())

    result = verify(tmp_path / "hub")

    assert result.exit_code == ExitCode.OK, result.findings
    assert (result.repos, result.files) == (1, len(repo.files))
    assert result.blobs_hashed == len(repo.files)


def test_verify_finds_a_corrupt_blob(tmp_path: Path) -> None:
    corrupt = make_corrupt_blob(tmp_path / "hub")

    result = verify(tmp_path / "hub")

    (finding,) = result.findings
    assert (finding.kind, finding.path) == ("corrupt-blob", corrupt.path)
    assert (finding.expected, finding.actual) == (corrupt.expected, corrupt.actual)
    assert result.exit_code == ExitCode.INTEGRITY


def test_verify_with_a_store_reports_what_the_cache_lacks(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    repo = write_canonical_repo(cache, "acme/tiny", default_files(), refs=("main",))
    other = write_canonical_repo(cache, "acme/other", default_files("o"))
    store = FolderStore(tmp_path / "store")
    push(store, cache)
    repo.snapshot_path("config.json").unlink()
    shutil.rmtree(other.path)

    result = verify(cache, store=store)

    missing = {
        (f.repo, f.path) for f in result.findings if f.kind == "missing-from-cache"
    }
    assert (repo.repo_id, f"{repo.commit[:12]}/config.json") in missing
    assert {p for r, p in missing if r == "acme/other"} == {
        f"{other.commit[:12]}/{p}" for p in other.files
    }
    assert any(
        f.kind == "ref-differs" and f.repo == "acme/other" for f in result.findings
    )
    assert result.exit_code == ExitCode.INCOMPLETE


def test_ls_describes_repos_revisions_refs_and_sizes(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    repo = write_canonical_repo(
        cache, "acme/tiny", default_files(), refs=("main", "v1")
    )
    store = FolderStore(tmp_path / "store")
    push(store, cache)

    (listed,) = list_store(store)

    (revision,) = listed.revisions
    assert str(listed.repo) == "acme/tiny"
    assert (revision.commit, revision.refs) == (repo.commit, ("main", "v1"))
    assert revision.files == len(repo.files)
    assert revision.size == sum(len(f.content) for f in repo.files.values())


def test_pull_refuses_to_start_without_disk_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())
    store = FolderStore(tmp_path / "store")
    push(store, tmp_path / "hub")
    real = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: real._replace(free=1024))

    with pytest.raises(LocalFilesystemError, match=r"free at least .* MiB more"):
        pull(store, tmp_path / "restored")
    assert not (tmp_path / "restored").exists()
