"""Hugging Face caches for push/pull fidelity tests: genuine ones and hand-built ones.

`build_genuine_cache` lets the real client download from a `FakeHub`, so the cache is
exactly what users have. The `make_*` builders write, with plain os calls, the layouts
the client writes in situations a local server cannot provoke (Xet downloads, no
symlink support, a killed download, other tools copying the cache). Blob names are real
hashes: SHA-256 for LFS files, the git blob SHA-1 for the others.

`snapshot_tree` describes a cache so that a test can assert a restored copy is equal.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from tests.support.fake_hub import FakeHub, HubFile
from tests.support.hashes import (
    git_blob_sha1,
    git_object_sha1,
    hub_etag,
    lfs_pointer_oid,
    pseudo_random_bytes,
    sha256_hex,
)
from tests.support.hf_client import ClientCall, FileDownload, SnapshotDownload, download

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by huggingface_hub.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n"
)
SHARED_STORE_MARKER = ".huggingface-shared-blobs"
SHARED_STORE_MARKER_TEXT = "1\n"
TREES_FORMAT_VERSION = 1

MODEL_ID = "acme/tiny-model"
DATASET_ID = "acme/tiny-dataset"
SPACE_ID = "acme/tiny-space"
KERNEL_ID = "acme/tiny-kernel"
NAMESPACELESS_ID = "gpt-tiny"
MISSING_FILE = "adapter_config.json"

_GITATTRIBUTES = (
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    b"*.onnx filter=lfs diff=lfs merge=lfs -text\n"
    b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
)
# The same bytes in the model and the dataset: one blob name in two repo folders.
_SHARED_PAYLOAD = pseudo_random_bytes("shared-payload", 64 * 1024)


def repo_folder_name(repo_type: str, repo_id: str) -> str:
    """Return the cache folder name of a repo, e.g. `models--acme--tiny-model`."""
    return "--".join([f"{repo_type}s", *repo_id.split("/")])


# --------------------------------------------------------------------------------------
# Genuine caches, written by the real client


@dataclass(frozen=True)
class CachedRevision:
    """One commit as the cache holds it.

    Attributes:
        commit: the 40-hex commit sha (the `snapshots/` folder name).
        files: what `snapshots/<commit>/` holds, by repo path.
        listed: the files `trees/<commit>.json` lists (the whole commit), or None
            when the client wrote no trees file for this commit.
    """

    commit: str
    files: Mapping[str, HubFile]
    listed: Mapping[str, HubFile] | None


@dataclass(frozen=True)
class CachedRepo:
    """One repo of a built cache: its refs, revisions and `.no_exist` markers."""

    repo_type: str
    repo_id: str
    refs: Mapping[str, str]
    revisions: Mapping[str, CachedRevision]
    no_exist: Mapping[str, tuple[str, ...]]

    @property
    def folder(self) -> str:
        return repo_folder_name(self.repo_type, self.repo_id)


@dataclass(frozen=True)
class GenuineCache:
    """What `build_genuine_cache` made, to compare a cache against.

    Attributes:
        cache_dir: the Hub cache the client wrote.
        repos: every repo in it.
        model_main: the commit of `acme/tiny-model` at main, v1.0 and feature/x.
        model_pr: the commit of `acme/tiny-model` at refs/pr/1.
        shared_blob: a blob name present in the two folders of `shared_by`.
        shared_by: the two repo folders holding `shared_blob`.
        kernel_supported: whether the client accepted the kernel repo type.
    """

    cache_dir: Path
    repos: tuple[CachedRepo, ...]
    model_main: str
    model_pr: str
    shared_blob: str
    shared_by: tuple[str, str]
    kernel_supported: bool

    def repo(self, repo_type: str, repo_id: str) -> CachedRepo:
        for repo in self.repos:
            if (repo.repo_type, repo.repo_id) == (repo_type, repo_id):
                return repo
        raise KeyError(f"{repo_type} {repo_id} was not built")


def _by_path(files: Sequence[HubFile]) -> dict[str, HubFile]:
    return {f.path: f for f in files}


def _model_files() -> list[HubFile]:
    return [
        HubFile(".gitattributes", _GITATTRIBUTES),
        HubFile("README.md", b"# tiny-model\n"),
        HubFile("config.json", b'{"model_type": "tiny", "hidden_size": 8}\n'),
        HubFile("model.safetensors", pseudo_random_bytes("model", 1 << 20), lfs=True),
        HubFile("onnx/model.onnx", _SHARED_PAYLOAD, lfs=True),
        HubFile("onnx/config.txt", b"opset=17\n"),
        HubFile("a/b/c/deep.txt", b"three folders down\n"),
        HubFile("dir with space/naïve #1.txt", b"na\xc3\xafve\n"),
        HubFile("odd/x+y %z?.txt", b"percent, plus and question mark\n"),
        HubFile("empty.txt", b""),
    ]


def _dataset_files() -> list[HubFile]:
    parquet = b"PAR1" + pseudo_random_bytes("parquet", 4088) + b"PAR1"
    return [
        HubFile(".gitattributes", _GITATTRIBUTES),
        HubFile("README.md", b"# tiny-dataset\n"),
        HubFile("data/train.csv", b"text,label\nhello,1\nworld,0\n"),
        HubFile("data/train.parquet", parquet, lfs=True),
        HubFile("data/encoder.onnx", _SHARED_PAYLOAD, lfs=True),
    ]


_SPACE_FILES = [
    HubFile("app.py", b"print('hello')\n"),
    HubFile("README.md", b"# space\n"),
]
_NAMESPACELESS_FILES = [HubFile("config.json", b"{}\n")]
_KERNEL_FILES = [
    HubFile("README.md", b"# tiny-kernel\n"),
    HubFile(
        "build/torch-universal/tiny_kernel/__init__.py",
        b"def add(a, b):\n    return a + b\n",
    ),
]
_PR_CONFIG = HubFile("config.json", b'{"model_type": "tiny", "hidden_size": 16}\n')


@dataclass(frozen=True)
class _Planned:
    call: ClientCall
    error: str | None = None


def _download_plan() -> list[_Planned]:
    """The client calls that make the genuine cache, in order (reference §3.16)."""
    model, dataset = MODEL_ID, DATASET_ID
    return [
        _Planned(FileDownload(model, "config.json")),
        _Planned(SnapshotDownload(model, allow_patterns=("*.json", "onnx/*"))),
        _Planned(SnapshotDownload(model)),
        _Planned(FileDownload(model, "config.json", revision="refs/pr/1")),
        # Writes the full listing of the pr commit while its snapshot stays partial.
        _Planned(
            SnapshotDownload(model, revision="refs/pr/1", allow_patterns=("*.json",))
        ),
        _Planned(FileDownload(model, "config.json", revision="feature/x")),
        _Planned(FileDownload(model, "README.md", revision="v1.0")),
        _Planned(FileDownload(model, MISSING_FILE), error="RemoteEntryNotFoundError"),
        _Planned(SnapshotDownload(dataset, repo_type="dataset")),
        _Planned(FileDownload(SPACE_ID, "app.py", repo_type="space")),
        _Planned(FileDownload(NAMESPACELESS_ID, "config.json")),
    ]


def _publish(hub: FakeHub) -> dict[str, str]:
    """Add every repo to the hub; return the commits by short name."""
    main = hub.add_commit(
        "model", MODEL_ID, _model_files(), ["main", "v1.0", "feature/x"]
    )
    pr = hub.add_commit("model", MODEL_ID, [_PR_CONFIG], ["refs/pr/1"], "main")
    return {
        "main": main,
        "pr": pr,
        "dataset": hub.add_commit("dataset", DATASET_ID, _dataset_files()),
        "space": hub.add_commit("space", SPACE_ID, _SPACE_FILES),
        "namespaceless": hub.add_commit(
            "model", NAMESPACELESS_ID, _NAMESPACELESS_FILES
        ),
        "kernel": hub.add_commit("kernel", KERNEL_ID, _KERNEL_FILES),
    }


def _expected_repos(
    hub: FakeHub, commits: Mapping[str, str], kernel: bool
) -> tuple[CachedRepo, ...]:
    main, pr = commits["main"], commits["pr"]
    main_files = hub.files("model", MODEL_ID, main)
    pr_files = hub.files("model", MODEL_ID, pr)
    model = CachedRepo(
        "model",
        MODEL_ID,
        refs={"main": main, "v1.0": main, "feature/x": main, "refs/pr/1": pr},
        revisions={
            main: CachedRevision(main, main_files, main_files),
            pr: CachedRevision(pr, {"config.json": pr_files["config.json"]}, pr_files),
        },
        no_exist={main: (MISSING_FILE,)},
    )
    repos = [
        model,
        _whole_repo(hub, "dataset", DATASET_ID, commits["dataset"]),
        _one_file_repo(hub, "space", SPACE_ID, commits["space"], "app.py"),
        _one_file_repo(
            hub, "model", NAMESPACELESS_ID, commits["namespaceless"], "config.json"
        ),
    ]
    if kernel:
        repos.append(_whole_repo(hub, "kernel", KERNEL_ID, commits["kernel"]))
    return tuple(repos)


def _whole_repo(hub: FakeHub, repo_type: str, repo_id: str, commit: str) -> CachedRepo:
    files = hub.files(repo_type, repo_id, commit)
    revision = CachedRevision(commit, files, files)
    return CachedRepo(repo_type, repo_id, {"main": commit}, {commit: revision}, {})


def _one_file_repo(
    hub: FakeHub, repo_type: str, repo_id: str, commit: str, path: str
) -> CachedRepo:
    files = {path: hub.files(repo_type, repo_id, commit)[path]}
    revision = CachedRevision(commit, files, None)
    return CachedRepo(repo_type, repo_id, {"main": commit}, {commit: revision}, {})


def _check_outcomes(plan: Sequence[_Planned], errors: Sequence[str | None]) -> None:
    for planned, error in zip(plan, errors, strict=True):
        if error != planned.error:
            raise RuntimeError(f"{planned.call} gave {error}, expected {planned.error}")


def build_genuine_cache(cache_dir: Path, hub: FakeHub) -> GenuineCache:
    """Publish the test repos on `hub` and download them into `cache_dir` with the
    real client, in one client process.

    The cache then holds: `acme/tiny-model` at main (full snapshot, reached through
    `main`, `v1.0` and `feature/x`) and at `refs/pr/1` (only config.json, with the full
    `trees/` listing), a `.no_exist` marker, `acme/tiny-dataset` in full, one file of
    `acme/tiny-space`, the namespace-less `gpt-tiny`, `acme/tiny-kernel` when the client
    knows kernels, and one LFS blob present in both the model and the dataset.

    Args:
        cache_dir: the Hub cache to fill (its parent is used as `HF_HOME`).
        hub: a started hub; the repos are added to it.

    Raises:
        RuntimeError: a download did not give the expected result.
    """
    commits = _publish(hub)
    plan = _download_plan()
    kernel_call = SnapshotDownload(KERNEL_ID, repo_type="kernel")
    outcomes = download(cache_dir, hub.endpoint, [p.call for p in plan] + [kernel_call])
    _check_outcomes(plan, [outcome.error for outcome in outcomes[:-1]])

    # An older client rejects the repo type before writing anything.
    kernel_error = outcomes[-1].error
    if kernel_error not in (None, "ValueError"):
        raise RuntimeError(f"kernel snapshot failed with {kernel_error}")
    kernel = kernel_error is None

    return GenuineCache(
        cache_dir=cache_dir,
        repos=_expected_repos(hub, commits, kernel),
        model_main=commits["main"],
        model_pr=commits["pr"],
        shared_blob=sha256_hex(_SHARED_PAYLOAD),
        shared_by=(
            repo_folder_name("model", MODEL_ID),
            repo_folder_name("dataset", DATASET_ID),
        ),
        kernel_supported=kernel,
    )


# --------------------------------------------------------------------------------------
# Hand-built caches: what the client writes where a local server cannot lead it


@dataclass(frozen=True)
class HandBuiltRepo:
    """A repo written by hand, with one commit.

    Attributes:
        cache_dir: the Hub cache it is in.
        repo_type: "model", "dataset", "space" or "kernel".
        repo_id: the repo id.
        commit: the 40-hex commit sha of its one snapshot.
        refs: the ref names pointing at `commit`.
        files: the files of the commit, by repo path.
    """

    cache_dir: Path
    repo_type: str
    repo_id: str
    commit: str
    refs: tuple[str, ...]
    files: Mapping[str, HubFile]

    @property
    def folder(self) -> str:
        return repo_folder_name(self.repo_type, self.repo_id)

    @property
    def path(self) -> Path:
        return self.cache_dir / self.folder

    def blob_name(self, path: str) -> str:
        """The name the client gives the blob of `path`: its Hub ETag."""
        hub_file = self.files[path]
        return hub_etag(hub_file.content, lfs=hub_file.lfs)

    def blob_path(self, path: str) -> Path:
        return self.path / "blobs" / self.blob_name(path)

    def snapshot_path(self, path: str) -> Path:
        return self.path / "snapshots" / self.commit / path


def default_files(seed: str = "hand-built") -> list[HubFile]:
    """A small model: a config, an LFS weights file and a file one folder down."""
    return [
        HubFile("config.json", b'{"model_type": "hand-built"}\n'),
        HubFile("model.safetensors", pseudo_random_bytes(seed, 128 * 1024), lfs=True),
        HubFile("tokenizer/vocab.txt", b"[PAD]\n[UNK]\nhello\n"),
    ]


def _commit_sha(repo_type: str, repo_id: str, files: Sequence[HubFile]) -> str:
    lines = [f"hand-built {repo_type}/{repo_id}"]
    lines += sorted(f"{f.path} {hub_etag(f.content, lfs=f.lfs)}" for f in files)
    return git_object_sha1("commit", "\n".join(lines).encode())


def _write_file(path: Path, content: bytes, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if mode is not None:
        path.chmod(mode)


def _relative_link(link: Path, target: Path) -> None:
    """Link as the client does: relative to the link's folder."""
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(target, link.parent), link)


def _tag_cache(cache_dir: Path) -> None:
    tag = cache_dir / "CACHEDIR.TAG"
    if not tag.exists():
        _write_file(tag, CACHEDIR_TAG.encode())


def _write_refs(repo_path: Path, refs: Sequence[str], commit: str) -> None:
    for ref in refs:
        # Exactly 40 bytes and no newline: the client reads refs without stripping.
        _write_file(repo_path / "refs" / ref, commit.encode("ascii"))


def _trees_entry(hub_file: HubFile, xet_hash: str | None) -> dict[str, object]:
    content = hub_file.content
    if not hub_file.lfs:
        return {"size": len(content), "blob_id": git_blob_sha1(content)}
    entry: dict[str, object] = {
        "size": len(content),
        "blob_id": lfs_pointer_oid(content),
        "lfs_sha256": sha256_hex(content),
        "lfs_size": len(content),
    }
    if xet_hash is not None:
        entry["xet_hash"] = xet_hash
    return entry


def _write_trees(
    repo_path: Path,
    commit: str,
    files: Mapping[str, HubFile],
    xet_hashes: Mapping[str, str],
) -> None:
    listing = {p: _trees_entry(files[p], xet_hashes.get(p)) for p in sorted(files)}
    document = {"format_version": TREES_FORMAT_VERSION, "files": listing}
    # The client writes it through mkstemp, hence 0600 whatever the umask.
    text = json.dumps(document, indent=1)
    _write_file(repo_path / "trees" / f"{commit}.json", text.encode(), mode=0o600)


def write_canonical_repo(
    cache_dir: Path,
    repo_id: str,
    files: Sequence[HubFile],
    *,
    repo_type: str = "model",
    refs: Sequence[str] = ("main",),
    trees: bool = False,
    xet_hashes: Mapping[str, str] | None = None,
) -> HandBuiltRepo:
    """Write a repo the way the client writes a download on Linux.

    Blobs named by ETag, relative snapshot links (one more `../` per folder level),
    40-byte refs and, with `trees`, a `trees/<commit>.json` (mode 0600) listing
    `files`, with the given Xet hashes. Also writes `CACHEDIR.TAG` if missing.
    """
    repo = HandBuiltRepo(
        cache_dir=cache_dir,
        repo_type=repo_type,
        repo_id=repo_id,
        commit=_commit_sha(repo_type, repo_id, files),
        refs=tuple(refs),
        files=_by_path(files),
    )
    _tag_cache(cache_dir)
    for path, hub_file in repo.files.items():
        if not repo.blob_path(path).exists():
            _write_file(repo.blob_path(path), hub_file.content)
        _relative_link(repo.snapshot_path(path), repo.blob_path(path))
    _write_refs(repo.path, refs, repo.commit)
    if trees:
        _write_trees(repo.path, repo.commit, repo.files, xet_hashes or {})
    return repo


@dataclass(frozen=True)
class XetTwoHop:
    """Repos whose blob of `filename` is a link into the cache-wide shared store.

    Attributes:
        repos: the repos sharing the payload.
        filename: the repo path of the shared file.
        blob_name: its repo blob name (SHA-256 of the content).
        xet_hash: the name of the payload in the store.
        payload: `<cache>/blobs/<xet_hash[:2]>/<xet_hash>`, the only copy of the bytes.
        marker: `<cache>/blobs/.huggingface-shared-blobs`.
        manifest: `<payload>.refs`, one line per repo blob linking to the payload.
        lock: `<payload>.lock`.
    """

    repos: tuple[HandBuiltRepo, ...]
    filename: str
    blob_name: str
    xet_hash: str
    payload: Path
    marker: Path
    manifest: Path
    lock: Path


def _shared_file_mode(cache_dir: Path) -> int:
    """Read-only, readable by whoever can enter the cache root (as the client sets)."""
    root = stat.S_IMODE(cache_dir.stat().st_mode)
    group = 0o040 if root & stat.S_IXGRP else 0
    other = 0o004 if root & stat.S_IXOTH else 0
    return 0o400 | group | other


def _make_store_folder(folder: Path, cache_dir: Path) -> None:
    # Store folders copy the cache root's access bits, as the client does.
    folder.mkdir(exist_ok=True)
    root_mode = cache_dir.stat().st_mode
    folder.chmod(stat.S_IMODE(root_mode) | (root_mode & (stat.S_ISGID | stat.S_ISVTX)))


def _create_world_writable(path: Path, content: bytes = b"") -> None:
    # 0666 whatever the umask, so every user of a shared cache can lock and append.
    with path.open("ab") as stream:
        stream.write(content)
    path.chmod(0o666)


def _publish_to_shared_store(
    cache_dir: Path, repos: Sequence[HandBuiltRepo], filename: str, xet_hash: str
) -> XetTwoHop:
    store = cache_dir / "blobs"
    _make_store_folder(store, cache_dir)
    marker = store / SHARED_STORE_MARKER
    marker_text = SHARED_STORE_MARKER_TEXT.encode()
    _write_file(marker, marker_text, mode=_shared_file_mode(cache_dir))
    _make_store_folder(store / xet_hash[:2], cache_dir)

    payload = store / xet_hash[:2] / xet_hash
    manifest = payload.with_name(f"{xet_hash}.refs")
    lock = payload.with_name(f"{xet_hash}.lock")
    os.replace(repos[0].blob_path(filename), payload)
    payload.chmod(_shared_file_mode(cache_dir))
    _create_world_writable(lock)
    for repo in repos:
        repo.blob_path(filename).unlink(missing_ok=True)
        line = f"{repo.folder}/blobs/{repo.blob_name(filename)}\n"
        _create_world_writable(manifest, line.encode())
        _relative_link(repo.blob_path(filename), payload)

    blob_name = repos[0].blob_name(filename)
    return XetTwoHop(
        tuple(repos), filename, blob_name, xet_hash, payload, marker, manifest, lock
    )


def make_xet_two_hop(
    cache_dir: Path,
    repo_ids: Sequence[str] = ("acme/xet-model",),
    *,
    filename: str = "model.safetensors",
    content: bytes | None = None,
    xet_hash: str | None = None,
    trees: bool = True,
) -> XetTwoHop:
    """Write what Xet downloads leave (reference §3.11): a two-hop chain.

    `snapshots/C/<filename> -> ../../blobs/<sha256>` and, in each repo,
    `blobs/<sha256> -> ../../blobs/<xh[:2]>/<xh>`, the payload in the shared store
    (marker "1\\n", read-only payload and marker, 0666 `.refs` manifest and `.lock`).
    With `trees`, `trees/C.json` carries the `xet_hash` as after a `snapshot_download`.

    `xet_hash` defaults to a stand-in (a SHA-256 of the content with a prefix): the
    real one needs hf_xet, and nothing reads it except as a name.
    """
    payload = content if content is not None else pseudo_random_bytes("xet", 256 * 1024)
    xet = xet_hash if xet_hash is not None else sha256_hex(b"xet stand-in\0" + payload)
    files = [
        HubFile("config.json", b'{"model_type": "xet"}\n'),
        HubFile(filename, payload, lfs=True),
    ]
    repos = [
        write_canonical_repo(
            cache_dir, repo_id, files, trees=trees, xet_hashes={filename: xet}
        )
        for repo_id in repo_ids
    ]
    return _publish_to_shared_store(cache_dir, repos, filename, xet)


def make_degraded(
    cache_dir: Path,
    repo_id: str = "acme/degraded",
    *,
    trees: bool = False,
    files: Sequence[HubFile] | None = None,
) -> HandBuiltRepo:
    """Write the layout of a client without symlinks (`HF_HUB_DISABLE_SYMLINKS=1`,
    Windows without developer mode): regular files in `snapshots/C/`, an empty
    `blobs/`, refs as usual, and `trees/C.json` when `trees`."""
    repo = write_canonical_repo(
        cache_dir, repo_id, files or default_files(), trees=trees
    )
    for path, hub_file in repo.files.items():
        repo.snapshot_path(path).unlink()
        _write_file(repo.snapshot_path(path), hub_file.content)
    for blob in (repo.path / "blobs").iterdir():
        blob.unlink()
    return repo


@dataclass(frozen=True)
class CopyBesideBlob:
    """A snapshot entry that is a regular copy while its blob is still in `blobs/`."""

    repo: HandBuiltRepo
    path: str


def make_copy_beside_blob(
    cache_dir: Path, repo_id: str = "acme/copy-beside", path: str = "model.safetensors"
) -> CopyBesideBlob:
    """Write a repo whose `snapshots/C/<path>` is a regular file with the same bytes
    as `blobs/E`, as tools that follow links when copying a cache leave it."""
    repo = write_canonical_repo(cache_dir, repo_id, default_files())
    repo.snapshot_path(path).unlink()
    _write_file(repo.snapshot_path(path), repo.files[path].content)
    return CopyBesideBlob(repo, path)


def make_absolute_links(
    cache_dir: Path, repo_id: str = "acme/absolute"
) -> HandBuiltRepo:
    """Write a repo whose snapshot links all hold absolute targets, as the client
    writes when a relative path cannot be computed (another volume)."""
    repo = write_canonical_repo(cache_dir, repo_id, default_files())
    for path in repo.files:
        repo.snapshot_path(path).unlink()
        os.symlink(os.path.abspath(repo.blob_path(path)), repo.snapshot_path(path))
    return repo


@dataclass(frozen=True)
class CwdRelativeLink:
    """A snapshot link whose target was written relative to `workdir`, not to the
    link's folder: it resolves nowhere else, so it dangles for the client."""

    repo: HandBuiltRepo
    path: str
    target: str
    workdir: Path


def make_cwd_relative_link(
    cache_dir: Path,
    workdir: Path,
    repo_id: str = "acme/cwd-relative",
    path: str = "config.json",
) -> CwdRelativeLink:
    """Write a repo whose `snapshots/C/<path>` targets e.g. `tmp/cache/R/blobs/E`,
    a path relative to `workdir` (which must contain the cache).

    Raises:
        ValueError: the target happens to resolve from the link's folder too.
    """
    repo = write_canonical_repo(cache_dir, repo_id, default_files())
    link = repo.snapshot_path(path)
    target = os.path.relpath(repo.blob_path(path), workdir)
    if (link.parent / target).exists():
        raise ValueError(f"{target} resolves from {link.parent}; pick another workdir")
    link.unlink()
    os.symlink(target, link)
    return CwdRelativeLink(repo, path, target, workdir)


@dataclass(frozen=True)
class PartialDownload:
    """A sharded model whose first shard was being downloaded when the client died.

    Attributes:
        repo: the repo; `files` lists every file of the commit.
        missing: the repo path of the shard with no snapshot entry and no blob.
        incomplete: `blobs/<E1>.<token>.incomplete`, holding half of its bytes.
        present: the repo paths the snapshot holds.
    """

    repo: HandBuiltRepo
    missing: str
    incomplete: Path
    present: tuple[str, ...]


def _sharded_files() -> list[HubFile]:
    shards = [f"model-0000{n}-of-00002.safetensors" for n in (1, 2)]
    weight_map = {"encoder.weight": shards[0], "decoder.weight": shards[1]}
    index = {"metadata": {"total_size": 2 * 96 * 1024}, "weight_map": weight_map}
    return [
        HubFile("config.json", b'{"model_type": "sharded"}\n'),
        HubFile("model.safetensors.index.json", json.dumps(index, indent=2).encode()),
        HubFile(shards[0], pseudo_random_bytes("shard-1", 96 * 1024), lfs=True),
        HubFile(shards[1], pseudo_random_bytes("shard-2", 96 * 1024), lfs=True),
    ]


def make_partial_download(
    cache_dir: Path,
    repo_id: str = "acme/sharded",
    *,
    token: str = "1a2b3c4d",
    trees: bool = True,
) -> PartialDownload:
    """Write what a killed `snapshot_download` of a sharded model leaves.

    The index, the config and shard 2 are complete and linked; shard 1 exists only as
    `blobs/<E1>.<token>.incomplete` (half its bytes), beside the complete `blobs/<E2>`.
    With `trees`, `trees/C.json` lists all four files, as the client writes it
    before downloading.
    """
    files = _sharded_files()
    missing = files[2]
    repo = write_canonical_repo(cache_dir, repo_id, files, trees=trees)
    blob = repo.blob_path(missing.path)
    incomplete = blob.with_name(f"{blob.name}.{token}.incomplete")
    _write_file(incomplete, missing.content[: len(missing.content) // 2])
    blob.unlink()
    repo.snapshot_path(missing.path).unlink()
    present = tuple(path for path in repo.files if path != missing.path)
    return PartialDownload(repo, missing.path, incomplete, present)


@dataclass(frozen=True)
class CorruptBlob:
    """A blob whose bytes no longer hash to its name.

    Attributes:
        repo: the repo.
        path: the repo path whose blob is corrupt.
        blob: the corrupt blob file.
        expected: the hash the name promises (the blob name).
        actual: the same kind of hash of the bytes now on disk.
    """

    repo: HandBuiltRepo
    path: str
    blob: Path
    expected: str
    actual: str


def make_corrupt_blob(
    cache_dir: Path,
    how: Literal["flip", "truncate"] = "flip",
    *,
    repo_id: str = "acme/corrupt",
    path: str = "model.safetensors",
) -> CorruptBlob:
    """Write a canonical repo, then flip one byte in the middle of the blob of
    `path`, or cut it to half its size. The other blobs stay intact."""
    repo = write_canonical_repo(cache_dir, repo_id, default_files())
    blob = repo.blob_path(path)
    original = blob.read_bytes()
    middle = len(original) // 2
    if how == "flip":
        content = (
            original[:middle]
            + bytes([original[middle] ^ 0xFF])
            + original[middle + 1 :]
        )
    else:
        content = original[:middle]
    blob.write_bytes(content)
    name = repo.blob_name(path)
    actual = sha256_hex(content) if len(name) == 64 else git_blob_sha1(content)
    return CorruptBlob(repo, path, blob, name, actual)


@dataclass(frozen=True)
class TokenFiles:
    """Secrets the client keeps beside the cache in `HF_HOME`.

    Attributes:
        hf_home: the folder (mode 0700, as after `hf auth login`).
        token: `HF_HOME/token`, mode 0600.
        stored_tokens: `HF_HOME/stored_tokens` (INI), mode 0600.
        sandbox: `HF_HOME/sandbox/`, folders 0700.
        secrets: every secret value written; none may ever reach a store.
    """

    hf_home: Path
    token: Path
    stored_tokens: Path
    sandbox: Path
    secrets: tuple[str, ...]


def _fake_secret(name: str) -> str:
    return f"hf_FAKE{sha256_hex(name.encode())[:30]}"


def make_token_files(hf_home: Path) -> TokenFiles:
    """Write fake `hf_FAKE...` tokens where the client keeps real ones."""
    active, bot, refresh, nonce = (
        _fake_secret(n) for n in ("active", "bot", "refresh", "nonce")
    )
    stored = (
        f"[research]\nhf_token = {active}\n\n"
        f"[ci-bot]\nhf_token = {bot}\nrefresh_token = {refresh}\n"
        "expires_at = 1893456000\n\n"
    )
    _write_file(hf_home / "token", active.encode(), mode=0o600)
    _write_file(hf_home / "stored_tokens", stored.encode(), mode=0o600)

    pool = hf_home / "sandbox" / "pools" / "default"
    pool_state = {"host": "https://sandbox.example.invalid", "nonce": nonce}
    _write_file(pool / "state.json", json.dumps(pool_state).encode(), mode=0o600)
    for folder in (pool, pool.parent, hf_home / "sandbox", hf_home):
        folder.chmod(0o700)

    secrets = (active, bot, refresh, nonce)
    return TokenFiles(
        hf_home,
        hf_home / "token",
        hf_home / "stored_tokens",
        hf_home / "sandbox",
        secrets,
    )


# --------------------------------------------------------------------------------------
# Comparing caches


class TreeEntry(NamedTuple):
    """One entry of a cache as `snapshot_tree` sees it; unused fields are None."""

    kind: Literal["dir", "file", "link"]
    link_target: bytes | None = None
    sha256: str | None = None
    size: int | None = None
    mode: int | None = None
    mtime_ns: int | None = None


_SKIPPED_AT_ROOT = (".locks", "CACHEDIR.TAG")


def _dates_content(parts: tuple[str, ...]) -> bool:
    """Whether scan dates come from this file: repo blobs, regular files in snapshots
    (layout without symlinks) and shared-store payloads."""
    if parts[0] == "blobs":
        return len(parts) == 3 and "." not in parts[2]
    return len(parts) >= 3 and parts[1] in ("blobs", "snapshots")


def _describe(path: Path, parts: tuple[str, ...]) -> TreeEntry:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return TreeEntry("link", link_target=os.readlink(os.fsencode(path)))
    if stat.S_ISDIR(info.st_mode):
        return TreeEntry("dir")
    mtime = info.st_mtime_ns if _dates_content(parts) else None
    return TreeEntry(
        "file",
        sha256=sha256_hex(path.read_bytes()),
        size=info.st_size,
        mode=stat.S_IMODE(info.st_mode),
        mtime_ns=mtime,
    )


def snapshot_tree(cache_dir: Path) -> dict[str, TreeEntry]:
    """Describe every entry of a Hub cache, by posix path relative to it.

    Links are described by their target bytes (never followed), files by content
    hash, size and mode, plus the modification time of the files scans date repos by.
    `.locks/`, `CACHEDIR.TAG` and `*.incomplete` files are skipped: the client
    recreates or discards them.
    """
    entries: dict[str, TreeEntry] = {}
    for root, folders, files in os.walk(cache_dir):
        relative_root = Path(root).relative_to(cache_dir).parts
        if not relative_root:
            folders[:] = [name for name in folders if name not in _SKIPPED_AT_ROOT]
            files = [name for name in files if name not in _SKIPPED_AT_ROOT]
        for name in folders + files:
            if name.endswith(".incomplete"):
                continue
            parts = (*relative_root, name)
            entries["/".join(parts)] = _describe(Path(root, name), parts)
    return entries
