"""The content of a cache as manifests: every file hashed and checked against its name.

Push and lock both need this: which files each revision holds, under which blob
name, with which SHA-256, leaving out (and reporting) content that does not match
its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hubstash.cache import CachedFile, CachedRepo, CacheScan
from hubstash.errors import AccessDenied, HubstashError
from hubstash.findings import Finding, Severity, severity_of
from hubstash.hashing import Digests, hash_file, is_sha256_name, name_matches
from hubstash.manifest import FileEntry, Manifest, TreeListing
from hubstash.patterns import EVERYTHING, FileFilter
from hubstash.progress import SILENT, Progress
from hubstash.repos import RepoId
from hubstash.transfer import DEFAULT_JOBS, run_all


@dataclass(frozen=True)
class CacheContent:
    """What ``read_content`` found.

    Attributes:
        manifests: one per revision with files, ``.no_exist`` markers or a listing.
        sources: for each SHA-256, a local file holding that content.
        findings: content refused (corrupt, unreadable) and why.
    """

    manifests: tuple[Manifest, ...]
    sources: Mapping[str, Path]
    findings: tuple[Finding, ...]

    @property
    def file_sizes(self) -> dict[str, int]:
        """SHA-256 to size of every distinct file content (tree listings aside)."""
        return {f.sha256: f.size for m in self.manifests for f in m.files}

    @property
    def listing_sizes(self) -> dict[str, int]:
        return {m.tree.sha256: m.tree.size for m in self.manifests if m.tree}


def read_content(
    scan: CacheScan,
    selection: FileFilter = EVERYTHING,
    *,
    per_repo: Mapping[RepoId, FileFilter] | None = None,
    trusted: Mapping[str, int] | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
) -> CacheContent:
    """Hash the selected files of a scanned cache and build their manifests.

    Args:
        scan: the repos and revisions to read.
        selection: which snapshot paths to take.
        per_repo: further selections for some repos.
        trusted: SHA-256 to size of contents known good elsewhere (the store holds
            them): a 64-hex blob of that name and size is not read again.
        jobs: concurrent hashes.
        progress: receives progress.
    """
    findings: list[Finding] = []
    uses = _collect(scan, selection, per_repo or {})
    digests = _hash_contents(uses, scan, dict(trusted or {}), jobs, progress, findings)
    entries = _entries(uses, digests, findings)
    trees = _trees(scan, digests)
    sources = {d.sha256: source for source, d in digests.items()}
    manifests = tuple(_manifests(scan, entries, trees))
    return CacheContent(manifests, sources, tuple(findings))


@dataclass(frozen=True)
class _Use:
    """One snapshot file of one revision, as found in the cache."""

    repo: CachedRepo
    commit: str
    file: CachedFile


def _collect(
    scan: CacheScan, selection: FileFilter, per_repo: Mapping[RepoId, FileFilter]
) -> list[_Use]:
    return [
        _Use(repo, commit, file)
        for repo in scan.repos
        for commit, revision in repo.revisions.items()
        for file in revision.files
        if selection.accepts(file.path)
        and per_repo.get(repo.repo, EVERYTHING).accepts(file.path)
    ]


def _hash_contents(
    uses: list[_Use],
    scan: CacheScan,
    stored: dict[str, int],
    jobs: int,
    progress: Progress,
    findings: list[Finding],
) -> dict[Path, Digests]:
    """Digests of every distinct content file: snapshot blobs and tree listings.

    A 64-hex blob the store already holds at the same size is not read: its name is
    its SHA-256, and it will not be uploaded.
    """
    names = {u.file.source: u.file.blob for u in uses}
    for repo in scan.repos:
        for revision in repo.revisions.values():
            if revision.tree_file is not None:
                names[revision.tree_file] = None
    sizes = {u.file.source: u.file.size for u in uses}
    known = {
        source: Digests(sizes[source], name)
        for source, name in names.items()
        if name is not None
        and is_sha256_name(name)
        and stored.get(name) == sizes[source]
    }
    todo = [source for source in names if source not in known]

    progress.start("hashing", len(todo), sum(sizes.get(s, 0) for s in todo))

    def work(source: Path) -> Digests:
        name = names[source]
        try:
            digests = hash_file(
                source, git_sha1=name is None or not is_sha256_name(name)
            )
        except PermissionError as exc:
            raise AccessDenied(f"cannot read {source}: {exc.strerror}") from exc
        except OSError as exc:
            raise HubstashError(f"cannot read {source}: {exc.strerror}") from exc
        progress.advance(digests.size)
        progress.file_done()
        return digests

    for source, result in run_all(todo, work, jobs):
        if isinstance(result, HubstashError):
            findings.append(
                Finding(
                    "unreadable",
                    "",
                    str(source),
                    str(result),
                    severity_of(result.exit_code),
                )
            )
        else:
            known[source] = result
    progress.finish()
    return known


def _entries(
    uses: list[_Use], digests: dict[Path, Digests], findings: list[Finding]
) -> dict[tuple[RepoId, str], list[FileEntry]]:
    """Manifest entries of every revision, leaving out content that fails its name."""
    entries: dict[tuple[RepoId, str], list[FileEntry]] = {}
    for use in uses:
        found = digests.get(use.file.source)
        if found is None:
            continue
        name = _blob_name(use, found)
        if name is None or not name_matches(name, found):
            findings.append(_corrupt(use, name, found))
            continue
        entry = FileEntry(
            use.file.path, name, found.size, found.sha256, use.file.mtime_ns
        )
        entries.setdefault((use.repo.repo, use.commit), []).append(entry)
    return entries


def _blob_name(use: _Use, digests: Digests) -> str | None:
    """The blob name a file has, or should have when the snapshot holds a plain file.

    A plain file (the no-symlink layout) takes its name from the revision's tree
    listing; else from a blob of the repo with the same content (layout with both);
    else its SHA-256.
    """
    if use.file.blob is not None:
        return use.file.blob
    listed = use.repo.tree_names(use.commit).get(use.file.path)
    if listed is not None:
        return listed
    for candidate in (digests.sha256, digests.git_sha1):
        if candidate and use.repo.blob_path(candidate).is_file():
            return candidate
    return digests.sha256


def _corrupt(use: _Use, name: str | None, digests: Digests) -> Finding:
    actual = (
        digests.sha256 if name is None or is_sha256_name(name) else digests.git_sha1
    )
    return Finding(
        "corrupt-blob",
        str(use.repo.repo),
        use.file.path,
        f"{use.file.path} (blob {name}) does not match its name: content hashes to"
        f" {actual}; not pushed",
        Severity.INTEGRITY,
        expected=name or "",
        actual=actual or "",
    )


def _trees(
    scan: CacheScan, digests: dict[Path, Digests]
) -> dict[tuple[RepoId, str], TreeListing]:
    trees: dict[tuple[RepoId, str], TreeListing] = {}
    for repo in scan.repos:
        for commit, revision in repo.revisions.items():
            found = digests.get(revision.tree_file) if revision.tree_file else None
            if found is not None:
                trees[(repo.repo, commit)] = TreeListing(found.sha256, found.size)
    return trees


def _manifests(
    scan: CacheScan,
    entries: dict[tuple[RepoId, str], list[FileEntry]],
    trees: dict[tuple[RepoId, str], TreeListing],
) -> list[Manifest]:
    manifests: dict[tuple[RepoId, str], Manifest] = {}
    for repo in scan.repos:
        for commit, revision in repo.revisions.items():
            key = (repo.repo, commit)
            files = tuple(sorted(entries.get(key, ())))
            tree = trees.get(key)
            if files or revision.no_exist or tree:
                manifests[key] = Manifest(
                    repo.repo, commit, files, revision.no_exist, tree
                )
    return list(manifests.values())
