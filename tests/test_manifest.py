"""Manifests: canonical bytes, union of pieces, and refusal of anything unsafe."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubstash.errors import UnsafeStoreContent
from hubstash.manifest import (
    FileEntry,
    Manifest,
    check_repo_path,
    merge,
    parse_manifest,
)
from hubstash.repos import RepoId

REPO = RepoId("model", "acme/tiny")
COMMIT = "1" * 40
SHA = "a" * 64

segments = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
safe_paths = (
    st.lists(segments, min_size=1, max_size=4)
    .map("/".join)
    .filter(lambda p: not (len(p) >= 2 and p[1] == ":"))
)


def entry(path: str, blob: str = SHA, size: int = 3) -> FileEntry:
    return FileEntry(path, blob, size, SHA, 1_700_000_000_000_000_000)


def document(**changes: object) -> bytes:
    base = json.loads(Manifest(REPO, COMMIT, (entry("config.json"),)).to_json())
    base.update(changes)
    return json.dumps(base).encode()


@given(st.lists(safe_paths, min_size=1, max_size=8, unique=True))
def test_any_safe_manifest_survives_a_round_trip(paths: list[str]) -> None:
    # A path that is also a folder of another path is a different, refused case.
    folders = {p.rsplit("/", i)[0] for p in paths for i in range(1, p.count("/") + 1)}
    manifest = Manifest(
        REPO, COMMIT, tuple(sorted(entry(p) for p in paths if p not in folders))
    )

    parsed = parse_manifest(manifest.to_json(), source="test")

    assert parsed == manifest
    assert parsed.piece_name() == manifest.piece_name()


@pytest.mark.parametrize(
    "path",
    [
        "../x",
        "a/../../x",
        "/etc/passwd",
        "C:/x",
        "a\\b",
        "a/./b",
        "a//b",
        "",
        "a\x00b",
        ".",
    ],
)
def test_unsafe_paths_are_refused(path: str) -> None:
    files = [{"path": path, "blob": SHA, "size": 1, "sha256": SHA}]

    with pytest.raises(UnsafeStoreContent):
        parse_manifest(document(files=files), source="test")


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 2},
        {"format": "something-else"},
        {"commit": "main"},
        {"repo": {"type": "widget", "id": "a/b"}},
        {"repo": {"type": "model", "id": "a/../b"}},
        {"files": [{"path": "x", "blob": "a/b", "size": 1, "sha256": SHA}]},
        {"files": [{"path": "x", "blob": SHA, "size": -1, "sha256": SHA}]},
        {"files": [{"path": "x", "blob": SHA, "size": 2**60, "sha256": SHA}]},
        {"files": [{"path": "x", "blob": SHA, "size": True, "sha256": SHA}]},
        {"files": [{"path": "x", "blob": SHA, "size": 1, "sha256": "nope"}]},
        {"files": "everything"},
        {
            "files": [
                {"path": "a", "blob": SHA, "size": 1, "sha256": SHA},
                {"path": "a/b", "blob": SHA, "size": 1, "sha256": SHA},
            ]
        },
        {"no_exist": ["../../escape"]},
    ],
)
def test_malformed_manifests_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(UnsafeStoreContent):
        parse_manifest(document(**changes), source="test")


@given(
    st.one_of(
        st.binary(max_size=200),
        st.builds(
            document,
            files=st.lists(
                st.fixed_dictionaries(
                    {
                        "path": st.text(max_size=20),
                        "blob": st.just(SHA),
                        "size": st.integers(),
                        "sha256": st.just(SHA),
                    }
                ),
                max_size=3,
            ),
        ),
    )
)
def test_the_parser_returns_only_safe_manifests_or_refuses(data: bytes) -> None:
    try:
        manifest = parse_manifest(data, source="fuzz")
    except UnsafeStoreContent:
        return

    assert all(check_repo_path(f.path) is None for f in manifest.files)
    assert all(0 <= f.size <= 2**50 for f in manifest.files)


def test_pieces_of_one_revision_merge_into_their_union() -> None:
    one = Manifest(REPO, COMMIT, (entry("a.json"),), ("missing.json",))
    two = Manifest(REPO, COMMIT, (entry("b.json"),))

    merged = merge([one, two], source="test")

    assert [f.path for f in merged.files] == ["a.json", "b.json"]
    assert merged.no_exist == ("missing.json",)
    assert merged.covers(one)
    assert merged.covers(two)


def test_pieces_that_disagree_about_a_file_are_refused() -> None:
    one = Manifest(REPO, COMMIT, (entry("a.json", size=3),))
    two = Manifest(REPO, COMMIT, (entry("a.json", size=4),))

    with pytest.raises(UnsafeStoreContent):
        merge([one, two], source="test")
