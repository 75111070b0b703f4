"""Project configuration: `hubstash.toml`, or `[tool.hubstash]` in `pyproject.toml`.

A project names its store and the repos its tests need::

    [store]
    url = "s3://acme-ml/hf"
    region = "eu-west-1"            # any S3 option, spelled like its flag

    [[repo]]
    id = "sentence-transformers/all-MiniLM-L6-v2"
    revision = "main"               # branch, tag or commit; "main" by default
    include = ["*.json", "*.safetensors"]

Settings are resolved at call time with this precedence: command-line flag,
environment, this file, default.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubstash.errors import UsageError
from hubstash.patterns import FileFilter
from hubstash.repos import RepoSpec, check_ref_name, parse_repo_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

CONFIG_NAME = "hubstash.toml"
LOCK_NAME = "hubstash.lock"
_STORE_KEYS = {
    "url",
    "endpoint-url",
    "region",
    "profile",
    "no-sign-request",
    "addressing-style",
    "ca-bundle",
    "sse",
    "sse-kms-key-id",
}
_REPO_KEYS = {"id", "type", "revision", "include", "exclude"}


@dataclass(frozen=True)
class WantedRepo:
    """One repo a project needs: which revision, which files."""

    spec: RepoSpec
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def revision(self) -> str:
        return self.spec.revision or "main"

    @property
    def files(self) -> FileFilter:
        return FileFilter.of(self.include, self.exclude)

    def key(self) -> tuple[str, str, str]:
        return (self.spec.repo.type, self.spec.repo.id, self.revision)


@dataclass(frozen=True)
class Config:
    """A project's configuration, or an empty one when there is no file."""

    path: Path | None = None
    store: Mapping[str, Any] = field(default_factory=dict)
    repos: tuple[WantedRepo, ...] = ()

    @property
    def lock_path(self) -> Path:
        """``hubstash.lock`` beside the configuration (or in the working folder)."""
        folder = self.path.parent if self.path else Path.cwd()
        return folder / LOCK_NAME


def find_config(explicit: str | None = None, start: Path | None = None) -> Config:
    """Load the configuration: an explicit file, ``$HUBSTASH_CONFIG``, or the nearest
    ``hubstash.toml`` or ``pyproject.toml`` with ``[tool.hubstash]`` from ``start``
    (the working folder) upwards.

    Raises:
        UsageError: the file cannot be read or says something invalid.
    """
    named = explicit or os.environ.get("HUBSTASH_CONFIG")
    if named:
        return load_config(Path(named))
    folder = (start or Path.cwd()).absolute()
    for candidate in (folder, *folder.parents):
        if (candidate / CONFIG_NAME).is_file():
            return load_config(candidate / CONFIG_NAME)
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and "hubstash" in _read(pyproject).get("tool", {}):
            return load_config(pyproject)
    return Config()


def load_config(path: Path) -> Config:
    """Read one configuration file (``hubstash.toml`` or ``pyproject.toml``)."""
    document = _read(path)
    if path.name == "pyproject.toml":
        document = document.get("tool", {}).get("hubstash", {})
    store = _section(document.get("store", {}), _STORE_KEYS, path, "[store]")
    repos = tuple(_wanted(raw, path) for raw in _list(document.get("repo", []), path))
    _refuse_duplicates(repos, path)
    return Config(path, store, repos)


def wanted_from_spec(
    text: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()
) -> WantedRepo:
    spec = parse_repo_spec(text)
    return WantedRepo(RepoSpec(spec.repo, spec.revision or "main"), include, exclude)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from exc


def _wanted(raw: Any, path: Path) -> WantedRepo:
    entry = _section(raw, _REPO_KEYS, path, "[[repo]]")
    if not isinstance(entry.get("id"), str):
        raise UsageError(f'{path}: every [[repo]] needs an id = "org/name"')
    kind = entry.get("type", "model")
    prefix = "" if kind == "model" else f"{kind}s/"
    revision = entry.get("revision", "main")
    if not isinstance(revision, str):
        raise UsageError(f"{path}: revision of {entry['id']} must be a string")
    check_ref_name(revision)
    spec = parse_repo_spec(f"{prefix}{entry['id']}")
    return WantedRepo(
        RepoSpec(spec.repo, revision),
        _patterns(entry.get("include", []), path),
        _patterns(entry.get("exclude", []), path),
    )


def _section(raw: Any, allowed: set[str], path: Path, name: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: {name} must be a table")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise UsageError(
            f"{path}: unknown key {unknown[0]!r} in {name}",
            hint=f"known keys: {', '.join(sorted(allowed))}",
        )
    return dict(raw)


def _list(raw: Any, path: Path) -> list[Any]:
    if not isinstance(raw, list):
        raise UsageError(f"{path}: repo must be an array of tables ([[repo]])")
    return raw


def _patterns(raw: Any, path: Path) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise UsageError(f"{path}: include and exclude take a list of patterns")
    return tuple(raw)


def _refuse_duplicates(repos: tuple[WantedRepo, ...], path: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for repo in repos:
        if repo.key() in seen:
            raise UsageError(f"{path}: {repo.spec} is listed twice")
        seen.add(repo.key())
