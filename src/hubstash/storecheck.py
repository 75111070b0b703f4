"""Checking what a store holds, byte by byte: ``verify --deep`` and ``push --repair``.

A pull refuses any blob whose bytes do not match its key, but it meets such a blob
only when it needs it. This module reads objects back and hashes them: every blob
(streamed, one chunk in memory per transfer), every manifest piece against the
SHA-256 in its name, and checks that every blob a manifest names is stored. Nothing
is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from hubstash import layout
from hubstash.errors import HubstashError, UnsafeStoreContent
from hubstash.findings import Finding, Severity, severity_of
from hubstash.hashing import Digests, StreamHasher
from hubstash.manifest import Manifest
from hubstash.progress import SILENT, Progress
from hubstash.repos import RepoId
from hubstash.stores import Store
from hubstash.storeview import StoreView
from hubstash.transfer import DEFAULT_JOBS, run_all

DAMAGED = "damaged-in-store"


@dataclass(frozen=True)
class StoreCheck:
    """What a deep check of a store read and found.

    Attributes:
        blobs_hashed: store blobs read back and hashed.
        bytes_hashed: their bytes.
        findings: each damaged, missing or unreadable object, named by its key.
    """

    blobs_hashed: int
    bytes_hashed: int
    findings: tuple[Finding, ...]


def check_store(
    view: StoreView,
    revisions: Iterable[tuple[RepoId, str]] | None = None,
    *,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
) -> StoreCheck:
    """Re-hash what a store holds for some revisions, or for everything.

    Every manifest piece of those revisions is hashed against its name and
    validated; every blob they name must be stored, and is hashed against its key.
    With ``revisions`` None, every blob of the store is hashed, named or not.
    """
    wanted = _all_revisions(view) if revisions is None else list(revisions)
    findings: list[Finding] = []
    manifests = _read_pieces(view, wanted, findings)
    listed = view.blob_sizes()
    named = _named_blobs(manifests)
    findings += _missing_blobs(named, listed)
    expected = {sha: size for sha, size in named.items() if sha in listed}
    if revisions is None:
        expected = {**listed, **expected}
    checked = check_blobs(view.store, expected, jobs=jobs, progress=progress)
    return StoreCheck(
        checked.blobs_hashed, checked.bytes_hashed, tuple(findings) + checked.findings
    )


def check_blobs(
    store: Store,
    blobs: Mapping[str, int],
    *,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
) -> StoreCheck:
    """Read back and hash store blobs: SHA-256 to the size they should have."""
    todo = sorted(blobs.items())
    progress.start("checking the store", len(todo), sum(s for _, s in todo))

    def work(item: tuple[str, int]) -> Digests:
        digests = _hash_object(store, layout.blob_key(item[0]), item[1], progress)
        progress.file_done()
        return digests

    findings: list[Finding] = []
    hashed = 0
    for (sha256, size), result in run_all(todo, work, jobs):
        if isinstance(result, HubstashError):
            findings.append(_unreadable(layout.blob_key(sha256), result))
            continue
        hashed += result.size
        if result.sha256 != sha256 or result.size != size:
            findings.append(_damaged(sha256, size, result))
    progress.finish()
    return StoreCheck(len(todo), hashed, tuple(findings))


def _all_revisions(view: StoreView) -> list[tuple[RepoId, str]]:
    return [
        (repo, commit)
        for repo, entry in sorted(view.index().items())
        for commit in sorted(entry.pieces)
    ]


def _read_pieces(
    view: StoreView, revisions: list[tuple[RepoId, str]], findings: list[Finding]
) -> list[Manifest]:
    """The readable manifests of these revisions.

    A piece that fails its name or its validation is a finding, and a revision
    that cannot be read is left out.
    """
    manifests: list[Manifest] = []
    for repo, commit in revisions:
        keys = view.repo(repo).pieces.get(commit, [])
        bad = [f for f in (_check_piece(view.store, key) for key in keys) if f]
        try:
            manifests.append(view.manifest(repo, commit))
        except UnsafeStoreContent as exc:
            bad.append(_unreadable(exc.path or f"{repo}@{commit}", exc))
        findings += [replace(f, repo=str(repo)) for f in bad]
    return manifests


def _check_piece(store: Store, key: str) -> Finding | None:
    expected = key.rsplit("/", 1)[-1].removesuffix(".json")
    try:
        actual = hashlib.sha256(store.read(key)).hexdigest()
    except HubstashError as exc:
        return _unreadable(key, exc)
    if actual == expected:
        return None
    return Finding(
        DAMAGED,
        "",
        key,
        f"store object {key} is damaged: its bytes hash to {actual}",
        Severity.INTEGRITY,
        expected=expected,
        actual=actual,
    )


def _named_blobs(manifests: Iterable[Manifest]) -> dict[str, int]:
    named: dict[str, int] = {}
    for manifest in manifests:
        for entry in manifest.files:
            named[entry.sha256] = entry.size
        if manifest.tree is not None:
            named[manifest.tree.sha256] = manifest.tree.size
    return named


def _missing_blobs(
    named: Mapping[str, int], listed: Mapping[str, int]
) -> list[Finding]:
    return [
        Finding(
            "missing-from-store",
            "",
            layout.blob_key(sha256),
            f"store object {layout.blob_key(sha256)} is named by a manifest but"
            " missing",
            Severity.INCOMPLETE,
            expected=sha256,
        )
        for sha256 in sorted(named)
        if sha256 not in listed
    ]


def _hash_object(store: Store, key: str, size: int, progress: Progress) -> Digests:
    hasher = StreamHasher(size, git_sha1=False)
    for chunk in store.read_stream(key):
        hasher.update(chunk)
        progress.advance(len(chunk))
    return hasher.digests()


def _damaged(sha256: str, size: int, digests: Digests) -> Finding:
    key = layout.blob_key(sha256)
    return Finding(
        DAMAGED,
        "",
        key,
        f"store object {key} is damaged: {digests.size} bytes hashing to"
        f" {digests.sha256}, expected {size} bytes hashing to {sha256}",
        Severity.INTEGRITY,
        expected=sha256,
        actual=digests.sha256,
    )


def _unreadable(key: str, error: HubstashError) -> Finding:
    return Finding(
        "unreadable-in-store",
        "",
        key,
        f"store object {key} cannot be read: {error}",
        severity_of(error.exit_code),
    )
