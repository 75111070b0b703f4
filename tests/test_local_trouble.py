"""Trouble on the local machine: no permission, a full disk, odd things in the cache.

Each case ends with the exit code of the contract, one clear line saying what went
wrong, and nothing half-written: the client's scan stays clean and what the cache
held before is untouched. Permission cases run hubstash as an unprivileged user
(the tests run as root here, and root may write anything); the others inject the
error at the write path.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubstash import push
from hubstash.cli import main
from hubstash.stores import FolderStore
from hubstash.transfer import VerifyingSink
from tests.support.caches import (
    HandBuiltRepo,
    TreeEntry,
    default_files,
    snapshot_tree,
    write_canonical_repo,
)
from tests.support.hf_client import scan
from tests.support.runs import Ran, leftovers, run_cli

NOBODY = 65534


def as_nobody() -> list[str]:
    """The command prefix that runs a process as an unprivileged user."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to drop root"
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder every user may enter (pytest's own temporary folders are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="hubstash-trouble-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def readable_by_all(folder: Path) -> None:
    for root, folders, files in os.walk(folder):
        for name in [*folders, *files]:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o555 if path.is_dir() else 0o644)


def error_lines(ran: Ran | str) -> list[str]:
    err = ran.err if isinstance(ran, Ran) else ran
    return [line for line in err.splitlines() if line.startswith("hubstash: error")]


def assert_clean(cache: Path) -> None:
    report = scan(cache)
    assert report.warnings == ()
    assert report.incomplete_files == ()
    assert leftovers(cache) == []


def two_repos(cache: Path) -> tuple[HandBuiltRepo, HandBuiltRepo]:
    return (
        write_canonical_repo(cache, "acme/a", default_files("a"), trees=True),
        write_canonical_repo(cache, "acme/b", default_files("b")),
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    two_repos(tmp_path / "source")
    assert push(FolderStore(tmp_path / "store"), tmp_path / "source").exit_code == 0
    return tmp_path / "store"


def pull_args(store: Path, cache: Path, *repos: str) -> list[str]:
    return ["pull", *repos, "--store", str(store), "--cache-dir", str(cache)]


# --------------------------------------------------------------------------------------
# Permission denied


def test_a_cache_folder_the_user_may_not_write_is_refused_with_exit_5(
    shared: Path,
) -> None:
    two_repos(shared / "source")
    assert push(FolderStore(shared / "store"), shared / "source").exit_code == 0
    cache = shared / "hub"
    write_canonical_repo(cache, "acme/a", default_files("a"), trees=True)
    readable_by_all(shared)
    before = snapshot_tree(cache)

    ran = run_cli(pull_args(shared / "store", cache), prefix=as_nobody())

    assert ran.code == 5, ran.err
    assert len(error_lines(ran)) == 1, ran.err
    assert f"cannot write to the cache at {cache}" in ran.err
    assert "Permission denied" in ran.err
    assert snapshot_tree(cache) == before
    assert_clean(cache)


def test_a_blob_the_user_may_not_read_is_named_the_rest_pushed_exit_5(
    shared: Path,
) -> None:
    a, _ = two_repos(shared / "source")
    readable_by_all(shared)
    secret = a.blob_path("config.json")
    secret.chmod(0o600)
    (shared / "store").mkdir()
    if os.geteuid() == 0:
        os.chown(shared / "store", NOBODY, NOBODY)

    ran = run_cli(
        [
            "push",
            "--store",
            str(shared / "store"),
            "--cache-dir",
            str(shared / "source"),
        ],
        prefix=as_nobody(),
    )
    pulled = run_cli(pull_args(shared / "store", shared / "hub", "acme/b"))

    assert ran.code == 5, ran.err
    assert f"cannot read {secret}: Permission denied" in ran.err
    assert pulled.code == 0, pulled.err
    assert_clean(shared / "hub")


def test_a_read_only_filesystem_is_permission_denied_and_leaves_nothing_behind(
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "hub"
    assert main(pull_args(store, cache, "acme/a")) == 0
    before = snapshot_tree(cache)

    def read_only(*_: object, **__: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)
    code = main(pull_args(store, cache))
    monkeypatch.undo()

    err = capsys.readouterr().err
    assert code == 5, err
    assert "Read-only file system" in err
    # acme/a holds its own copy of the contents acme/b could not write.
    assert "acme/a: revision" not in err
    assert snapshot_tree(cache) == before | _empty_repo_folders(cache, before)
    assert_clean(cache)


def _empty_repo_folders(
    cache: Path, before: dict[str, TreeEntry]
) -> dict[str, TreeEntry]:
    """The empty folders a failed download leaves (the client leaves them too)."""
    after = snapshot_tree(cache)
    return {k: v for k, v in after.items() if k not in before and v.kind == "dir"}


# --------------------------------------------------------------------------------------
# Disk full


def test_a_disk_that_fills_up_while_pulling_is_exit_1_saying_how_much_is_free(
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "hub"
    assert main(pull_args(store, cache, "acme/a")) == 0
    before = snapshot_tree(cache)

    def disk_full(self: VerifyingSink, data: bytes) -> None:
        self.file.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(VerifyingSink, "write", disk_full)
    code = main(pull_args(store, cache))
    monkeypatch.undo()

    err = capsys.readouterr().err
    assert code == 1, err
    assert "disk full writing" in err
    assert "MiB free, 128.0 KiB needed for this file" in err
    assert snapshot_tree(cache) == before | _empty_repo_folders(cache, before)
    assert_clean(cache)


def test_a_pull_that_cannot_fit_is_refused_before_writing_anything(
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "hub"
    assert main(pull_args(store, cache, "acme/a")) == 0
    before = snapshot_tree(cache)
    monkeypatch.setattr(
        shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10, 10, 1024)
    )

    code = main(pull_args(store, cache))
    monkeypatch.undo()

    err = capsys.readouterr().err
    assert code == 1, err
    assert len(error_lines(err)) == 1, err
    assert "not enough disk space" in err
    assert "1.0 KiB" in err or "0.0 MiB is free" in err
    assert snapshot_tree(cache) == before


# --------------------------------------------------------------------------------------
# Odd things in the cache


def test_unrelated_files_in_the_cache_root_are_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    two_repos(source)
    unrelated = {
        "notes.txt": b"mine\n",
        "version.txt": b"1",
        "scratch/data.bin": b"\x00" * 10,
        ".DS_Store": b"junk",
    }
    for name, data in unrelated.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    restored = tmp_path / "hub"
    (restored / "scratch").mkdir(parents=True)
    (restored / "notes.txt").write_bytes(b"theirs\n")
    store = tmp_path / "store"

    pushed = main(["push", "--store", str(store), "--cache-dir", str(source)])
    pulled = main(pull_args(store, restored))

    assert (pushed, pulled) == (0, 0), capsys.readouterr().err
    assert not [
        k for k in (o.key for o in FolderStore(store).listing("")) if "notes" in k
    ]
    assert (restored / "notes.txt").read_bytes() == b"theirs\n"
    assert not (restored / "version.txt").exists()


def test_a_dangling_link_is_named_exit_4_and_the_rest_is_pushed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    a, _ = two_repos(source)
    a.blob_path("model.safetensors").unlink()
    store = tmp_path / "store"

    pushed = main(["push", "--store", str(store), "--cache-dir", str(source)])
    err = capsys.readouterr().err
    pulled = main(pull_args(store, tmp_path / "hub", "acme/b"))

    assert pushed == 4, err
    assert "model.safetensors" in err
    assert "dangling" in err
    assert pulled == 0
    assert_clean(tmp_path / "hub")


def test_a_ref_at_an_empty_snapshot_is_skipped_as_incomplete_the_rest_pushed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    a, b = two_repos(source)
    # What the client leaves while it downloads: the ref and an empty snapshot.
    shutil.rmtree(b.path / "snapshots" / b.commit)
    (b.path / "snapshots" / b.commit).mkdir()
    partial = b.blob_path("model.safetensors").with_suffix(".0a1b2c3d.incomplete")
    b.blob_path("model.safetensors").rename(partial)
    store = tmp_path / "store"

    pushed = main(["push", "--store", str(store), "--cache-dir", str(source)])
    err = capsys.readouterr().err
    pulled = main(pull_args(store, tmp_path / "hub"))

    assert pushed == 4, err
    assert f"acme/b: snapshot {b.commit[:12]} is empty" in err
    assert pulled == 0
    assert (tmp_path / "hub" / a.folder / "refs" / "main").read_text() == a.commit
    assert not (tmp_path / "hub" / b.folder).exists()
    assert_clean(tmp_path / "hub")
