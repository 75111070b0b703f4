"""How results look: one-line summaries for people, JSON for machines, progress bars."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from hubstash.findings import Finding
from hubstash.inventory import StoredRepo
from hubstash.progress import Progress
from hubstash.pull import PullResult
from hubstash.push import PushResult
from hubstash.verify import VerifyResult


def size(n: int) -> str:
    """Bytes in binary units, e.g. ``1.5 GiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def to_json(result: object) -> str:
    """A result as JSON, with its exit code."""
    document = _plain(result)
    if hasattr(result, "exit_code") and isinstance(document, dict):
        document["exit_code"] = int(result.exit_code)
    return json.dumps(document, indent=2, sort_keys=True)


def push_summary(result: PushResult) -> str:
    what = (
        f"{plural(result.repos, 'repo')}, {plural(result.revisions, 'revision')},"
        f" {plural(result.files, 'file')}"
    )
    took = f"[{result.seconds:.1f} s]"
    if result.changed_nothing and not result.dry_run:
        stored = size(result.present_bytes)
        return f"nothing to upload: the store already has {what} ({stored}) {took}"
    verb, moved = (
        ("would push", "would upload") if result.dry_run else ("pushed", "uploaded")
    )
    repaired = (
        f" (replacing {plural(result.repaired_files, 'damaged blob')})"
        if result.repaired_files
        else ""
    )
    return (
        f"{verb} {what}: {moved} {plural(result.uploaded_files, 'blob')}{repaired}"
        f" ({size(result.uploaded_bytes)}), {result.present_files} already stored"
        f" ({size(result.present_bytes)}),"
        f" {plural(result.manifests_written, 'manifest')},"
        f" {plural(result.refs_written, 'ref')} {took}"
    )


def pull_summary(result: PullResult) -> str:
    verb, moved = (
        ("would restore", "would download")
        if result.dry_run
        else (
            "restored",
            "downloaded",
        )
    )
    copies = " as copies" if result.copy_mode else ""
    repos, revisions = (
        plural(result.repos, "repo"),
        plural(result.revisions, "revision"),
    )
    return (
        f"{verb} {repos}, {revisions}, {plural(result.files, 'file')}{copies}:"
        f" {moved} {plural(result.downloaded_files, 'blob')}"
        f" ({size(result.downloaded_bytes)}), {result.present_files} already present"
        f" ({size(result.present_bytes)}), {plural(result.refs_written, 'ref')}"
        f" [{result.seconds:.1f} s]"
    )


def verify_summary(result: VerifyResult) -> str:
    state = "OK" if not result.findings else plural(len(result.findings), "problem")
    against = f", compared with {result.store}" if result.store else ""
    if result.store_blobs_hashed:
        against += (
            f", hashed {plural(result.store_blobs_hashed, 'store blob')}"
            f" ({size(result.store_bytes_hashed)})"
        )
    return (
        f"{state}: checked {plural(result.repos, 'repo')},"
        f" {plural(result.revisions, 'revision')}, {plural(result.files, 'file')},"
        f" hashed {plural(result.blobs_hashed, 'blob')} ({size(result.bytes_hashed)})"
        f"{against} [{result.seconds:.1f} s]"
    )


def inventory_lines(repos: tuple[StoredRepo, ...]) -> list[str]:
    lines: list[str] = []
    for repo in repos:
        lines.append(
            f"{repo.repo}  {plural(len(repo.revisions), 'revision')}  {size(repo.size)}"
        )
        for rev in repo.revisions:
            refs = ", ".join(rev.refs) or "-"
            files = plural(rev.files, "file")
            lines.append(f"  {rev.commit[:12]}  {refs}  {files}  {size(rev.size)}")
    return lines


def finding_line(finding: Finding) -> str:
    return f"hubstash: {finding.kind}: {finding}"


class BarProgress(Progress):
    """Progress bars on a terminal (tqdm on stderr), one per phase."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._bar: Any = None

    def start(self, phase: str, files: int, nbytes: int) -> None:
        from tqdm import tqdm

        with self._lock:
            self._close()
            if files:
                self._bar = tqdm(
                    total=nbytes,
                    desc=f"{phase} {files} files",
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    file=self._stream,
                    leave=False,
                )

    def advance(self, nbytes: int) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.update(nbytes)

    def finish(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _plain(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "type") and hasattr(value, "id") and hasattr(value, "folder"):
        return str(value)
    return value
