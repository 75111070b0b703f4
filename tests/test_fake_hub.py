"""The test support tells the truth: FakeHub speaks the Hub protocol, the real client
fills a cache from it exactly as reference §3.16 shows, and the hand-built layouts are
ones the real client loads offline and scans clean (or reports, where it should)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.caches import (
    CACHEDIR_TAG,
    MISSING_FILE,
    MODEL_ID,
    CachedRepo,
    CopyBesideBlob,
    CorruptBlob,
    CwdRelativeLink,
    GenuineCache,
    HandBuiltRepo,
    PartialDownload,
    TreeEntry,
    XetTwoHop,
    build_genuine_cache,
    default_files,
    make_absolute_links,
    make_copy_beside_blob,
    make_corrupt_blob,
    make_cwd_relative_link,
    make_degraded,
    make_partial_download,
    make_token_files,
    make_xet_two_hop,
    snapshot_tree,
    write_canonical_repo,
)
from tests.support.fake_hub import FakeHub, HubFile, serve_directory_as_repo
from tests.support.hashes import (
    file_sha256,
    git_blob_sha1,
    hub_etag,
    lfs_pointer_oid,
    pseudo_random_bytes,
    sha256_hex,
)
from tests.support.hf_client import (
    CallOutcome,
    ClientCall,
    FileDownload,
    ScanReport,
    SnapshotDownload,
    download,
    hf_env,
    run_client,
    run_offline,
    scan,
)

# --------------------------------------------------------------------------------------
# The server, spoken to directly


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes


def ask(hub: FakeHub, target: str, method: str = "GET", **headers: str) -> Answer:
    """Send one request with `target` exactly as given (no encoding)."""
    host, port = hub.endpoint.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, target, headers=headers)
        response = connection.getresponse()
        body = response.read()
        names = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, names, body)
    finally:
        connection.close()


CONFIG = HubFile("config.json", b'{"hidden_size": 8}\n')
WEIGHTS = HubFile("model.safetensors", pseudo_random_bytes("weights", 200_000), lfs=True)
ODD_PATHS = ["dir with space/naïve #1.txt", "odd/x+y %z?.txt", "a/b/c/deep.txt"]


@pytest.fixture
def served(fake_hub: FakeHub) -> dict[str, str]:
    """A model with a main commit (also v1.0 and feature/x) and a pr commit."""
    odd = [HubFile(path, path.encode()) for path in ODD_PATHS]
    refs = ["main", "v1.0", "feature/x"]
    main = fake_hub.add_commit("model", MODEL_ID, [CONFIG, WEIGHTS, *odd], refs)
    pr_config = HubFile("config.json", b"{}\n")
    pr = fake_hub.add_commit("model", MODEL_ID, [pr_config], ["refs/pr/1"], "main")
    return {"main": main, "pr": pr}


def test_hub_binds_loopback_on_a_free_port(fake_hub: FakeHub) -> None:
    with FakeHub() as other:
        assert fake_hub.endpoint.startswith("http://127.0.0.1:")
        assert other.endpoint != fake_hub.endpoint


def test_regular_file_etag_is_its_git_blob_sha1(
    fake_hub: FakeHub, served: dict[str, str]
) -> None:
    answer = ask(fake_hub, f"/{MODEL_ID}/resolve/main/config.json", "HEAD")

    assert answer.status == 200
    assert answer.headers["x-repo-commit"] == served["main"]
    assert answer.headers["etag"] == f'"{git_blob_sha1(CONFIG.content)}"'
    assert answer.headers["content-length"] == str(len(CONFIG.content))
    assert "x-linked-etag" not in answer.headers
    assert answer.body == b""


def test_lfs_file_links_its_sha256_and_size(
    fake_hub: FakeHub, served: dict[str, str]
) -> None:
    answer = ask(fake_hub, f"/{MODEL_ID}/resolve/main/model.safetensors")

    assert answer.headers["x-linked-etag"] == f'"{sha256_hex(WEIGHTS.content)}"'
    assert answer.headers["x-linked-size"] == str(len(WEIGHTS.content))
    assert answer.headers["etag"] == f'"{lfs_pointer_oid(WEIGHTS.content)}"'
    assert answer.body == WEIGHTS.content
    assert not any(name.startswith("x-xet") for name in answer.headers)


@pytest.mark.parametrize(
    ("revision", "commit"),
    [
        ("main", "main"),
        ("v1.0", "main"),
        ("feature%2Fx", "main"),
        ("refs%2Fpr%2F1", "pr"),
    ],
)
def test_revision_is_decoded_from_the_raw_path(
    fake_hub: FakeHub, served: dict[str, str], revision: str, commit: str
) -> None:
    answer = ask(fake_hub, f"/{MODEL_ID}/resolve/{revision}/config.json", "HEAD")

    assert answer.headers["x-repo-commit"] == served[commit]


def test_full_commit_sha_is_a_revision(fake_hub: FakeHub, served: dict[str, str]) -> None:
    answer = ask(fake_hub, f"/{MODEL_ID}/resolve/{served['pr']}/config.json")

    assert answer.body == b"{}\n"


@pytest.mark.parametrize("path", ODD_PATHS)
def test_paths_are_decoded_like_the_client_encodes_them(
    fake_hub: FakeHub, served: dict[str, str], path: str
) -> None:
    answer = ask(fake_hub, f"/{MODEL_ID}/resolve/main/{quote(path)}")

    assert answer.status == 200
    assert answer.body == path.encode()


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("/acme/nothing/resolve/main/config.json", "RepoNotFound"),
        (f"/{MODEL_ID}/resolve/no-such-branch/config.json", "RevisionNotFound"),
        (f"/{MODEL_ID}/resolve/main/{MISSING_FILE}", "EntryNotFound"),
        ("/api/models/acme/nothing/revision/main", "RepoNotFound"),
        (f"/api/models/{MODEL_ID}/tree/main/no-such-folder", "EntryNotFound"),
    ],
)
def test_errors_carry_the_hub_error_code(
    fake_hub: FakeHub, served: dict[str, str], target: str, code: str
) -> None:
    answer = ask(fake_hub, target)

    assert answer.status == 404
    assert answer.headers["x-error-code"] == code
    assert "error" in json.loads(answer.body)
    # Only a missing entry names the commit, which lets the client write `.no_exist`.
    has_commit = answer.headers.get("x-repo-commit") == served["main"]
    assert has_commit == (code == "EntryNotFound")


@pytest.mark.parametrize(
    ("byte_range", "start", "end"),
    [("bytes=10-19", 10, 20), ("bytes=199990-", 199_990, 200_000), ("bytes=-5", -5, None)],
)
def test_range_gets_a_partial_answer(
    fake_hub: FakeHub,
    served: dict[str, str],
    byte_range: str,
    start: int,
    end: int | None,
) -> None:
    target = f"/{MODEL_ID}/resolve/main/model.safetensors"
    answer = ask(fake_hub, target, Range=byte_range)

    assert answer.status == 206
    assert answer.body == WEIGHTS.content[start:end]
    first = start % len(WEIGHTS.content)
    assert answer.headers["content-range"].startswith(f"bytes {first}-")


def test_unsatisfiable_range_is_refused(fake_hub: FakeHub, served: dict[str, str]) -> None:
    target = f"/{MODEL_ID}/resolve/main/config.json"
    answer = ask(fake_hub, target, Range="bytes=500-")

    assert answer.status == 416
    assert answer.headers["content-range"] == f"bytes */{len(CONFIG.content)}"


def test_revision_api_names_the_commit(fake_hub: FakeHub, served: dict[str, str]) -> None:
    answer = ask(fake_hub, f"/api/models/{MODEL_ID}/revision/refs%2Fpr%2F1")

    info = json.loads(answer.body)
    assert (info["id"], info["sha"]) == (MODEL_ID, served["pr"])
    assert {s["rfilename"] for s in info["siblings"]} == {
        "config.json",
        "model.safetensors",
        *ODD_PATHS,
    }


def test_recursive_tree_lists_files_and_folders(
    fake_hub: FakeHub, served: dict[str, str]
) -> None:
    answer = ask(fake_hub, f"/api/models/{MODEL_ID}/tree/main?recursive=true")

    entries = {entry["path"]: entry for entry in json.loads(answer.body)}
    folders = {"a", "a/b", "a/b/c", "dir with space", "odd"}
    assert {p for p, e in entries.items() if e["type"] == "directory"} == folders
    assert entries["config.json"] == {
        "type": "file",
        "path": "config.json",
        "size": len(CONFIG.content),
        "oid": git_blob_sha1(CONFIG.content),
    }
    assert entries["model.safetensors"]["oid"] == lfs_pointer_oid(WEIGHTS.content)
    assert entries["model.safetensors"]["lfs"] == {
        "oid": sha256_hex(WEIGHTS.content),
        "size": len(WEIGHTS.content),
        "pointerSize": 134,
    }
    assert not any("xetHash" in entry for entry in entries.values())


@pytest.mark.parametrize(
    ("folder", "recursive", "listed"),
    [
        ("", "false", {"a", "dir with space", "odd", "config.json", "model.safetensors"}),
        ("a%2Fb", "false", {"a/b/c"}),
        ("a%2Fb", "true", {"a/b/c", "a/b/c/deep.txt"}),
        ("dir%20with%20space", "false", {"dir with space/naïve #1.txt"}),
    ],
)
def test_tree_of_a_folder(
    fake_hub: FakeHub, served: dict[str, str], folder: str, recursive: str, listed: set[str]
) -> None:
    target = f"/api/models/{MODEL_ID}/tree/feature%2Fx/{folder}?recursive={recursive}"
    answer = ask(fake_hub, target.replace("x/?", "x?"))

    assert {entry["path"] for entry in json.loads(answer.body)} == listed


def test_requests_are_recorded_raw(fake_hub: FakeHub, served: dict[str, str]) -> None:
    target = f"/{MODEL_ID}/resolve/refs%2Fpr%2F1/config.json"
    ask(fake_hub, target, "HEAD", Authorization="Bearer hf_FAKE_never_recorded")

    assert fake_hub.requests == [("HEAD", target)]
    assert "hf_FAKE" not in repr(fake_hub.requests)


def test_writes_are_refused(fake_hub: FakeHub, served: dict[str, str]) -> None:
    answer = ask(fake_hub, f"/api/models/{MODEL_ID}/paths-info/main", "POST")

    assert answer.status == 405


# --------------------------------------------------------------------------------------
# A genuine cache, written by the real client


@dataclass(frozen=True)
class Genuine:
    built: GenuineCache
    hub: FakeHub


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Genuine]:
    cache_dir = tmp_path_factory.mktemp("genuine") / "hub"
    with FakeHub() as hub:
        yield Genuine(build_genuine_cache(cache_dir, hub), hub)


@pytest.fixture(scope="module")
def genuine_scan(genuine: Genuine) -> ScanReport:
    return scan(genuine.built.cache_dir)


def snapshot_entries(repo_path: Path, commit: str) -> dict[str, str]:
    """Every non-folder entry of a snapshot, with its link target."""
    root = repo_path / "snapshots" / commit
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            found[path.relative_to(root).as_posix()] = os.readlink(path)
    return found


def expected_link(path: str, hub_file: HubFile) -> str:
    """The target the client writes: one `../` per folder level, plus two."""
    depth = path.count("/") + 2
    return "../" * depth + "blobs/" + hub_etag(hub_file.content, lfs=hub_file.lfs)


def all_revisions(built: GenuineCache) -> Iterator[tuple[CachedRepo, str]]:
    for repo in built.repos:
        for commit in repo.revisions:
            yield repo, commit


def test_kernel_repos_are_supported_by_the_installed_client(genuine: Genuine) -> None:
    assert genuine.built.kernel_supported


def test_blobs_are_named_by_hub_etags(genuine: Genuine) -> None:
    for repo, commit in all_revisions(genuine.built):
        blobs = genuine.built.cache_dir / repo.folder / "blobs"
        for hub_file in repo.revisions[commit].files.values():
            blob = blobs / hub_etag(hub_file.content, lfs=hub_file.lfs)
            assert blob.read_bytes() == hub_file.content, blob


def test_snapshots_hold_relative_links_one_level_deeper_per_folder(
    genuine: Genuine,
) -> None:
    for repo, commit in all_revisions(genuine.built):
        revision = repo.revisions[commit]
        entries = snapshot_entries(genuine.built.cache_dir / repo.folder, commit)

        expected = {p: expected_link(p, f) for p, f in revision.files.items()}
        assert entries == expected


def test_refs_are_40_bytes_without_newline(genuine: Genuine) -> None:
    model = genuine.built.repo("model", MODEL_ID)
    assert set(model.refs) == {"main", "v1.0", "feature/x", "refs/pr/1"}
    for repo in genuine.built.repos:
        refs = genuine.built.cache_dir / repo.folder / "refs"
        found = {p.relative_to(refs).as_posix() for p in refs.rglob("*") if p.is_file()}
        assert found == set(repo.refs)
        for name, commit in repo.refs.items():
            assert (refs / name).read_bytes() == commit.encode("ascii")


def test_missing_file_leaves_an_empty_no_exist_marker(genuine: Genuine) -> None:
    built = genuine.built
    repo_path = built.cache_dir / built.repo("model", MODEL_ID).folder
    marker = repo_path / ".no_exist" / built.model_main / MISSING_FILE
    assert marker.stat().st_size == 0

    code = (
        "import json\n"
        "from huggingface_hub import try_to_load_from_cache\n"
        "from huggingface_hub.file_download import _CACHED_NO_EXIST\n"
        f"found = try_to_load_from_cache({MODEL_ID!r}, {MISSING_FILE!r})\n"
        "print(json.dumps(found is _CACHED_NO_EXIST))\n"
    )
    assert run_client(code, hf_env(built.cache_dir, genuine.hub.endpoint, offline=True))


def test_trees_file_lists_the_whole_commit_with_mode_0600(genuine: Genuine) -> None:
    for repo, commit in all_revisions(genuine.built):
        listed = repo.revisions[commit].listed
        trees = genuine.built.cache_dir / repo.folder / "trees" / f"{commit}.json"
        if listed is None:
            assert not trees.exists()
            continue
        assert stat.S_IMODE(trees.stat().st_mode) == 0o600
        document = json.loads(trees.read_text())
        assert document["format_version"] == 1
        assert document["files"] == {p: trees_entry(f) for p, f in listed.items()}


def trees_entry(hub_file: HubFile) -> dict[str, object]:
    content = hub_file.content
    if not hub_file.lfs:
        return {"size": len(content), "blob_id": git_blob_sha1(content)}
    return {
        "size": len(content),
        "blob_id": lfs_pointer_oid(content),
        "lfs_sha256": sha256_hex(content),
        "lfs_size": len(content),
    }


def test_cache_is_tagged(genuine: Genuine) -> None:
    tag = genuine.built.cache_dir / "CACHEDIR.TAG"
    assert tag.read_text() == CACHEDIR_TAG
    assert len(CACHEDIR_TAG) == 191


def test_identical_content_has_one_blob_name_in_both_repos(genuine: Genuine) -> None:
    built = genuine.built
    blobs = [built.cache_dir / folder / "blobs" / built.shared_blob for folder in built.shared_by]
    assert blobs[0].read_bytes() == blobs[1].read_bytes()
    assert file_sha256(blobs[0]) == built.shared_blob


def test_genuine_cache_scans_clean(genuine: Genuine, genuine_scan: ScanReport) -> None:
    assert genuine_scan.warnings == ()
    assert genuine_scan.incomplete_files == ()
    for repo in genuine.built.repos:
        scanned = genuine_scan.repo(repo.repo_type, repo.repo_id)
        assert set(scanned.refs) == set(repo.refs)
        found = {rev.commit_hash: set(rev.files) for rev in scanned.revisions}
        assert found == {c: set(r.files) for c, r in repo.revisions.items()}
    assert len(genuine_scan.repos) == len(genuine.built.repos)


def offline_calls(built: GenuineCache) -> dict[ClientCall, str | None]:
    """Offline calls on the genuine cache, with the exception each must raise."""
    model = MODEL_ID
    calls: dict[ClientCall, str | None] = {
        FileDownload(model, "model.safetensors", revision=rev): None
        for rev in ("main", "v1.0", "feature/x", built.model_main)
    }
    calls[FileDownload(model, "config.json", revision="refs/pr/1")] = None
    calls[FileDownload(model, "dir with space/naïve #1.txt")] = None
    calls[FileDownload(model, MISSING_FILE)] = "LocalEntryNotFoundError"
    calls[SnapshotDownload(model)] = None
    calls[SnapshotDownload(model, revision="refs/pr/1", allow_patterns=("*.json",))] = None
    calls[SnapshotDownload(model, revision="refs/pr/1")] = "IncompleteSnapshotError"
    calls[SnapshotDownload("acme/tiny-dataset", repo_type="dataset")] = None
    return calls


def test_genuine_cache_loads_offline_without_a_request(genuine: Genuine) -> None:
    built, hub = genuine.built, genuine.hub
    calls = offline_calls(built)
    seen_before = len(hub.requests)

    outcomes = run_offline(built.cache_dir, list(calls), endpoint=hub.endpoint)

    assert [o.error for o in outcomes] == list(calls.values())
    model_files = hub.files("model", MODEL_ID, "main")
    weights = sha256_hex(model_files["model.safetensors"].content)
    assert {o.sha256 for o in outcomes[:4]} == {weights}
    full_snapshot = outcomes[len(calls) - 4]
    assert set(full_snapshot.files) == set(model_files)
    assert len(hub.requests) == seen_before


def test_second_snapshot_download_costs_one_request_and_changes_nothing(
    genuine: Genuine,
) -> None:
    built, hub = genuine.built, genuine.hub
    before = snapshot_tree(built.cache_dir)
    seen_before = len(hub.requests)

    (outcome,) = download(built.cache_dir, hub.endpoint, [SnapshotDownload(MODEL_ID)])

    assert outcome.error is None
    assert hub.requests[seen_before:] == [("GET", f"/api/models/{MODEL_ID}/revision/main")]
    assert snapshot_tree(built.cache_dir) == before


# --------------------------------------------------------------------------------------
# Hand-built layouts, judged by the real client


@dataclass(frozen=True)
class HandBuilt:
    cache_dir: Path
    xet: XetTwoHop
    degraded: HandBuiltRepo
    degraded_with_trees: HandBuiltRepo
    copy: CopyBesideBlob
    absolute: HandBuiltRepo
    cwd_relative: CwdRelativeLink
    partial: PartialDownload
    flipped: CorruptBlob
    truncated: CorruptBlob
    report: ScanReport
    offline: Mapping[ClientCall, CallOutcome]


def load_calls(repo: HandBuiltRepo) -> list[ClientCall]:
    calls: list[ClientCall] = [FileDownload(repo.repo_id, path) for path in repo.files]
    return [*calls, SnapshotDownload(repo.repo_id)]


@pytest.fixture(scope="module")
def hand_built(tmp_path_factory: pytest.TempPathFactory) -> HandBuilt:
    """Every hand-built layout in one cache, scanned and loaded offline once."""
    root = tmp_path_factory.mktemp("hand-built")
    cache_dir = root / "hub"
    cache_dir.mkdir()
    layouts = {
        "xet": make_xet_two_hop(cache_dir, ["acme/xet-model", "acme/xet-copy"]),
        "degraded": make_degraded(cache_dir),
        "degraded_with_trees": make_degraded(cache_dir, "acme/degraded-trees", trees=True),
        "copy": make_copy_beside_blob(cache_dir),
        "absolute": make_absolute_links(cache_dir),
        "cwd_relative": make_cwd_relative_link(cache_dir, workdir=root),
        "partial": make_partial_download(cache_dir),
        "flipped": make_corrupt_blob(cache_dir, "flip", repo_id="acme/flipped"),
        "truncated": make_corrupt_blob(cache_dir, "truncate", repo_id="acme/truncated"),
    }
    repos = [
        *layouts["xet"].repos,  # type: ignore[attr-defined]
        *(layouts[name] for name in ("degraded", "degraded_with_trees", "absolute")),
        *(layouts[name].repo for name in ("copy", "cwd_relative", "partial")),  # type: ignore[attr-defined]
        *(layouts[name].repo for name in ("flipped", "truncated")),  # type: ignore[attr-defined]
    ]
    calls = [call for repo in repos for call in load_calls(repo)]
    outcomes = run_offline(cache_dir, calls)
    return HandBuilt(
        cache_dir=cache_dir,
        report=scan(cache_dir),
        offline=dict(zip(calls, outcomes, strict=True)),
        **layouts,  # type: ignore[arg-type]
    )
