"""``hubstash.lock``: the known-good set, pinned to commits and content hashes.

The lock is TOML, written deterministically (sorted, one value per line) so that it
diffs well in review::

    version = 1

    [[repo]]
    type = "model"
    id = "acme/tiny"
    revision = "main"
    commit = "<40 hex>"
    include = ["*.json"]
    exclude = []

    [[repo.file]]
    path = "config.json"
    blob = "<cache blob name>"
    size = 41
    sha256 = "<64 hex>"

A pull with a lock needs nothing else from the store than the blobs the lock names,
and accepts a blob only when its SHA-256 is the one the lock pins.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubstash.errors import UsageError
from hubstash.manifest import FileEntry, Manifest, TreeListing, parse_manifest
from hubstash.patterns import FileFilter
from hubstash.repos import RepoId, check_ref_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

VERSION = 1
HEADER = "# Written by `hubstash lock`. Commit it; do not edit it by hand.\n"


@dataclass(frozen=True)
class LockedRepo:
    """One repo of the lock: the revision asked for, the commit and files it gave."""

    repo: RepoId
    revision: str
    commit: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    files: tuple[FileEntry, ...]
    tree: TreeListing | None = None

    @property
    def selection(self) -> FileFilter:
        return FileFilter.of(self.include, self.exclude)

    def key(self) -> tuple[str, str, str]:
        return (self.repo.type, self.repo.id, self.revision)

    def manifest(self) -> Manifest:
        return Manifest(self.repo, self.commit, self.files, (), self.tree)


@dataclass(frozen=True)
class Lock:
    """Every locked repo, sorted."""

    repos: tuple[LockedRepo, ...]


def render(lock: Lock) -> str:
    """The lock as text: the same lock always gives the same bytes."""
    lines = [HEADER, f"version = {VERSION}\n"]
    for locked in sorted(lock.repos, key=LockedRepo.key):
        lines.append(_render_repo(locked))
    return "".join(lines)


def write_lock(lock: Lock, path: Path) -> bool:
    """Write the lock atomically; False when the file already said the same."""
    text = render(lock)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    temp.replace(path)
    return True


def read_lock(path: Path) -> Lock:
    """Read and validate a lock file.

    Raises:
        UsageError: the file is missing, not TOML, of a newer version, or invalid.
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"no lock file at {path}", hint="run hubstash lock") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path} is not a readable lock file: {exc}") from exc
    except RecursionError as exc:
        raise UsageError(
            f"{path} is not a readable lock file: nested too deeply"
        ) from exc
    version = document.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise UsageError(
            f"{path} has lock version {version!r}; this hubstash reads {VERSION}",
            hint="upgrade hubstash",
        )
    repos = document.get("repo", [])
    if not isinstance(repos, list):
        raise UsageError(f"{path}: repo must be an array of tables")
    return Lock(tuple(_read_repo(raw, path) for raw in repos))


def _render_repo(locked: LockedRepo) -> str:
    out = [
        "\n[[repo]]\n",
        f"type = {_s(locked.repo.type)}\n",
        f"id = {_s(locked.repo.id)}\n",
        f"revision = {_s(locked.revision)}\n",
        f"commit = {_s(locked.commit)}\n",
        f"include = {_list(locked.include)}\n",
        f"exclude = {_list(locked.exclude)}\n",
    ]
    if locked.tree is not None:
        tree = locked.tree
        out.append(f"tree = {{ sha256 = {_s(tree.sha256)}, size = {tree.size} }}\n")
    for entry in sorted(locked.files):
        out += [
            "\n[[repo.file]]\n",
            f"path = {_s(entry.path)}\n",
            f"blob = {_s(entry.blob)}\n",
            f"size = {entry.size}\n",
            f"sha256 = {_s(entry.sha256)}\n",
        ]
    return "".join(out)


def _s(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def _list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_s(v) for v in values) + "]"


def _read_repo(raw: Any, path: Path) -> LockedRepo:
    """Validate one [[repo]] by the rules manifests from a store obey."""
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: every repo must be a table")
    document = {
        "format": "hubstash-manifest",
        "version": 1,
        "repo": {"type": raw.get("type"), "id": raw.get("id")},
        "commit": raw.get("commit"),
        "files": raw.get("file", []),
        "tree": raw.get("tree"),
    }
    try:
        # A TOML date or time is no JSON value, and no valid value of any field.
        manifest = parse_manifest(json.dumps(document).encode(), source=str(path))
        revision = raw.get("revision")
        if not isinstance(revision, str):
            raise UsageError(f"{path}: a repo has no revision")
        check_ref_name(revision)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path} is not a valid lock: {exc}") from exc
    return LockedRepo(
        manifest.repo,
        revision,
        manifest.commit,
        _patterns(raw.get("include", []), path),
        _patterns(raw.get("exclude", []), path),
        manifest.files,
        manifest.tree,
    )


def _patterns(raw: Any, path: Path) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise UsageError(f"{path}: include and exclude must be lists of strings")
    return tuple(raw)
