"""Build a synthetic Hugging Face Hub cache with the real on-disk layout.

The layout follows the reference notes (hf-cache-and-protocol.md §3): one folder per
repo, ``blobs/<etag>`` named by the SHA-256 of the content for LFS files and by the git
blob SHA-1 for small files, relative snapshot links with one extra ``../`` per folder
level, refs of exactly 40 bytes, ``trees/<commit>.json`` in mode 0600, ``.locks`` and
``CACHEDIR.TAG``. Contents come from a seeded PRNG, so two builds are identical.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

KiB = 1024
MiB = 1024 * KiB
CHUNK = 8 * MiB

# 2024-01-01T00:00:00Z: a restore that keeps modification times is easy to tell apart
# from one that stamps the time of the download.
BASE_MTIME_NS = 1_704_067_200 * 10**9

CACHEDIR_TAG = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file is a cache directory tag created by huggingface_hub.\n"
    b"# For information about cache directory tags, see:\n"
    b"#\thttps://bford.info/cachedir/\n"
)

LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n"


@dataclass(frozen=True)
class Scale:
    """How big the synthetic cache is."""

    name: str
    shard_sizes: tuple[int, ...]  # LFS weights shared by both model revisions
    old_only_size: int  # LFS file present only in the older model revision
    dataset_sizes: tuple[int, ...]  # LFS data files of the dataset repo
    model_small: int  # nested small git files in each model revision
    dataset_small: int  # nested small git files in the dataset
    small_bytes: tuple[int, int]  # smallest and largest small file
    changed_small: int  # nested small files that differ between the revisions


SCALES: dict[str, Scale] = {
    "small": Scale(
        name="small",
        shard_sizes=(1 * MiB, 1 * MiB),
        old_only_size=512 * KiB,
        dataset_sizes=(256 * KiB, 256 * KiB),
        model_small=30,
        dataset_small=20,
        small_bytes=(1 * KiB, 16 * KiB),
        changed_small=4,
    ),
    "full": Scale(
        name="full",
        shard_sizes=(300 * MiB, 300 * MiB),
        old_only_size=150 * MiB,
        dataset_sizes=(8 * MiB, 8 * MiB, 8 * MiB, 8 * MiB),
        model_small=240,
        dataset_small=150,
        small_bytes=(1 * KiB, 64 * KiB),
        changed_small=12,
    ),
}

MODEL_FILES = (
    ".gitattributes",
    "README.md",
    "config.json",
    "generation_config.json",
    "model.safetensors.index.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
)


@dataclass(frozen=True)
class FileSpec:
    """One file of one commit; equal seeds mean equal content, hence one blob."""

    path: str
    size: int
    seed: int
    lfs: bool


@dataclass(frozen=True)
class CommitSpec:
    sha: str
    files: tuple[FileSpec, ...]


@dataclass(frozen=True)
class RepoSpec:
    folder: str
    commits: tuple[CommitSpec, ...]
    refs: tuple[tuple[str, str], ...]  # (revision name, commit sha)


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def build_cache(root: Path, scale: Scale) -> tuple[RepoSpec, ...]:
    """Write a complete synthetic cache into ``root`` (created if missing).

    Returns:
        The plan that was written: repos, commits, files and refs.
    """
    plan = plan_cache(scale)
    root.mkdir(parents=True, exist_ok=True)
    (root / "CACHEDIR.TAG").write_bytes(CACHEDIR_TAG)
    for repo in plan:
        _build_repo(root, repo)

    _age_regular_files(root)
    return plan


def plan_cache(scale: Scale) -> tuple[RepoSpec, ...]:
    """Describe the repos to build, without touching the disk."""
    seeds = itertools.count(1)
    sizes = random.Random(f"sizes-{scale.name}")
    return (_plan_model(scale, seeds, sizes), _plan_dataset(scale, seeds, sizes))


def _plan_model(scale: Scale, seeds: Iterator[int], sizes: random.Random) -> RepoSpec:
    folder = "models--bench-org--synthetic-7b"
    lo, hi = scale.small_bytes
    named = [
        FileSpec(p, sizes.randint(lo, hi), next(seeds), False) for p in MODEL_FILES
    ]
    nested = [
        FileSpec(_nested_model_path(i), sizes.randint(lo, hi), next(seeds), False)
        for i in range(scale.model_small)
    ]
    count = len(scale.shard_sizes)
    shards = [
        FileSpec(f"model-{i:05d}-of-{count:05d}.safetensors", size, next(seeds), True)
        for i, size in enumerate(scale.shard_sizes, start=1)
    ]
    onnx = FileSpec("onnx/model.onnx", scale.old_only_size, next(seeds), True)
    old = CommitSpec(_commit_sha(folder, "v1.0"), (*named, *nested, *shards, onnx))

    # The newer commit edits config.json, README.md and some nested files.
    edited = {"config.json", "README.md"}
    edited.update(f.path for f in nested[: scale.changed_small])
    new_files = [_edit(f, next(seeds)) if f.path in edited else f for f in named]
    new_files += [_edit(f, next(seeds)) if f.path in edited else f for f in nested]
    new = CommitSpec(_commit_sha(folder, "main"), (*new_files, *shards))

    refs = (("main", new.sha), ("v1.0", old.sha), ("refs/pr/1", old.sha))
    return RepoSpec(folder, (old, new), refs)


def _plan_dataset(scale: Scale, seeds: Iterator[int], sizes: random.Random) -> RepoSpec:
    folder = "datasets--bench-org--synthetic-corpus"
    lo, hi = scale.small_bytes
    named = [
        FileSpec(p, sizes.randint(lo, hi), next(seeds), False)
        for p in (".gitattributes", "README.md")
    ]
    count = len(scale.dataset_sizes)
    shards = [
        FileSpec(f"data/train-{i:05d}-of-{count:05d}.parquet", size, next(seeds), True)
        for i, size in enumerate(scale.dataset_sizes)
    ]
    rows = [
        FileSpec(
            f"metadata/shard-{i % 12:02d}/rows-{i:05d}.jsonl",
            sizes.randint(lo, hi),
            next(seeds),
            False,
        )
        for i in range(scale.dataset_small)
    ]
    commit = CommitSpec(_commit_sha(folder, "main"), (*named, *shards, *rows))
    return RepoSpec(folder, (commit,), (("main", commit.sha),))


def _nested_model_path(i: int) -> str:
    """Spread small files over one, two and three folder levels."""
    depth = i % 3
    if depth == 0:
        return f"extra/file-{i:04d}.json"
    if depth == 1:
        return f"extra/group-{i % 10}/file-{i:04d}.json"
    return f"extra/group-{i % 10}/part-{i % 4}/file-{i:04d}.json"


def _edit(spec: FileSpec, seed: int) -> FileSpec:
    return FileSpec(spec.path, spec.size, seed, spec.lfs)


def _commit_sha(folder: str, label: str) -> str:
    return hashlib.sha1(f"{folder}@{label}".encode()).hexdigest()


def _build_repo(root: Path, repo: RepoSpec) -> None:
    repo_dir = root / repo.folder
    blobs = repo_dir / "blobs"
    blobs.mkdir(parents=True)
    etags: dict[int, str] = {}
    for commit in repo.commits:
        for spec in commit.files:
            if spec.seed not in etags:
                etags[spec.seed] = _write_blob(blobs, spec)
            _link_snapshot(repo_dir, commit.sha, spec.path, etags[spec.seed])
        _write_tree_listing(repo_dir, commit, etags)

    _write_refs(repo_dir, repo.refs)
    _write_locks(root / ".locks" / repo.folder, etags.values())


def _write_blob(blobs: Path, spec: FileSpec) -> str:
    """Stream the content to a temporary name, then rename it to its etag."""
    digest: _Hasher = hashlib.sha256() if spec.lfs else _git_blob_sha1(spec.size)
    incoming = blobs / f".incoming-{spec.seed}"
    with incoming.open("wb") as out:
        for chunk in _content(spec.seed, spec.size):
            digest.update(chunk)
            out.write(chunk)

    etag = digest.hexdigest()
    incoming.rename(blobs / etag)
    return etag


def _content(seed: int, size: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    for start in range(0, size, CHUNK):
        yield rng.randbytes(min(CHUNK, size - start))


def _git_blob_sha1(size: int) -> _Hasher:
    digest = hashlib.sha1()
    digest.update(b"blob %d\0" % size)
    return digest


def _link_snapshot(repo_dir: Path, commit: str, path: str, etag: str) -> None:
    link = repo_dir / "snapshots" / commit / path
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(repo_dir / "blobs" / etag, link.parent), link)


def _write_tree_listing(
    repo_dir: Path, commit: CommitSpec, etags: dict[int, str]
) -> None:
    files = {spec.path: _tree_item(spec, etags[spec.seed]) for spec in commit.files}
    listing = json.dumps({"format_version": 1, "files": files}).encode()
    trees = repo_dir / "trees"
    trees.mkdir(exist_ok=True)
    path = trees / f"{commit.sha}.json"
    path.write_bytes(listing)
    path.chmod(0o600)


def _tree_item(spec: FileSpec, etag: str) -> dict[str, object]:
    if not spec.lfs:
        return {"size": spec.size, "blob_id": etag}
    pointer = LFS_POINTER.format(etag, spec.size).encode()
    pointer_oid = _git_blob_sha1(len(pointer))
    pointer_oid.update(pointer)
    return {
        "size": spec.size,
        "blob_id": pointer_oid.hexdigest(),
        "lfs_sha256": etag,
        "lfs_size": spec.size,
    }


def _write_refs(repo_dir: Path, refs: tuple[tuple[str, str], ...]) -> None:
    for name, sha in refs:
        path = repo_dir / "refs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sha.encode("ascii"))


def _write_locks(locks: Path, etags: Iterable[str]) -> None:
    locks.mkdir(parents=True, exist_ok=True)
    for etag in etags:
        path = locks / f"{etag}.lock"
        path.touch()
        path.chmod(0o664)


def _age_regular_files(root: Path) -> None:
    """Give every regular file its own past modification time, one second apart."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    for i, path in enumerate(files):
        stamp = BASE_MTIME_NS + i * 10**9 + 250_000_000
        os.utime(path, ns=(stamp, stamp))
