"""Import: adopt a copy of a Hugging Face cache made by a generic sync tool.

``aws s3 sync ~/.cache/huggingface s3://bucket/cache/`` follows links: its copy holds
every snapshot file in full, the blobs again, and whatever lay beside the cache
(lock files, partial downloads, hf_xet's caches, tokens). The repo folders of such a
copy are a Hub cache in the client's no-symlink layout, which push reads as it is:
import points push at them, after downloading an S3 copy to a temporary folder,
and reports what it left behind. Push hashes every file and checks it against its
blob name, so nothing downloaded is trusted unverified. Tokens are never read into
the store, and never printed.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from hubstash.errors import (
    ExitCode,
    HubstashError,
    IntegrityError,
    LocalFilesystemError,
    NotFound,
    UnsafeStoreContent,
    UsageError,
)
from hubstash.findings import Finding, Severity, exit_code_for
from hubstash.leaks import ROTATE_HINT, SMALL_OBJECT, Leak, find_leaks
from hubstash.manifest import check_repo_path
from hubstash.output import size
from hubstash.progress import SILENT, Progress
from hubstash.push import PushResult, push
from hubstash.repos import RepoId
from hubstash.restore import DISK_MARGIN
from hubstash.stores import S3Options, Store, StoreObject, open_store
from hubstash.synccopy import Kind, classify, hub_prefix, is_blob_copy, secret_reason
from hubstash.transfer import DEFAULT_JOBS, cancellable, run_all

# Blobs named by their SHA-256 are left in an S3 source: the snapshot copies
# carry the same bytes (see ``synccopy.is_blob_copy``).
BLOB_COPY = "blob copy"


@dataclass(frozen=True)
class LeftBehind:
    """Files of the source that were not imported, of one kind.

    Attributes:
        kind: ``lock``, ``partial``, ``secret``, ``other`` or ``blob copy``.
        files: how many.
        bytes: their bytes.
    """

    kind: str
    files: int
    bytes: int


@dataclass(frozen=True)
class ImportResult:
    """What an import did.

    Attributes:
        source: the folder or S3 URL imported.
        store: the store's URL.
        source_files: files (or objects) the source holds.
        source_bytes: their bytes.
        downloaded_files: objects downloaded from an S3 source (0 for a folder).
        downloaded_bytes: their bytes.
        stored_bytes: bytes of the distinct contents the store holds for what was
            imported (uploaded now or already there).
        left_behind: what was not imported, by kind.
        pushed: the push of the repo content; its ``cache_dir`` is the folder
            read (for an S3 source, a temporary copy since removed).
        findings: the push's findings, and every secret found in the source.
        seconds: wall time.
    """

    source: str
    store: str
    source_files: int
    source_bytes: int
    downloaded_files: int
    downloaded_bytes: int
    stored_bytes: int
    left_behind: tuple[LeftBehind, ...]
    pushed: PushResult
    findings: tuple[Finding, ...]
    seconds: float

    @property
    def exit_code(self) -> ExitCode:
        return exit_code_for(self.findings)


def import_copy(
    store: Store,
    source: str | os.PathLike[str],
    *,
    options: S3Options | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
) -> ImportResult:
    """Adopt a copy of ``~/.cache/huggingface`` or of its ``hub/`` folder.

    The repo content is pushed as a push of the original cache would push it: each
    distinct content once, checked against its blob name, manifests and refs
    rebuilt. Lock files, partial downloads, hf_xet's caches and anything else
    outside the repo folders are left behind; token files are reported by path,
    never read into the store, never printed.

    Args:
        store: where to import into.
        source: ``s3://bucket/prefix/`` or a folder.
        options: how to reach an S3 source (the store's options, usually).
        work_dir: where an S3 source is downloaded first; a temporary folder in it
            is removed afterwards, whatever happens.
        jobs: concurrent transfers and hashes.
        progress: receives progress.

    Raises:
        NotFound: the source holds no repo content.
        UsageError: the source and the store overlap.
        LocalFilesystemError: an S3 source does not fit in ``work_dir``.
        HubstashError: the source or the store cannot be read or written.
    """
    started = time.monotonic()
    text = os.fspath(source)
    if text.startswith("s3://"):
        source_store = open_store(text, options)
        try:
            result = _import_s3(store, source_store, work_dir, jobs, progress)
        finally:
            source_store.close()
    else:
        result = _import_folder(store, Path(text).expanduser(), jobs, progress)
    return replace(result, seconds=time.monotonic() - started)


@dataclass(frozen=True)
class _Copy:
    """A source listed: its objects, where its Hub cache is, what each object is."""

    url: str
    objects: tuple[StoreObject, ...]
    hub: str

    @classmethod
    def of(cls, url: str, objects: Iterable[StoreObject]) -> _Copy:
        listed = tuple(objects)
        return cls(url, listed, hub_prefix(o.key for o in listed))

    def kind(self, obj: StoreObject) -> Kind:
        return classify(obj.key, self.hub)

    def repo_content(self) -> list[StoreObject]:
        """The objects of repo folders worth importing.

        Raises:
            NotFound: there are none: this is no copy of a Hub cache.
        """
        found = [o for o in self.objects if self.kind(o) is Kind.CONTENT]
        if not found:
            raise NotFound(
                f"{self.url} holds no Hugging Face cache content",
                hint="give a copy of ~/.cache/huggingface or of its hub/ folder",
            )
        return found


def _import_folder(
    store: Store, folder: Path, jobs: int, progress: Progress
) -> ImportResult:
    if not folder.is_dir():
        raise NotFound(f"no folder at {folder}")
    _refuse_overlap(str(folder), store)
    copy = _Copy.of(str(folder), _files_below(folder))
    content = copy.repo_content()

    def read(key: str) -> bytes:
        return _read_start(folder / key)

    leaks = find_leaks(copy.objects, read, secret_name=secret_reason, jobs=jobs)
    pushed = push(store, folder / copy.hub, jobs=jobs, progress=progress)
    return _result(copy, store, pushed, leaks.leaks, {o.key for o in content}, ())


def _import_s3(
    store: Store,
    source: Store,
    work_dir: str | os.PathLike[str] | None,
    jobs: int,
    progress: Progress,
) -> ImportResult:
    _refuse_overlap(source.url, store)
    copy = _Copy.of(source.url, source.listing(""))
    wanted = [o for o in copy.repo_content() if not is_blob_copy(o.key, copy.hub)]
    parent = Path(work_dir) if work_dir is not None else Path(tempfile.gettempdir())
    _check_space(parent, source.url, wanted)

    with tempfile.TemporaryDirectory(prefix="hubstash-import-", dir=parent) as temp:
        root = Path(temp)
        _download_all(source, wanted, root, jobs, progress)
        local = {o.key for o in wanted}

        def read(key: str) -> bytes:
            return _read_start(root / key) if key in local else source.read(key)

        leaks = find_leaks(copy.objects, read, secret_name=secret_reason, jobs=jobs)
        pushed = push(store, root / copy.hub, jobs=jobs, progress=progress)
    return _result(copy, store, pushed, leaks.leaks, local, wanted)


def _files_below(folder: Path) -> Iterator[StoreObject]:
    """Every regular file below ``folder``, by posix path; links are not followed."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                yield StoreObject(path.relative_to(folder).as_posix(), info.st_size)


def _read_start(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(SMALL_OBJECT)
    except OSError as exc:
        raise LocalFilesystemError(f"cannot read {path}: {exc.strerror}") from exc


def _refuse_overlap(source: str, store: Store) -> None:
    """Refuse a store inside the source, or the other way round."""
    a, b = _comparable(source), _comparable(store.url)
    if a.startswith(b) or b.startswith(a):
        raise UsageError(
            f"the store {store.url} and the source {source} overlap",
            hint="import into another prefix or folder",
        )


def _comparable(url: str) -> str:
    if "://" in url:
        return url.rstrip("/") + "/"
    return str(Path(url).expanduser().resolve()) + os.sep


def _check_space(parent: Path, url: str, wanted: Sequence[StoreObject]) -> None:
    """Refuse to start a download that cannot fit in ``parent``."""
    if not parent.is_dir():
        raise UsageError(f"work folder {parent} does not exist")
    needed = sum(o.size for o in wanted)
    free = free_bytes(parent)
    if needed + DISK_MARGIN > free:
        raise LocalFilesystemError(
            f"not enough space in {parent} to download {url}: it needs"
            f" {size(needed)} and {size(free)} is free",
            hint="pass --work-dir on a disk with more room",
        )


def free_bytes(folder: Path) -> int:
    """Bytes free on the disk that holds ``folder``."""
    return shutil.disk_usage(folder).free


def _download_all(
    source: Store,
    objects: Sequence[StoreObject],
    root: Path,
    jobs: int,
    progress: Progress,
) -> None:
    """Download every object below ``root``; the first failure stops the import.

    A revision imported without one of its files would look complete, so no
    failure is left for later.
    """
    progress.start("downloading", len(objects), sum(o.size for o in objects))
    cancel = threading.Event()
    advance = cancellable(progress.advance, cancel)

    def work(obj: StoreObject) -> None:
        _download(source, obj, root, advance)
        progress.file_done()

    for _, result in run_all(objects, work, jobs, cancel=cancel):
        if isinstance(result, HubstashError):
            raise result
    progress.finish()


def _download(
    source: Store, obj: StoreObject, root: Path, advance: Callable[[int], None]
) -> None:
    why = check_repo_path(obj.key)
    if why is not None:
        raise UnsafeStoreContent(f"refusing source key {obj.key!r}: {why}")
    path = root / obj.key
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            source.download(obj.key, _FileSink(f), obj.size, advance)
            f.flush()
            written = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise LocalFilesystemError(f"cannot write {path}: {exc.strerror}") from exc
    if written != obj.size:
        raise IntegrityError(
            f"{source.url}{obj.key} gave {written} bytes, the listing said {obj.size}",
            path=obj.key,
        )


class _FileSink:
    """A download written straight to a file: push hashes it afterwards."""

    def __init__(self, f: BinaryIO) -> None:
        self.file = f

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def write_at(self, offset: int, data: bytes) -> None:
        os.pwrite(self.file.fileno(), data, offset)


def _result(
    copy: _Copy,
    store: Store,
    pushed: PushResult,
    leaks: Sequence[Leak],
    taken: Collection[str],
    downloaded: Sequence[StoreObject],
) -> ImportResult:
    return ImportResult(
        source=copy.url,
        store=store.url,
        source_files=len(copy.objects),
        source_bytes=sum(o.size for o in copy.objects),
        downloaded_files=len(downloaded),
        downloaded_bytes=sum(o.size for o in downloaded),
        stored_bytes=pushed.uploaded_bytes + pushed.present_bytes,
        left_behind=_left_behind(copy, taken),
        pushed=pushed,
        findings=pushed.findings + tuple(_leak_finding(copy, leak) for leak in leaks),
        seconds=0.0,
    )


def _left_behind(copy: _Copy, taken: Collection[str]) -> tuple[LeftBehind, ...]:
    tally: dict[str, list[int]] = {}
    for obj in copy.objects:
        if obj.key in taken:
            continue
        kind = copy.kind(obj)
        name = BLOB_COPY if kind is Kind.CONTENT else kind.value
        counts = tally.setdefault(name, [0, 0])
        counts[0] += 1
        counts[1] += obj.size
    return tuple(LeftBehind(k, n, b) for k, (n, b) in sorted(tally.items()))


def _leak_finding(copy: _Copy, leak: Leak) -> Finding:
    """A secret found in the source: left behind, unless it is a repo's own file."""
    where = f"{copy.url.rstrip('/')}/{leak.key}"
    if classify(leak.key, copy.hub) is Kind.CONTENT:
        folder = leak.key[len(copy.hub) :].split("/")[0]
        return Finding(
            "token-in-repo",
            str(RepoId.from_folder(folder)),
            leak.key,
            f"{where} {leak.reason}; it is a file of a repo and was imported as such:"
            " if it is a secret, remove it from the repo and the store",
            Severity.FAILURE,
        )
    return Finding(
        "leaked-token",
        "",
        leak.key,
        f"{where} {leak.reason}: not imported; {ROTATE_HINT}",
    )
