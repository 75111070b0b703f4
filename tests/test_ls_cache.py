"""ls --cache-dir describes the local cache: repos, revisions, refs, files, sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubstash import ExitCode
from hubstash.cli import main
from hubstash.inventory import list_cache
from tests.support.caches import (
    default_files,
    make_partial_download,
    write_canonical_repo,
)


def test_list_cache_describes_repos_revisions_refs_and_sizes(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    old = write_canonical_repo(cache, "acme/tiny", default_files("old"), refs=("v1",))
    new = write_canonical_repo(
        cache, "acme/tiny", default_files("new"), refs=("main", "refs/pr/1")
    )
    data = write_canonical_repo(
        cache, "acme/data", default_files("d")[:1], repo_type="dataset"
    )

    listed = list_cache(cache)

    assert [str(r.repo) for r in listed] == ["datasets/acme/data", "acme/tiny"]
    (data_rev,) = listed[0].revisions
    assert (data_rev.commit, data_rev.refs, data_rev.files) == (
        data.commit,
        ("main",),
        1,
    )
    assert data_rev.size == len(data.files["config.json"].content)
    size = sum(len(f.content) for f in new.files.values())
    assert sorted(
        (r.commit, r.refs, r.files, r.size) for r in listed[1].revisions
    ) == sorted(
        [(old.commit, ("v1",), 3, size), (new.commit, ("main", "refs/pr/1"), 3, size)]
    )


def test_list_cache_leaves_out_downloads_in_progress(tmp_path: Path) -> None:
    partial = make_partial_download(tmp_path / "hub")

    (listed,) = list_cache(tmp_path / "hub")

    (revision,) = listed.revisions
    assert revision.files == len(partial.present)


def test_ls_cache_dir_prints_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())

    code = main(["ls", "--cache-dir", str(tmp_path / "hub")])

    captured = capsys.readouterr()
    assert code == ExitCode.OK
    assert captured.out.splitlines() == [
        "acme/tiny  1 revision  128.0 KiB",
        f"  {repo.commit[:12]}  main  3 files  128.0 KiB",
    ]
    assert f"cache {tmp_path / 'hub'} (--cache-dir)" in captured.err


def test_ls_cache_dir_json_names_one_repo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())
    other = write_canonical_repo(tmp_path / "hub", "acme/other", default_files("o"))

    code = main(["ls", "--cache-dir", str(tmp_path / "hub"), "acme/other", "--json"])

    (repo,) = json.loads(capsys.readouterr().out)["repos"]
    assert code == ExitCode.OK
    assert repo["repo"] == {"type": "model", "id": "acme/other"}
    assert [r["commit"] for r in repo["revisions"]] == [other.commit]


def test_ls_of_an_empty_cache_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "hub").mkdir()

    code = main(["ls", "--cache-dir", str(tmp_path / "hub")])

    assert (code, capsys.readouterr().out) == (
        ExitCode.OK,
        "the cache holds no repos\n",
    )


def test_ls_takes_a_store_or_a_cache_not_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["ls", "--store", str(tmp_path / "s"), "--cache-dir", str(tmp_path / "hub")]
    )

    assert code == ExitCode.USAGE
    assert "alternatives" in capsys.readouterr().err


def test_ls_of_a_missing_cache_is_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ls", "--cache-dir", str(tmp_path / "nowhere")])

    assert code == ExitCode.INCOMPLETE
    assert "no Hugging Face cache" in capsys.readouterr().err
