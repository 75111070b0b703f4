"""Repo names, revisions and cache folder resolution, as the Hub client has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubstash.cache_location import resolve_cache_dir
from hubstash.errors import UsageError
from hubstash.repos import RepoId, parse_repo_spec


@pytest.mark.parametrize(
    ("text", "repo_type", "repo_id", "revision", "folder"),
    [
        ("acme/tiny", "model", "acme/tiny", None, "models--acme--tiny"),
        ("gpt2", "model", "gpt2", None, "models--gpt2"),
        ("datasets/acme/d@v1.0", "dataset", "acme/d", "v1.0", "datasets--acme--d"),
        ("spaces/acme/s@refs/pr/1", "space", "acme/s", "refs/pr/1", "spaces--acme--s"),
        ("kernels/acme/k", "kernel", "acme/k", None, "kernels--acme--k"),
        ("models/acme/m@" + "a" * 40, "model", "acme/m", "a" * 40, "models--acme--m"),
    ],
)
def test_repo_specs_parse_as_the_hub_names_them(
    text: str, repo_type: str, repo_id: str, revision: str | None, folder: str
) -> None:
    spec = parse_repo_spec(text)

    assert (spec.repo.type, spec.repo.id, spec.revision) == (
        repo_type,
        repo_id,
        revision,
    )
    assert spec.repo.folder == folder
    assert RepoId.from_folder(folder) == spec.repo


@pytest.mark.parametrize(
    "text", ["", "a/b/c", "acme/x--y", "acme/../x", "acme/x@", "acme/x@../../etc", "-x"]
)
def test_bad_repo_specs_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_repo_spec(text)


@pytest.mark.parametrize("name", ["blobs", "version.txt", "tmpabc", "widgets--a--b"])
def test_non_repo_folders_are_not_repos(name: str) -> None:
    assert RepoId.from_folder(name) is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"HF_HUB_CACHE": "/a", "HUGGINGFACE_HUB_CACHE": "/b", "HF_HOME": "/c"}, "/a"),
        ({"HUGGINGFACE_HUB_CACHE": "/b", "HF_HOME": "/c"}, "/b"),
        ({"HF_HOME": "/c", "XDG_CACHE_HOME": "/x"}, "/c/hub"),
        ({"XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/huggingface/hub"),
        ({"HOME": "/h"}, "/h/.cache/huggingface/hub"),
    ],
)
def test_cache_folder_follows_the_clients_precedence(
    environ: dict[str, str], expected: str
) -> None:
    assert resolve_cache_dir(None, environ).path == Path(expected)


def test_cache_dir_pointing_at_hf_home_means_its_hub_folder(tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "token").write_text("hf_FAKE")

    location = resolve_cache_dir(tmp_path, {})

    assert location.path == tmp_path / "hub"
    assert "HF_HOME" in location.reason


def test_an_hf_home_whose_cache_was_wiped_still_means_its_hub_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text("hf_FAKE")

    location = resolve_cache_dir(tmp_path, {})

    assert location.path == tmp_path / "hub"


def test_a_cache_folder_is_used_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "models--acme--tiny").mkdir()
    (tmp_path / "CACHEDIR.TAG").write_text("Signature")

    assert resolve_cache_dir(tmp_path, {}).path == tmp_path
    assert resolve_cache_dir(tmp_path / "new", {}).path == tmp_path / "new"
