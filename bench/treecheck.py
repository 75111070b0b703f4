"""Describe a folder tree exactly, measure it like ``du``, and compare two trees.

A tree is read without following links: each symlink is recorded with the target bytes
``readlink`` returns, and with the digest of what it resolves to, so a restore that
turned links into copies is told apart from one that lost content.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

READ_SIZE = 1024 * 1024

# Lock files are empty, never read back and safe to drop (reference §3.8), so a backup
# tool that skips them is not penalised.
IGNORED_PREFIXES = (".locks/",)

# Timestamps within this distance count as kept: S3 keeps whole seconds only.
MTIME_SLACK_NS = 10**9

Kind = Literal["dir", "file", "link"]


@dataclass(frozen=True)
class Entry:
    """One path of a tree, as read with ``lstat`` and ``readlink``."""

    kind: Kind
    size: int  # size of the content, links resolved; 0 for folders and dangling links
    digest: str  # SHA-256 of the content, links resolved; "" when there is none
    target: str  # symlink target exactly as read by readlink, else ""
    mode: int  # permission bits of the entry itself
    mtime_ns: int


Tree = dict[str, Entry]


@dataclass(frozen=True)
class TreeStats:
    """Sizes of a tree, the way a backup tool sees it."""

    files: int  # regular files, each inode once
    unique_bytes: int  # apparent size of the distinct contents
    links: int
    followed_bytes: int  # what a client that follows links reads
    disk_bytes: int  # like ``du``: allocated blocks, each inode once


@dataclass(frozen=True)
class RestoreCheck:
    """How a restored tree differs from the source tree (``.locks`` ignored)."""

    compared: int  # source paths other than folders
    missing: int
    extra: int
    wrong_content: int
    links_total: int
    links_kept: int  # a symlink again, with the same target bytes
    links_as_copies: int  # a regular file with the right content
    files_total: int  # regular files of the source
    modes_kept: int
    mtimes_kept: int
    disk_bytes: int
    exact: bool  # same paths, same kinds, same link targets, same contents
    verdict: str
    examples: tuple[str, ...]  # a few missing, wrong and extra paths


class ContentHasher:
    """SHA-256 of files, each inode hashed once while it stays unchanged."""

    def __init__(self) -> None:
        self._known: dict[tuple[int, int, int, int, int], str] = {}

    def digest(self, path: Path, st: os.stat_result) -> str:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key not in self._known:
            self._known[key] = _sha256_file(path)
        return self._known[key]


def snapshot_tree(root: Path, hasher: ContentHasher | None = None) -> Tree:
    """Record every path under ``root`` without following links."""
    hasher = hasher or ContentHasher()
    return {rel: _entry(path, hasher) for rel, path in _walk(root, "")}


def tree_stats(root: Path, tree: Tree) -> TreeStats:
    """Count files, links and bytes of a tree taken by :func:`snapshot_tree`."""
    files = {(e.digest, e.size) for e in tree.values() if e.kind == "file" and e.digest}
    return TreeStats(
        files=sum(1 for e in tree.values() if e.kind == "file"),
        unique_bytes=sum(size for _, size in files),
        links=sum(1 for e in tree.values() if e.kind == "link"),
        followed_bytes=sum(e.size for e in tree.values() if e.kind != "dir"),
        disk_bytes=disk_usage(root),
    )


def disk_usage(root: Path) -> int:
    """Bytes allocated under ``root``, like ``du -s -B1``: each inode counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in (root, *(p for _, p in _walk(root, ""))):
        st = path.lstat()
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def compare_trees(source: Tree, restored: Tree, disk_bytes: int) -> RestoreCheck:
    """Compare a restored tree with its source, path by path."""
    wanted = _without_ignored(source)
    got = _without_ignored(restored)
    compared = [rel for rel, e in wanted.items() if e.kind != "dir"]
    found = [rel for rel in compared if rel in got]
    links = [rel for rel in compared if wanted[rel].kind == "link"]
    files = [rel for rel in found if wanted[rel].kind == got[rel].kind == "file"]

    missing = [rel for rel in compared if rel not in got]
    wrong = [rel for rel in found if got[rel].digest != wanted[rel].digest]
    extra = [rel for rel, r in got.items() if r.kind != "dir" and rel not in wanted]
    retyped = [rel for rel in found if wanted[rel].kind == "file" != got[rel].kind]
    kept = [rel for rel in links if _same_link(wanted[rel], got.get(rel))]
    copies = [rel for rel in links if _copy_of(wanted[rel], got.get(rel))]
    mtimes = [rel for rel in files if not _same_time(wanted[rel], got[rel])]
    modes = [rel for rel in files if wanted[rel].mode != got[rel].mode]
    exact = not (missing or wrong or extra or retyped) and len(kept) == len(links)
    return RestoreCheck(
        compared=len(compared),
        missing=len(missing),
        extra=len(extra),
        wrong_content=len(wrong),
        links_total=len(links),
        links_kept=len(kept),
        links_as_copies=len(copies),
        files_total=sum(1 for rel in compared if wanted[rel].kind == "file"),
        modes_kept=len(files) - len(modes),
        mtimes_kept=len(files) - len(mtimes),
        disk_bytes=disk_bytes,
        exact=exact,
        verdict=_verdict(
            exact, missing, wrong, extra, retyped, (len(kept), len(copies), len(links))
        ),
        examples=_examples(
            missing=missing,
            wrong=wrong,
            extra=extra,
            retyped=retyped,
            mtime=mtimes,
            mode=modes,
        ),
    )


def _same_link(source: Entry, restored: Entry | None) -> bool:
    return (
        restored is not None
        and restored.kind == "link" == source.kind
        and (restored.target == source.target)
    )


def _copy_of(source: Entry, restored: Entry | None) -> bool:
    return (
        restored is not None
        and restored.kind == "file"
        and (restored.digest == source.digest)
    )


def _examples(**problems: list[str]) -> tuple[str, ...]:
    """A few paths of each kind of difference, to show where to look."""
    return tuple(
        f"{label}: {rel}" for label, rels in problems.items() for rel in rels[:3]
    )


def _verdict(
    exact: bool,
    missing: list[str],
    wrong: list[str],
    extra: list[str],
    retyped: list[str],
    links: tuple[int, int, int],
) -> str:
    """One phrase for the table; ``links`` is (kept, became copies, total)."""
    if exact:
        return "exact tree"
    # A path inside a repo folder is one a load may need; CACHEDIR.TAG is not.
    lost = [rel for rel in missing if "--" in rel.split("/", 1)[0]]
    if lost or wrong:
        return f"BROKEN: {len(lost)} missing, {len(wrong)} wrong"

    parts = [_links_phrase(*links)]
    if missing:
        parts.append(f"{len(missing)} missing outside repos")
    if retyped:
        parts.append(f"{len(retyped)} files became links")
    if extra:
        parts.append(f"{len(extra)} extra")
    return ", ".join(parts)


def _links_phrase(kept: int, copies: int, total: int) -> str:
    if kept == total:
        return "links kept"
    if copies == total:
        return "links became copies"
    return f"{kept}/{total} links kept"


def _same_time(source: Entry, restored: Entry) -> bool:
    return abs(source.mtime_ns - restored.mtime_ns) < MTIME_SLACK_NS


def _without_ignored(tree: Tree) -> Tree:
    return {
        rel: e
        for rel, e in tree.items()
        if not any(f"{rel}/".startswith(prefix) for prefix in IGNORED_PREFIXES)
    }


def _walk(folder: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    """Yield (relative path, path) below ``folder`` by name, links not followed."""
    with os.scandir(folder) as listing:
        children = sorted(listing, key=lambda item: item.name)
    for child in children:
        rel = f"{prefix}{child.name}"
        yield rel, Path(child.path)
        if child.is_dir(follow_symlinks=False):
            yield from _walk(Path(child.path), f"{rel}/")


def _entry(path: Path, hasher: ContentHasher) -> Entry:
    st = path.lstat()
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        return Entry("dir", 0, "", "", mode, st.st_mtime_ns)
    if not stat.S_ISLNK(st.st_mode):
        return Entry(
            "file", st.st_size, hasher.digest(path, st), "", mode, st.st_mtime_ns
        )

    target = os.readlink(path)
    try:
        resolved = path.stat()
    except OSError:
        return Entry("link", 0, "", target, mode, st.st_mtime_ns)
    if not stat.S_ISREG(resolved.st_mode):
        return Entry("link", 0, "", target, mode, st.st_mtime_ns)
    digest = hasher.digest(path, resolved)
    return Entry("link", resolved.st_size, digest, target, mode, st.st_mtime_ns)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(READ_SIZE):
            digest.update(block)
    return digest.hexdigest()
