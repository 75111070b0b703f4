"""A hostile or broken store: every bad object is refused, and nothing is written.

Store objects are written here by hand, as an attacker or a broken tool would. Each
case runs the command line against a folder store and checks three things: the
command refuses with a message naming the bad object, the exit code says why (3 for
unsafe or damaged content, 4 for something missing), and not one file appeared or
changed anywhere: neither in the cache nor beside it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubstash import ExitCode, push, verify
from hubstash.cli import main
from hubstash.errors import HubstashError, UnsafeStoreContent, UsageError
from hubstash.hashing import is_blob_name, is_sha256_name
from hubstash.lockfile import read_lock
from hubstash.manifest import (
    MAX_SIZE,
    FileEntry,
    Manifest,
    check_repo_path,
    parse_manifest,
)
from hubstash.repos import REPO_TYPES, RepoId, check_ref_name, is_commit
from hubstash.stores import FolderStore
from tests.support.caches import (
    default_files,
    make_token_files,
    write_canonical_repo,
)
from tests.support.fake_hub import HubFile
from tests.support.s3server import S3Server
from tests.support.stores import StoreUnderTest

EVIL = RepoId("model", "acme/evil")
COMMIT = "c" * 40
CONTENT = b'{"model_type": "evil"}\n'
SHA = hashlib.sha256(CONTENT).hexdigest()
PIECES = f"repos/{EVIL.folder}/manifests/{COMMIT}"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class World:
    """A store holding one good repo, and a cache that already holds another."""

    root: Path
    store: Path
    cache: Path
    cli: Callable[..., Run]


Tree = dict[str, tuple[str, bytes | str]]


def tree(root: Path) -> Tree:
    """Every entry under ``root``, links not followed: kind and content or target."""
    entries: Tree = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                entries[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[rel] = ("dir", "")
            else:
                entries[rel] = ("file", path.read_bytes())
    return entries


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run the command line in this process, capturing stdout and stderr."""

    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def world(tmp_path: Path, cli: Callable[..., Run]) -> World:
    source = tmp_path / "source"
    write_canonical_repo(source, "acme/good", default_files("good"))
    push(FolderStore(tmp_path / "store"), source)
    blob = tmp_path / "store" / "blobs" / "sha256" / SHA[:2] / SHA
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(CONTENT)
    write_canonical_repo(tmp_path / "cache", "acme/tiny", default_files("tiny"))
    return World(tmp_path, tmp_path / "store", tmp_path / "cache", cli)


def good_entry(**changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "path": "config.json",
        "blob": SHA,
        "size": len(CONTENT),
        "sha256": SHA,
    }
    entry.update(changes)
    return entry


def manifest_document(**changes: object) -> dict[str, object]:
    document: dict[str, object] = json.loads(
        Manifest(EVIL, COMMIT, (FileEntry("config.json", SHA, len(CONTENT), SHA),))
        .to_json()
        .decode()
    )
    document.update(changes)
    return document


def plant_piece(store: Path, data: bytes, repo: RepoId = EVIL) -> str:
    """Write a manifest piece under its own hash, as a push names pieces."""
    name = hashlib.sha256(data).hexdigest()
    key = f"repos/{repo.folder}/manifests/{COMMIT}/{name}.json"
    (store / key).parent.mkdir(parents=True, exist_ok=True)
    (store / key).write_bytes(data)
    return key


def plant_ref(store: Path, data: bytes, name: str = "main") -> str:
    key = f"repos/{EVIL.folder}/refs/{name}"
    (store / key).parent.mkdir(parents=True, exist_ok=True)
    (store / key).write_bytes(data)
    return key


def hostile(**changes: object) -> Callable[[Path], bytes]:
    return lambda root: json.dumps(manifest_document(**changes)).encode()


def with_file(**changes: object) -> Callable[[Path], bytes]:
    return lambda root: json.dumps(
        manifest_document(
            files=[
                good_entry(
                    **{
                        k: v.format(root=root) if isinstance(v, str) else v
                        for k, v in changes.items()
                    }
                )
            ]
        )
    ).encode()


def raw(data: bytes) -> Callable[[Path], bytes]:
    return lambda root: data


HOSTILE_MANIFESTS = {
    "dot-dot": (with_file(path="../escaped"), "'..' part"),
    "dot-dot-deep": (with_file(path="a/../../../escaped"), "'..' part"),
    "absolute": (with_file(path="{root}/escaped"), "absolute"),
    "drive-letter": (with_file(path="C:/escaped"), "drive letter"),
    "backslash": (with_file(path="..\\..\\escaped"), "backslash"),
    "nul-byte": (with_file(path="config\x00.json"), "control character"),
    "newline": (with_file(path="a\nb"), "control character"),
    "dot": (with_file(path="./config.json"), "'.'"),
    "empty-part": (with_file(path="a//b"), "empty"),
    "too-long": (with_file(path="a/" * 2100), "too long"),
    "no-exist-escape": (hostile(no_exist=["../../escaped"]), "'..' part"),
    "blob-with-slashes": (with_file(blob="../../../escaped"), "blob name"),
    "blob-with-a-folder": (with_file(blob=f"{SHA[:2]}/{SHA[2:]}"), "blob name"),
    "sha256-with-slashes": (with_file(sha256="../" * 21 + "x"), "not 64 hex"),
    "absurd-size": (with_file(size=2**62), "not a sane byte count"),
    "negative-size": (with_file(size=-1), "not a sane byte count"),
    "size-as-text": (with_file(size="12"), "not a sane byte count"),
    "invalid-json": (raw(b'{"format": "hubstash-manifest", '), "not valid JSON"),
    "not-utf8": (raw(b"\xff\xfe{}"), "not valid JSON"),
    "nested-too-deeply": (raw(b"[" * 100_000), "not valid JSON"),
    "json-list": (raw(b"[]"), "manifest is missing or not a dict"),
    "newer-version": (hostile(version=2), "newer than this hubstash"),
    "other-format": (hostile(format="something-else"), "not a hubstash manifest"),
    "repo-type-unknown": (hostile(repo={"type": "evil", "id": "a/b"}), "repo type"),
    "commit-not-hex": (hostile(commit="../../escaped"), "not a 40-hex hash"),
    "tree-not-hex": (hostile(tree={"sha256": "../x", "size": 1}), "tree sha256"),
    "path-twice": (hostile(files=[good_entry(), good_entry()]), "listed twice"),
    "file-and-folder": (
        hostile(files=[good_entry(path="a"), good_entry(path="a/b")]),
        "both a file and a folder",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_MANIFESTS))
def test_a_hostile_manifest_is_refused_by_name_and_nothing_is_written(
    world: World, case: str
) -> None:
    make, words = HOSTILE_MANIFESTS[case]
    key = plant_piece(world.store, make(world.root))
    plant_ref(world.store, COMMIT.encode())
    before = tree(world.root)
    store, cache = ("--store", str(world.store)), ("--cache-dir", str(world.cache))

    pulled = world.cli("pull", "acme/evil@main", *store, *cache)
    by_commit = world.cli("pull", f"acme/evil@{COMMIT}", *store, *cache)
    listed = world.cli("ls", *store)
    verified = world.cli("verify", *store, *cache)

    for run in (pulled, by_commit, listed, verified):
        assert run.code == ExitCode.INTEGRITY, run.err
        assert key in run.err
        assert words in run.err
    assert tree(world.root) == before


@pytest.mark.parametrize("case", ["dot-dot", "absolute", "invalid-json"])
def test_a_whole_store_pull_restores_the_rest_and_nothing_of_a_hostile_repo(
    world: World, case: str
) -> None:
    make, _ = HOSTILE_MANIFESTS[case]
    key = plant_piece(world.store, make(world.root))
    plant_ref(world.store, COMMIT.encode())
    before = tree(world.root)

    run = world.cli(
        "pull", "--store", str(world.store), "--cache-dir", str(world.cache)
    )

    assert run.code == ExitCode.INTEGRITY
    assert f"unreadable-in-store: acme/evil: not restored: refusing manifest {key}" in (
        run.err
    )
    assert (world.cache / "models--acme--good" / "refs" / "main").is_file()
    assert not (world.cache / EVIL.folder).exists()
    assert _outside_new_repo(tree(world.root), "models--acme--good") == before


def _outside_new_repo(entries: Tree, folder: str) -> Tree:
    """What is left once the restored repo, and its blob locks, are set aside."""
    return {
        rel: entry
        for rel, entry in entries.items()
        if not rel.startswith((f"cache/{folder}", f"cache/.locks/{folder}"))
        and rel != "cache/.locks"
    }


def test_a_piece_filed_under_another_repo_is_refused(world: World) -> None:
    other = json.dumps(
        manifest_document(repo={"type": "model", "id": "acme/good"})
    ).encode()
    key = plant_piece(world.store, other)
    plant_ref(world.store, COMMIT.encode())
    before = tree(world.root)

    run = world.cli(
        "pull",
        "acme/evil",
        "--store",
        str(world.store),
        "--cache-dir",
        str(world.cache),
    )

    assert run.code == ExitCode.INTEGRITY
    assert f"manifest {key} describes acme/good" in run.err
    assert tree(world.root) == before


@pytest.mark.parametrize(
    "content",
    [b"../../../escaped", COMMIT.encode() + b"\n", b"", b"\x00" * 40, b"C" * 40],
    ids=["path", "newline", "empty", "nul-bytes", "upper-case"],
)
def test_a_ref_that_holds_no_commit_is_refused(world: World, content: bytes) -> None:
    plant_piece(world.store, json.dumps(manifest_document()).encode())
    key = plant_ref(world.store, content)
    before = tree(world.root)
    store, cache = ("--store", str(world.store)), ("--cache-dir", str(world.cache))

    named = world.cli("pull", "acme/evil@main", *store, *cache)
    listed = world.cli("ls", "acme/evil", *store)

    for run in (named, listed):
        assert run.code == ExitCode.INTEGRITY
        assert f"store ref {key} does not hold a commit hash" in run.err
    assert tree(world.root) == before


def test_a_ref_naming_a_missing_manifest_is_refused_as_missing(world: World) -> None:
    plant_piece(world.store, json.dumps(manifest_document()).encode())
    plant_ref(world.store, COMMIT.encode())
    plant_ref(world.store, b"d" * 40, name="v2")
    before = tree(world.root)
    store, cache = ("--store", str(world.store)), ("--cache-dir", str(world.cache))

    named = world.cli("pull", "acme/evil@v2", *store, *cache)
    listed = world.cli("ls", "acme/evil@v2", *store)

    for run in (named, listed):
        assert run.code == ExitCode.INCOMPLETE
        assert f"acme/evil@{'d' * 40}: the store has no manifest" in run.err
    assert tree(world.root) == before


def test_a_whole_store_pull_reports_a_ref_without_its_manifest(world: World) -> None:
    plant_piece(world.store, json.dumps(manifest_document()).encode())
    plant_ref(world.store, COMMIT.encode())
    key = plant_ref(world.store, b"d" * 40, name="v2")

    run = world.cli(
        "pull", "--store", str(world.store), "--cache-dir", str(world.cache)
    )

    assert run.code == ExitCode.INCOMPLETE
    assert f"store ref {key} names dddddddddddd, of which the store has no" in run.err
    refs = world.cache / EVIL.folder / "refs"
    assert sorted(p.name for p in refs.iterdir()) == ["main"]


def test_a_repo_with_only_a_ref_is_missing_from_the_store(world: World) -> None:
    plant_ref(world.store, COMMIT.encode())
    before = tree(world.root)

    run = world.cli(
        "pull",
        "acme/evil",
        "--store",
        str(world.store),
        "--cache-dir",
        str(world.cache),
    )

    assert run.code == ExitCode.INCOMPLETE
    assert "acme/evil is not in the store" in run.err
    assert tree(world.root) == before


def test_a_ref_key_that_is_no_ref_name_is_never_written(world: World) -> None:
    plant_piece(world.store, json.dumps(manifest_document()).encode())
    plant_ref(world.store, COMMIT.encode())
    plant_ref(world.store, COMMIT.encode(), name="..\\..\\escaped")

    run = world.cli(
        "pull",
        "acme/evil",
        "--store",
        str(world.store),
        "--cache-dir",
        str(world.cache),
    )

    assert run.code == ExitCode.OK, run.err
    refs = world.cache / EVIL.folder / "refs"
    assert sorted(p.name for p in refs.iterdir()) == ["main"]
    assert not any("escaped" in rel for rel in tree(world.root) if "store/" not in rel)


def test_a_store_of_a_newer_format_is_refused_with_a_hint_to_upgrade(
    world: World,
) -> None:
    (world.store / "hubstash-store.json").write_text(
        '{"format": "hubstash-store", "version": 2}'
    )
    before = tree(world.root)

    run = world.cli(
        "pull", "--store", str(world.store), "--cache-dir", str(world.cache)
    )

    assert run.code == ExitCode.USAGE
    assert "store format 2" in run.err
    assert "upgrade hubstash" in run.err
    assert tree(world.root) == before


def test_a_blob_whose_bytes_do_not_match_its_hash_is_refused(world: World) -> None:
    plant_piece(world.store, json.dumps(manifest_document()).encode())
    plant_ref(world.store, COMMIT.encode())
    blob_key = f"blobs/sha256/{SHA[:2]}/{SHA}"
    (world.store / blob_key).write_bytes(CONTENT.upper())
    before = tree(world.root)

    run = world.cli(
        "pull",
        "acme/evil",
        "--store",
        str(world.store),
        "--cache-dir",
        str(world.cache),
    )

    assert run.code == ExitCode.INTEGRITY
    assert f"store object {blob_key} is damaged" in run.err
    assert "hubstash verify --store URL --deep" in run.err
    assert "hubstash push --repair" in run.err
    # Only the client's lock files and empty folders may appear: no content.
    after = tree(world.root)
    new = {rel: entry for rel, entry in after.items() if rel not in before}
    assert all(rel.startswith("cache/") for rel in new)
    assert all(
        kind == "dir" or rel.startswith("cache/.locks/")
        for rel, (kind, _) in new.items()
    )
    assert {rel: after[rel] for rel in before} == before


@pytest.mark.parametrize(
    "linked",
    ["{repo}", "{repo}/blobs", "{repo}/snapshots", f"{{repo}}/snapshots/{COMMIT}/sub"],
)
@pytest.mark.parametrize("copy", [False, True], ids=["links", "copies"])
def test_a_cache_folder_linked_out_of_the_cache_is_never_written_through(
    world: World, linked: str, copy: bool
) -> None:
    files = [good_entry(), good_entry(path="sub/file.json")]
    plant_piece(world.store, json.dumps(manifest_document(files=files)).encode())
    plant_ref(world.store, COMMIT.encode())
    outside = world.root / "outside"
    outside.mkdir()
    link = world.cache / linked.format(repo=EVIL.folder)
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, link)
    before = tree(world.root)

    run = world.cli(
        "pull",
        "acme/evil",
        "--store",
        str(world.store),
        "--cache-dir",
        str(world.cache),
        *(["--copy"] if copy else []),
    )

    assert run.code == ExitCode.INTEGRITY
    assert "resolves outside the cache" in run.err
    assert list(outside.iterdir()) == []
    assert tree(world.root) == before


# Fuzzing the parsers: whatever the bytes, a safe value or the documented refusal.

TRICKY_PATHS = st.sampled_from(
    [
        "..",
        ".",
        "",
        "/",
        "\\",
        "C:",
        "c:x",
        "\x00",
        "\x7f",
        "a/../b",
        "/etc/passwd",
        "C:\\x",
        "a\\b",
        "config.json",
        "a/b.bin",
        "x" * 5000,
    ]
)
hostile_text = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=30),
    TRICKY_PATHS,
    st.lists(st.one_of(TRICKY_PATHS, st.just("ok")), min_size=1, max_size=5).map(
        "/".join
    ),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), hostile_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
sizes = st.one_of(
    st.integers(min_value=-2, max_value=2**64),
    st.sampled_from([0, 1, 2**50, 2**50 + 1, 2**63]),
    json_values,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right kind of value, sometimes any JSON at all."""
    return st.one_of(strategy, strategy, json_values)


blob_names = st.sampled_from([SHA, SHA[:40], "../" + SHA[3:], SHA.upper(), SHA + "/"])
file_entries = st.fixed_dictionaries(
    {
        "path": maybe(hostile_text),
        "blob": maybe(blob_names),
        "size": sizes,
        "sha256": maybe(st.just(SHA)),
    },
    optional={"mtime_ns": json_values},
)
manifest_documents = st.fixed_dictionaries(
    {
        "format": maybe(st.just("hubstash-manifest")),
        "version": maybe(st.sampled_from([1, 2, 0, -1, True])),
        "repo": maybe(
            st.fixed_dictionaries(
                {
                    "type": maybe(st.sampled_from(sorted(REPO_TYPES))),
                    "id": maybe(st.sampled_from(["acme/x", "x", "../x", "a/b/c"])),
                }
            )
        ),
        "commit": maybe(st.sampled_from([COMMIT, COMMIT.upper(), "../" * 13 + "x"])),
        "files": maybe(st.lists(file_entries, max_size=4)),
    },
    optional={
        "no_exist": maybe(st.lists(maybe(hostile_text), max_size=3)),
        "tree": maybe(
            st.fixed_dictionaries({"sha256": maybe(blob_names), "size": sizes})
        ),
    },
)


def mutated(data: bytes, position: int, byte: int) -> bytes:
    if not data:
        return bytes([byte])
    at = position % len(data)
    return data[:at] + bytes([byte]) + data[at + 1 :]


manifest_bytes = st.one_of(
    st.binary(max_size=300),
    manifest_documents.map(lambda d: json.dumps(d).encode()),
    st.builds(
        mutated,
        manifest_documents.map(lambda d: json.dumps(d).encode()),
        st.integers(min_value=0),
        st.integers(min_value=0, max_value=255),
    ),
)


def assert_safe(manifest: Manifest) -> None:
    """Everything a pull would write from this manifest stays inside its folders."""
    root = "/cache/models--acme--x/snapshots/" + manifest.commit
    assert is_commit(manifest.commit)
    assert "/" not in manifest.repo.folder
    for path in [f.path for f in manifest.files] + list(manifest.no_exist):
        assert check_repo_path(path) is None
        assert os.path.normpath(os.path.join(root, path)).startswith(root + "/")
    for entry in manifest.files:
        assert is_blob_name(entry.blob)
        assert is_sha256_name(entry.sha256)
        assert 0 <= entry.size <= MAX_SIZE
        assert entry.mtime_ns is None or type(entry.mtime_ns) is int
    if manifest.tree is not None:
        assert is_sha256_name(manifest.tree.sha256)
        assert 0 <= manifest.tree.size <= MAX_SIZE


@settings(max_examples=300)
@given(manifest_bytes)
def test_the_manifest_parser_returns_a_safe_manifest_or_refuses(data: bytes) -> None:
    result = parsed_or_refused(lambda: parse_manifest(data, source="fuzz"))

    if isinstance(result, HubstashError):
        assert isinstance(result, UnsafeStoreContent)
        assert "refusing manifest fuzz" in str(result)
    else:
        assert_safe(result)


T = TypeVar("T")


def parsed_or_refused(parse: Callable[[], T]) -> T | HubstashError:
    """What a parser gave: a value or a refusal; any other exception propagates."""
    try:
        return parse()
    except HubstashError as refused:
        return refused


def toml_value(value: object) -> str:
    """A TOML rendering of a value, written by hand so that any value can be."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(str(value), repr(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    items = (f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
    return "{ " + ", ".join(items) + " }"


toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    hostile_text,
    st.datetimes(),
    st.dates(),
    st.times(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def maybe_toml(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, strategy, toml_values)


lock_files = st.fixed_dictionaries(
    {
        "path": maybe_toml(hostile_text),
        "blob": maybe_toml(blob_names),
        "size": st.one_of(
            st.integers(min_value=-(2**63), max_value=2**63 - 1), toml_values
        ),
        "sha256": maybe_toml(st.just(SHA)),
    }
)
lock_repos = st.fixed_dictionaries(
    {
        "type": maybe_toml(st.sampled_from(sorted(REPO_TYPES))),
        "id": maybe_toml(st.sampled_from(["acme/x", "x", "../x"])),
        "revision": maybe_toml(st.sampled_from(["main", "refs/pr/1", "../x", ""])),
        "commit": maybe_toml(st.just(COMMIT)),
        "include": maybe_toml(st.lists(hostile_text, max_size=2)),
        "exclude": maybe_toml(st.lists(hostile_text, max_size=2)),
    },
    optional={
        "tree": maybe_toml(
            st.fixed_dictionaries({"sha256": maybe_toml(blob_names), "size": sizes})
        ).filter(lambda v: v is not None and "None" not in repr(v)),
    },
)


def render_lock(version: object, repos: list[tuple[dict[str, Any], list[Any]]]) -> str:
    lines = [f"version = {toml_value(version)}"]
    for fields, files in repos:
        lines.append("[[repo]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in fields.items()]
        for entry in files:
            lines.append("[[repo.file]]")
            lines += [f"{key} = {toml_value(value)}" for key, value in entry.items()]
    return "\n".join(lines) + "\n"


lock_texts = st.builds(
    render_lock,
    maybe_toml(st.sampled_from([1, 2, 0])),
    st.lists(st.tuples(lock_repos, st.lists(lock_files, max_size=3)), max_size=2),
)
lock_bytes = st.one_of(
    st.binary(max_size=300),
    lock_texts.map(str.encode),
    st.builds(
        mutated,
        lock_texts.map(str.encode),
        st.integers(min_value=0),
        st.integers(min_value=0, max_value=255),
    ),
    st.just(b"version = 1\nrepo = " + b"[" * 50_000),
)


@settings(max_examples=300)
@given(lock_bytes)
def test_the_lock_parser_returns_a_safe_lock_or_refuses(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hubstash.lock"
        path.write_bytes(data)
        result = parsed_or_refused(lambda: read_lock(path))

    if isinstance(result, HubstashError):
        assert isinstance(result, UsageError)
        assert str(path) in str(result)
        return
    for locked in result.repos:
        assert_safe(locked.manifest())
        check_ref_name(locked.revision)
        assert all(isinstance(p, str) for p in locked.include + locked.exclude)


def test_a_lock_with_a_date_where_a_hash_belongs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hubstash.lock"
    path.write_text("version = 1\n[[repo]]\ncommit = 1979-05-27T07:32:00Z\n")

    with pytest.raises(UsageError, match="is not a valid lock"):
        read_lock(path)


# A store that went bad: found by verify --deep, refused by pull, fixed by push --repair


def damage(data: bytes, how: str) -> bytes:
    middle = len(data) // 2
    if how == "flip":
        return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    return data[:middle]


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_a_damaged_store_blob_is_found_refused_and_repaired(
    store: StoreUnderTest, tmp_path: Path, cli: Callable[..., Run], how: str
) -> None:
    cache = tmp_path / "hub"
    repo = write_canonical_repo(cache, "acme/tiny", default_files(), refs=("main",))
    push(store.open(), cache)
    blob = repo.blob_name("model.safetensors")
    key = f"blobs/sha256/{blob[:2]}/{blob}"
    good = read_object(store, key)
    store.open().write(key, damage(good, how))
    here, there = ("--cache-dir", str(cache)), ("--cache-dir", str(tmp_path / "ci"))

    found = cli("verify", *store.cli_args(), *here, "--deep")
    refused = cli("pull", *store.cli_args(), *there)
    repaired = cli("push", *store.cli_args(), *here, "--repair", "--json")
    pulled = cli("pull", *store.cli_args(), *there)
    checked = cli("verify", *store.cli_args(), *there, "--deep")

    assert found.code == ExitCode.INTEGRITY
    assert f"damaged-in-store: store object {key} is damaged" in found.err
    assert f"hashing to {hashlib.sha256(damage(good, how)).hexdigest()}" in found.err
    assert refused.code == ExitCode.INTEGRITY
    assert "hubstash verify --store URL --deep" in refused.err
    assert "hubstash push --repair" in refused.err
    assert repaired.code == ExitCode.OK, repaired.err
    assert json.loads(repaired.out)["repaired_files"] == 1
    assert read_object(store, key) == good
    assert (pulled.code, checked.code) == (ExitCode.OK, ExitCode.OK), checked.err
    assert "hashed 3 store blobs" in checked.out


def read_object(store: StoreUnderTest, key: str) -> bytes:
    return b"".join(store.open().read_stream(key))


def test_a_plain_push_trusts_a_damaged_blob_of_the_right_size(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    repo = write_canonical_repo(cache, "acme/tiny", default_files())
    backend = FolderStore(tmp_path / "store")
    push(backend, cache)
    blob = repo.blob_name("model.safetensors")
    key = f"blobs/sha256/{blob[:2]}/{blob}"
    good = backend.read(key)
    backend.write(key, damage(good, "flip"))

    plain = push(backend, cache)
    before_repair = verify(cache, store=backend, deep=True)
    repaired = push(backend, cache, repair=True)
    after_repair = verify(cache, store=backend, deep=True)

    assert (plain.uploaded_files, plain.repaired_files) == (0, 0)
    (finding,) = before_repair.findings
    assert (finding.kind, finding.path, finding.expected) == (
        "damaged-in-store",
        key,
        blob,
    )
    assert finding.actual == hashlib.sha256(damage(good, "flip")).hexdigest()
    assert (repaired.uploaded_files, repaired.repaired_files) == (1, 1)
    assert backend.read(key) == good
    assert after_repair.exit_code == ExitCode.OK, after_repair.findings
    assert after_repair.store_blobs_hashed == len(repo.files)


def test_verify_deep_names_damaged_pieces_and_missing_blobs(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    repo = write_canonical_repo(cache, "acme/tiny", default_files())
    backend = FolderStore(tmp_path / "store")
    push(backend, cache)
    (piece,) = [o.key for o in backend.listing("repos/") if "/manifests/" in o.key]
    # Still a valid manifest, but not the bytes its name promises.
    backend.write(piece, backend.read(piece) + b"\n")
    blob = repo.blob_name("config.json")
    sha = hashlib.sha256(repo.files["config.json"].content).hexdigest()
    backend.delete([f"blobs/sha256/{sha[:2]}/{sha}"])

    result = verify(cache, store=backend, deep=True)

    named = {(f.kind, f.path) for f in result.findings}
    assert named == {
        ("damaged-in-store", piece),
        ("missing-from-store", f"blobs/sha256/{sha[:2]}/{sha}"),
    }
    assert result.exit_code == ExitCode.INTEGRITY
    assert blob


def test_verify_deep_of_one_repo_reads_only_its_blobs(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    write_canonical_repo(cache, "acme/one", default_files("one"))
    other = write_canonical_repo(cache, "acme/other", default_files("other"))
    backend = FolderStore(tmp_path / "store")
    push(backend, cache)
    blob = other.blob_name("model.safetensors")
    backend.write(f"blobs/sha256/{blob[:2]}/{blob}", b"damaged")

    one = verify(cache, ["acme/one"], store=backend, deep=True)
    everything = verify(cache, store=backend, deep=True)

    assert one.exit_code == ExitCode.OK, one.findings
    assert one.store_blobs_hashed == len(default_files())
    assert everything.exit_code == ExitCode.INTEGRITY
    assert [f.path for f in everything.findings] == [f"blobs/sha256/{blob[:2]}/{blob}"]


def test_deep_needs_a_store(tmp_path: Path, cli: Callable[..., Run]) -> None:
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())

    locked = cli("verify", "--locked", "--deep", "--cache-dir", str(tmp_path / "hub"))
    with pytest.raises(UsageError, match="--deep checks a store"):
        verify(tmp_path / "hub", deep=True)

    assert locked.code == ExitCode.USAGE
    assert "--deep checks a store" in locked.err


# Secrets: no token ever reaches the store, no credential ever reaches the output

FAKE_TOKEN = "hf_FAKEhostileStoreTokenValue0123456789"
FAKE_SECRET_KEY = "FAKESECRETkeyValueForHubstashTests0123456789"
FAKE_SESSION = "FAKESESSIONtokenValueForHubstashTests0123456789"

repo_segments = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_]{0,10}", fullmatch=True)
repo_ids = st.one_of(
    repo_segments, st.tuples(repo_segments, repo_segments).map("/".join)
)
file_names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_. -]{0,12}", fullmatch=True).filter(
    lambda s: s.strip(".") != "" and s == s.strip()
)
repo_paths = st.lists(file_names, min_size=1, max_size=3).map("/".join)
repo_files = st.dictionaries(repo_paths, st.binary(max_size=64), min_size=1, max_size=4)


def without_clashes(files: dict[str, bytes]) -> list[HubFile]:
    """The files, less those whose path is a folder of another one."""
    folders = {p.rsplit("/", i)[0] for p in files for i in range(1, p.count("/") + 1)}
    return [HubFile(p, data) for p, data in sorted(files.items()) if p not in folders]


@settings(max_examples=8)
@given(repo_ids, repo_files, st.sampled_from(["token", "stored_tokens", "sandbox"]))
def test_no_token_or_token_file_name_ever_reaches_the_store(
    repo_id: str, files: dict[str, bytes], linked: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        hf_home = Path(folder) / "hf_home"
        tokens = make_token_files(hf_home)
        (hf_home / "token").write_text(FAKE_TOKEN)
        repo = write_canonical_repo(hf_home / "hub", repo_id, without_clashes(files))
        # The token files, linked from inside a snapshot under their own names too.
        snapshot = repo.path / "snapshots" / repo.commit
        os.symlink(hf_home / linked, snapshot / f"{linked}-link")
        os.symlink(os.path.relpath(hf_home / "token", snapshot), snapshot / "tok")
        store = FolderStore(Path(folder) / "store")

        push(store, hf_home)
        push(store, hf_home / "hub")

        stored = {o.key: store.read(o.key) for o in store.listing("")}
    secrets = (*tokens.secrets, FAKE_TOKEN)
    assert any(key.startswith("repos/") for key in stored)
    for key, data in stored.items():
        assert not any(secret.encode() in data for secret in secrets), key
        assert {"token", "stored_tokens", "sandbox"}.isdisjoint(key.split("/")), key


def test_debug_output_never_shows_a_credential_or_token(
    tmp_path: Path, s3_server: S3Server
) -> None:
    cache = tmp_path / "hub"
    write_canonical_repo(cache, "acme/tiny", default_files(), refs=("main",))
    store = [
        "--store",
        f"s3://{s3_server.new_bucket()}/team",
        "--endpoint-url",
        s3_server.endpoint,
        "--debug",
    ]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "FAKEKEYID",
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
        "AWS_SESSION_TOKEN": FAKE_SESSION,
        "AWS_DEFAULT_REGION": "us-east-1",
        "HF_TOKEN": FAKE_TOKEN,
    }
    env.pop("AWS_PROFILE", None)
    commands = [
        ["push", *store, "--cache-dir", str(cache)],
        ["pull", *store, "--cache-dir", str(tmp_path / "restored")],
        ["verify", *store, "--cache-dir", str(tmp_path / "restored"), "--deep"],
        ["ls", *store],
        ["pull", "acme/missing", *store, "--cache-dir", str(tmp_path / "restored")],
    ]

    runs = [
        subprocess.run(
            [sys.executable, "-m", "hubstash.cli", *command],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        for command in commands
    ]

    assert [run.returncode for run in runs] == [0, 0, 0, 0, ExitCode.INCOMPLETE]
    assert "Traceback" in runs[-1].stderr  # --debug really shows its details
    for run in runs:
        shown = run.stdout + run.stderr
        for secret in (
            FAKE_SECRET_KEY,
            FAKE_SESSION,
            FAKE_TOKEN,
            "Signature=",
            "Credential=",
        ):
            assert secret not in shown, (run.args, secret)
