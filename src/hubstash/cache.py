"""Reading a Hugging Face Hub cache: repos, revisions, the files of each snapshot.

The cache layout is described in the README ("The cache, as hubstash reads it").
Reading never follows a link out of the cache folder, so nothing beside the cache
(tokens in ``HF_HOME``, ``sandbox/``) can be taken for cache content.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hubstash.errors import NotFound
from hubstash.findings import Finding, Severity
from hubstash.hashing import is_blob_name, is_sha256_name
from hubstash.repos import RepoId, RepoSpec, is_commit

logger = logging.getLogger(__name__)

# The client writes a ref to "<name>.<8 hex>.tmp" and renames it; a leftover of
# that is not a ref. Any other name, ".old" and ".tmp" endings included, is one.
_REF_TEMP = re.compile(r"\.[0-9a-f]{8}\.tmp$|^\.hubstash-(\d+-)?[0-9a-f]{8}\.tmp$")
_INCOMPLETE = re.compile(r"^(?P<blob>[^.]+)\.[0-9a-f]+\.incomplete$")
# What hubstash itself writes before renaming (cachewrite): never a repo file.
_OWN_TEMP = re.compile(r"^\.hubstash-\d+-[0-9a-f]{8}\.tmp$")


@dataclass(frozen=True)
class CachedFile:
    """One file of a snapshot.

    Attributes:
        path: the file's path in the repo, with ``/`` separators.
        blob: the blob name the cache uses (the Hub ETag), or None when the
            snapshot holds a plain file and nothing names it yet.
        source: the regular file holding the content, links resolved.
        size: the content's size in bytes.
        mtime_ns: the content file's modification time.
    """

    path: str
    blob: str | None
    source: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class CachedRevision:
    """What the cache holds for one commit."""

    commit: str
    files: tuple[CachedFile, ...] = ()
    no_exist: tuple[str, ...] = ()
    tree_file: Path | None = None
    has_snapshot: bool = False


@dataclass(frozen=True)
class CachedRepo:
    """One repo folder of the cache."""

    repo: RepoId
    path: Path
    refs: Mapping[str, str] = field(default_factory=dict)
    revisions: Mapping[str, CachedRevision] = field(default_factory=dict)

    def blob_path(self, name: str) -> Path:
        return self.path / "blobs" / name

    def tree_names(self, commit: str) -> Mapping[str, str]:
        """Blob names by path from ``trees/<commit>.json``, empty when unusable."""
        revision = self.revisions.get(commit)
        if revision is None or revision.tree_file is None:
            return {}
        return _names_from_tree(revision.tree_file)


@dataclass(frozen=True)
class CacheScan:
    """The repos selected from a cache and the problems met while reading them."""

    root: Path
    repos: tuple[CachedRepo, ...]
    findings: tuple[Finding, ...]


def scan_cache(root: Path, specs: tuple[RepoSpec, ...] = ()) -> CacheScan:
    """Read the repos of a cache, all of them or those the specs name.

    Raises:
        NotFound: the cache folder, a named repo or a named revision is missing.
    """
    if not root.is_dir():
        raise NotFound(f"no Hugging Face cache at {root}", hint="pass --cache-dir")
    findings: list[Finding] = []
    repos = [
        _select(read_repo(folder, findings), spec, findings)
        for folder, spec in _repo_folders(root, specs)
    ]
    return CacheScan(root, tuple(repos), tuple(findings))


def read_repo(path: Path, findings: list[Finding]) -> CachedRepo:
    """Read one repo folder; problems are appended to ``findings``."""
    repo = RepoId.from_folder(path.name)
    assert repo is not None, path
    root = path.parent
    refs = dict(_read_refs(path, str(repo), findings))
    commits = _commits(path)
    revisions = {
        c: _read_revision(path, root, c, str(repo), findings) for c in sorted(commits)
    }
    cached = CachedRepo(repo, path, refs, revisions)
    _report_partial_downloads(cached, findings)
    return cached


def _repo_folders(
    root: Path, specs: tuple[RepoSpec, ...]
) -> Iterator[tuple[Path, RepoSpec | None]]:
    if specs:
        for spec in specs:
            folder = root / spec.repo.folder
            if not folder.is_dir():
                raise NotFound(f"{spec.repo} is not in the cache at {root}")
            yield folder, spec
        return
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.is_symlink() and RepoId.from_folder(entry.name):
            yield entry, None


def _select(
    repo: CachedRepo, spec: RepoSpec | None, findings: list[Finding]
) -> CachedRepo:
    """Keep the revisions worth carrying, and those the spec names."""
    revisions = {
        c: r for c, r in repo.revisions.items() if _is_carried(repo, r, findings)
    }
    refs = {n: c for n, c in repo.refs.items() if _ref_is_usable(repo, n, c, findings)}
    if spec is not None and spec.revision is not None:
        commit = _resolve(repo, spec.revision)
        revisions = {commit: revisions[commit]} if commit in revisions else {}
        refs = {n: c for n, c in refs.items() if n == spec.revision}
        if not revisions:
            raise NotFound(f"{spec}: the cache holds no files of that revision")
    return CachedRepo(repo.repo, repo.path, refs, revisions)


def _resolve(repo: CachedRepo, revision: str) -> str:
    if is_commit(revision):
        return revision
    if revision in repo.refs:
        return repo.refs[revision]
    known = ", ".join(sorted(repo.refs)) or "none"
    raise NotFound(f"{repo.repo}@{revision}: no such ref in the cache (refs: {known})")


def _is_carried(repo: CachedRepo, rev: CachedRevision, findings: list[Finding]) -> bool:
    # The client writes the ref and the snapshot folder before it downloads, so an
    # empty snapshot is a download in progress (or a crashed one), not content.
    if rev.has_snapshot and not rev.files and rev.tree_file is None:
        findings.append(
            Finding(
                "empty-snapshot",
                str(repo.repo),
                f"snapshots/{rev.commit}",
                f"snapshot {rev.commit[:12]} is empty (a download in progress?);"
                " skipped",
            )
        )
        return False
    return True


def _ref_is_usable(
    repo: CachedRepo, name: str, commit: str, findings: list[Finding]
) -> bool:
    revision = repo.revisions.get(commit)
    if revision is not None and revision.files:
        return True
    findings.append(
        Finding(
            "ref-without-snapshot",
            str(repo.repo),
            f"refs/{name}",
            f"ref {name} names commit {commit[:12]}, which has no files in the cache",
            Severity.INCOMPLETE,
        )
    )
    return False


def _read_refs(
    path: Path, repo: str, findings: list[Finding]
) -> Iterator[tuple[str, str]]:
    refs_dir = path / "refs"
    for file in _walk_files(refs_dir):
        name = file.relative_to(refs_dir).as_posix()
        if _REF_TEMP.search(file.name):
            continue
        raw = file.read_bytes()
        commit = raw.decode("ascii", "replace")
        if is_commit(commit):
            yield name, commit
        elif is_commit(commit.strip()):
            findings.append(
                _bad_ref(repo, name, raw, "has whitespace around the commit")
            )
            yield name, commit.strip()
        else:
            findings.append(_bad_ref(repo, name, raw, "does not hold a commit hash"))


def _bad_ref(repo: str, name: str, raw: bytes, why: str) -> Finding:
    return Finding(
        "bad-ref",
        repo,
        f"refs/{name}",
        f"ref {name} {why} (the Hub client reads it as is and fails offline)",
        Severity.INTEGRITY,
        expected="40 hex characters, no newline",
        actual=repr(raw[:60]),
    )


def _commits(path: Path) -> set[str]:
    commits: set[str] = set()
    for sub in ("snapshots", ".no_exist"):
        folder = path / sub
        if folder.is_dir():
            commits.update(e.name for e in folder.iterdir() if is_commit(e.name))
    trees = path / "trees"
    if trees.is_dir():
        commits.update(e.stem for e in trees.glob("*.json") if is_commit(e.stem))
    return commits


def _read_revision(
    path: Path, root: Path, commit: str, repo: str, findings: list[Finding]
) -> CachedRevision:
    snapshot = path / "snapshots" / commit
    files = tuple(_read_snapshot(path, root, snapshot, repo, findings))
    no_exist_dir = path / ".no_exist" / commit
    no_exist = tuple(
        sorted(
            f.relative_to(no_exist_dir).as_posix() for f in _walk_files(no_exist_dir)
        )
    )
    tree = path / "trees" / f"{commit}.json"
    tree_file = tree if tree.is_file() and not tree.is_symlink() else None
    return CachedRevision(commit, files, no_exist, tree_file, snapshot.is_dir())


def _read_snapshot(
    repo_dir: Path, root: Path, snapshot: Path, repo: str, findings: list[Finding]
) -> Iterator[CachedFile]:
    for entry in _walk_files(snapshot):
        if _OWN_TEMP.match(entry.name):
            continue  # a link a killed pull left; the next pull removes it
        rel = entry.relative_to(snapshot).as_posix()
        cached = _read_entry(repo_dir, root, entry, rel, repo, findings)
        if cached is not None:
            yield cached


def _read_entry(
    repo_dir: Path,
    root: Path,
    entry: Path,
    rel: str,
    repo: str,
    findings: list[Finding],
) -> CachedFile | None:
    content = Path(os.path.realpath(entry))
    blob = None
    if entry.is_symlink():
        blob = _blob_named_by_link(repo_dir, entry)
        if blob is not None and not content.is_file():
            content = Path(os.path.realpath(repo_dir / "blobs" / blob))
        if blob is None or not content.is_file():
            findings.append(_dangling(repo, entry, rel))
            return None
    # A folder of the snapshot may itself be a link: check where content really is.
    if not content.is_relative_to(os.path.realpath(root)):
        findings.append(_outside(repo, entry, rel, content))
        return None
    return _file(rel, blob, content)


def _blob_named_by_link(repo_dir: Path, link: Path) -> str | None:
    """The blob a snapshot link means, whatever form its target was written in.

    Relative (``../../blobs/E``), absolute, and even targets written relative to
    some working directory (``tmp/cache/R/blobs/E``) all mean blob E when their last
    two parts are ``blobs/E`` and the repo has that blob.
    """
    target = os.readlink(link)
    parts = target.replace("\\", "/").split("/")
    if len(parts) < 2 or parts[-2] != "blobs" or not is_blob_name(parts[-1]):
        return None
    if not os.path.lexists(repo_dir / "blobs" / parts[-1]):
        return None
    return parts[-1]


def _file(rel: str, blob: str | None, content: Path) -> CachedFile:
    stat = content.stat()
    return CachedFile(rel, blob, content, stat.st_size, stat.st_mtime_ns)


def _dangling(repo: str, entry: Path, rel: str) -> Finding:
    return Finding(
        "dangling-link",
        repo,
        rel,
        f"{rel} links to {os.readlink(entry)!r}, which is not a blob of this repo;"
        " skipped",
        Severity.INCOMPLETE,
    )


def _outside(repo: str, entry: Path, rel: str, content: Path) -> Finding:
    return Finding(
        "link-outside-cache",
        repo,
        rel,
        f"{rel} resolves to {content}, outside the cache folder; not read",
        Severity.INCOMPLETE,
    )


def _report_partial_downloads(repo: CachedRepo, findings: list[Finding]) -> None:
    blobs = repo.path / "blobs"
    if not blobs.is_dir():
        return
    listed = _paths_by_blob(repo)
    for entry in sorted(blobs.iterdir()):
        match = _INCOMPLETE.match(entry.name)
        if match:
            blob = match["blob"]
            paths = ", ".join(listed.get(blob, [])) or f"blob {blob[:12]}"
            findings.append(
                Finding(
                    "partial-download",
                    str(repo.repo),
                    f"blobs/{entry.name}",
                    f"{paths} was never fully downloaded ({entry.name}); not carried",
                )
            )


def _paths_by_blob(repo: CachedRepo) -> dict[str, list[str]]:
    """Which files of the tree listings use each blob name."""
    paths: dict[str, list[str]] = {}
    for commit in repo.revisions:
        for path, name in repo.tree_names(commit).items():
            paths.setdefault(name, []).append(path)
    return paths


def _walk_files(folder: Path) -> Iterator[Path]:
    """Files and links below a folder, sorted, without following links to folders.

    Anything else (a FIFO, a socket, a device) is skipped: reading it could block
    forever, and the client never writes one.
    """
    if not folder.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        here = Path(dirpath)
        # os.walk lists links to folders among dirnames; they are entries too.
        links = [d for d in dirnames if (here / d).is_symlink()]
        for name in sorted(filenames + links):
            mode = (here / name).lstat().st_mode
            if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                yield here / name
            else:
                logger.warning("skipping %s: not a file", here / name)


def _names_from_tree(tree_file: Path) -> dict[str, str]:
    try:
        listing = json.loads(tree_file.read_bytes())
        entries = listing["files"]
    except (OSError, ValueError, KeyError, TypeError):
        logger.warning("%s is not a readable tree listing; ignored", tree_file)
        return {}
    names: dict[str, str] = {}
    for path, info in entries.items() if isinstance(entries, dict) else ():
        name = (
            info.get("lfs_sha256") or info.get("blob_id")
            if isinstance(info, dict)
            else None
        )
        if isinstance(name, str) and (is_blob_name(name) or is_sha256_name(name)):
            names[path] = name
    return names
