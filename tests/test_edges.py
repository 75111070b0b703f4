"""Edge cases met by using hubstash as a user would: odd names, odd files, odd input."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from hubstash import ExitCode, list_store, pull, push, verify
from hubstash.cli import main
from hubstash.stores import FolderStore
from tests.support.caches import default_files, write_canonical_repo
from tests.support.fake_hub import HubFile
from tests.support.hf_client import load_offline, scan


def test_refs_with_names_like_temporary_files_are_still_refs(tmp_path: Path) -> None:
    names = ("main", "release.old", "v1.tmp", "x.new")
    repo = write_canonical_repo(
        tmp_path / "hub", "acme/refs", default_files(), refs=names
    )
    store = FolderStore(tmp_path / "store")

    push(store, tmp_path / "hub")
    pull(store, tmp_path / "restored")

    for name in names:
        restored = tmp_path / "restored" / repo.folder / "refs" / name
        assert restored.read_bytes() == repo.commit.encode()


def test_a_fifo_in_a_snapshot_is_skipped_not_read(tmp_path: Path) -> None:
    repo = write_canonical_repo(tmp_path / "hub", "acme/fifo", default_files())
    os.mkfifo(repo.snapshot_path("pipe"))

    result = push(FolderStore(tmp_path / "store"), tmp_path / "hub")

    assert result.files == len(repo.files)


def test_names_as_long_as_names_can_be_are_restored(tmp_path: Path) -> None:
    long_name = "n" * 250 + ".txt"
    files = [*default_files(), HubFile(f"dir/{long_name}", b"long\n")]
    write_canonical_repo(tmp_path / "hub", "acme/long", files)
    store = FolderStore(tmp_path / "store")
    push(store, tmp_path / "hub")

    result = pull(store, tmp_path / "restored")

    assert result.exit_code == ExitCode.OK, result.findings
    content = load_offline(
        tmp_path / "restored", "model", "acme/long", f"dir/{long_name}"
    )
    assert content == b"long\n"


def test_a_link_to_another_blob_is_repaired_with_the_right_blob(tmp_path: Path) -> None:
    files = [HubFile("a.txt", b"AAAA"), HubFile("b.txt", b"BBBB")]
    repo = write_canonical_repo(tmp_path / "hub", "acme/repair", files)
    store = FolderStore(tmp_path / "store")
    push(store, tmp_path / "hub")
    # A broken cache: a.txt links to b.txt's blob, and a.txt's blob is gone.
    link = repo.snapshot_path("a.txt")
    link.unlink()
    os.symlink(f"../../blobs/{repo.blob_name('b.txt')}", link)
    repo.blob_path("a.txt").unlink()

    result = pull(store, tmp_path / "hub")

    assert result.exit_code == ExitCode.OK, result.findings
    assert link.read_bytes() == b"AAAA"
    assert verify(tmp_path / "hub").exit_code == ExitCode.OK


def test_verify_and_ls_limit_themselves_to_the_named_revision(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    write_canonical_repo(cache, "acme/two", default_files("1"), refs=("main",))
    write_canonical_repo(cache, "acme/two", default_files("2"), refs=("v2",))
    store = FolderStore(tmp_path / "store")
    push(store, cache)
    pull(store, tmp_path / "restored", ["acme/two@main"])

    checked = verify(tmp_path / "restored", ["acme/two@main"], store=store)
    (listed,) = list_store(store, ["acme/two@v2"])

    assert checked.exit_code == ExitCode.OK, checked.findings
    assert [r.refs for r in listed.revisions] == [("v2",)]


def test_a_truncated_store_object_is_an_integrity_failure(
    s3_server: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubstash.stores import S3Options, open_store
    from tests.support.s3server import S3Server
    from tests.support.stores import s3_credentials

    assert isinstance(s3_server, S3Server)
    s3_credentials(monkeypatch)
    bucket = s3_server.new_bucket()
    options = S3Options(endpoint_url=s3_server.endpoint, part_size=64 * 1024)
    weights = HubFile("w.bin", os.urandom(300 * 1024), lfs=True)
    repo = write_canonical_repo(tmp_path / "hub", "acme/cut", [weights])
    push(open_store(f"s3://{bucket}/p", options), tmp_path / "hub")
    blob = repo.blob_name("w.bin")
    key = f"p/blobs/sha256/{blob[:2]}/{blob}"
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=weights.content[:1000])

    result = pull(open_store(f"s3://{bucket}/p", options), tmp_path / "restored")

    assert result.exit_code == ExitCode.INTEGRITY


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (
            ["pull", "--store", "{tmp}/store", "--cache-dir", "{tmp}/afile"],
            2,
            "is a file",
        ),
        (
            ["pull", "--store", "s3://b/p", "--endpoint-url", "nope"],
            2,
            "must start with",
        ),
        (["pull", "--store", "{tmp}/store", "--jobs", "abc"], 2, "not a whole number"),
    ],
)
def test_bad_paths_and_values_are_usage_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    words: str,
) -> None:
    (tmp_path / "afile").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]

    try:
        result = main(args)
    except SystemExit as exit_:  # argparse's own usage errors
        result = int(exit_.code or 0)

    assert result == code
    assert words in capsys.readouterr().err


def test_permission_denied_is_one_line_and_exit_code_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())
    push(FolderStore(tmp_path / "store"), tmp_path / "hub")

    def denied(*_: object, **__: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "r"))

    monkeypatch.setattr(os, "symlink", denied)

    code = main(
        ["pull", "--store", str(tmp_path / "store"), "--cache-dir", str(tmp_path / "r")]
    )

    err = capsys.readouterr().err
    assert code == ExitCode.DENIED
    assert "Permission denied" in err
    assert "internal error" not in err


def test_json_errors_are_json_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "pull",
            "--store",
            str(tmp_path / "none"),
            "--cache-dir",
            str(tmp_path),
            "--json",
        ]
    )

    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == code == ExitCode.INCOMPLETE
    assert "not a hubstash store" in document["error"]


def test_a_failed_pull_leaves_no_repo_the_client_calls_corrupted(
    tmp_path: Path,
) -> None:
    repo = write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())
    store = FolderStore(tmp_path / "store")
    push(store, tmp_path / "hub")
    blob = repo.blob_name("model.safetensors")
    store.write(f"blobs/sha256/{blob[:2]}/{blob}", b"damaged")

    pull(store, tmp_path / "restored")

    assert scan(tmp_path / "restored").warnings == ()


def test_a_store_that_vanishes_is_a_store_error_not_a_disk_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())
    push(FolderStore(tmp_path / "store"), tmp_path / "hub")
    for blob in (tmp_path / "store" / "blobs").rglob("*"):
        if blob.is_file():
            blob.unlink()

    result = pull(FolderStore(tmp_path / "store"), tmp_path / "restored")

    assert result.exit_code != ExitCode.OK
    assert not any("cannot write" in f.message for f in result.findings)
    assert all(
        "is not in the store" in f.message
        for f in result.findings
        if f.kind == "download-failed"
    )
