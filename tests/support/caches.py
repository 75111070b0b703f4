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


_SPACE_FILES = [HubFile("app.py", b"print('hello')\n"), HubFile("README.md", b"# space\n")]
_NAMESPACELESS_FILES = [HubFile("config.json", b"{}\n")]
_KERNEL_FILES = [
    HubFile("README.md", b"# tiny-kernel\n"),
    HubFile("build/torch-universal/tiny_kernel/__init__.py", b"def add(a, b):\n    return a + b\n"),
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
        _Planned(SnapshotDownload(model, revision="refs/pr/1", allow_patterns=("*.json",))),
        _Planned(FileDownload(model, "config.json", revision="feature/x")),
        _Planned(FileDownload(model, "README.md", revision="v1.0")),
        _Planned(FileDownload(model, MISSING_FILE), error="RemoteEntryNotFoundError"),
        _Planned(SnapshotDownload(dataset, repo_type="dataset")),
        _Planned(FileDownload(SPACE_ID, "app.py", repo_type="space")),
        _Planned(FileDownload(NAMESPACELESS_ID, "config.json")),
    ]


def _publish(hub: FakeHub) -> dict[str, str]:
    """Add every repo to the hub; return the commits by short name."""
    main = hub.add_commit("model", MODEL_ID, _model_files(), ["main", "v1.0", "feature/x"])
    pr = hub.add_commit("model", MODEL_ID, [_PR_CONFIG], ["refs/pr/1"], "main")
    return {
        "main": main,
        "pr": pr,
        "dataset": hub.add_commit("dataset", DATASET_ID, _dataset_files()),
        "space": hub.add_commit("space", SPACE_ID, _SPACE_FILES),
        "namespaceless": hub.add_commit("model", NAMESPACELESS_ID, _NAMESPACELESS_FILES),
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
        _one_file_repo(hub, "model", NAMESPACELESS_ID, commits["namespaceless"], "config.json"),
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
