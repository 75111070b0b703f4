"""How repos and revisions are named: on the Hub, in the cache, on the command line."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hubstash.errors import UsageError

REPO_TYPES = ("model", "dataset", "space", "kernel")

# The cache joins "<type>s" and the id's segments with "--", which the Hub forbids
# inside ids, so the folder name can always be split back.
SEPARATOR = "--"

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True, order=True)
class RepoId:
    """A Hub repository: its type and its id (``org/name`` or ``name``)."""

    type: str
    id: str

    def __post_init__(self) -> None:
        if self.type not in REPO_TYPES:
            raise UsageError(
                f"unknown repo type {self.type!r}; use one of {REPO_TYPES}"
            )
        _check_repo_id(self.id)

    @property
    def folder(self) -> str:
        """The repo's folder name in the cache, e.g. ``models--acme--tiny``."""
        return f"{self.type}s{SEPARATOR}" + self.id.replace("/", SEPARATOR)

    @classmethod
    def from_folder(cls, name: str) -> RepoId | None:
        """The repo a cache folder holds, or None when the name is not a repo folder."""
        kind, sep, rest = name.partition(SEPARATOR)
        if not sep or not kind.endswith("s") or kind[:-1] not in REPO_TYPES:
            return None
        try:
            return cls(kind[:-1], rest.replace(SEPARATOR, "/"))
        except UsageError:
            return None

    def __str__(self) -> str:
        """The name as the Hub and ``hf://`` URIs spell it (models unprefixed)."""
        if self.type == "model":
            return self.id
        return f"{self.type}s/{self.id}"


@dataclass(frozen=True)
class RepoSpec:
    """A repo named on the command line, optionally limited to one revision."""

    repo: RepoId
    revision: str | None = None

    def __str__(self) -> str:
        return f"{self.repo}@{self.revision}" if self.revision else str(self.repo)


def parse_repo_spec(text: str) -> RepoSpec:
    """Parse ``[datasets/|spaces/|kernels/|models/]org/name[@revision]``.

    Raises:
        UsageError: the name is not a valid Hub repo name.
    """
    name, _, revision = text.partition("@")
    if "@" in text and not revision:
        raise UsageError(f"{text!r}: nothing after '@'; name a branch, tag or commit")
    repo_type, repo_id = _split_type_prefix(name.strip().strip("/"))
    if revision:
        check_ref_name(revision)
    return RepoSpec(RepoId(repo_type, repo_id), revision or None)


def is_commit(revision: str) -> bool:
    """True when the revision is a full commit hash, as the Hub client decides it."""
    return _COMMIT.fullmatch(revision) is not None


def check_ref_name(name: str) -> None:
    """Refuse ref names that could escape the refs folder or confuse the client.

    Raises:
        UsageError: the name is empty, absolute, has ``..``/``.`` segments, a
            backslash or a control character.
    """
    segments = name.split("/")
    bad = (
        not name
        or any(s in ("", ".", "..") for s in segments)
        or "\\" in name
        or any(ord(c) < 32 for c in name)
        or len(name) > 255
    )
    if bad:
        raise UsageError(f"invalid revision name {name!r}")


def _split_type_prefix(name: str) -> tuple[str, str]:
    first, _, rest = name.partition("/")
    prefixes = {f"{t}s": t for t in REPO_TYPES}
    if first in prefixes and rest:
        return prefixes[first], rest
    return "model", name


def _check_repo_id(repo_id: str) -> None:
    segments = repo_id.split("/")
    valid = (
        1 <= len(segments) <= 2
        and all(_SEGMENT.fullmatch(s) for s in segments)
        and SEPARATOR not in repo_id
        and ".." not in repo_id
        and not any(s.endswith((".", "-")) for s in segments)
    )
    if not valid:
        raise UsageError(
            f"invalid repo id {repo_id!r}",
            hint="name it as the Hub does: org/name, or datasets/org/name",
        )
