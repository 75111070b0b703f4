"""A read-only Hugging Face Hub on 127.0.0.1 for the real `huggingface_hub` client.

It answers exactly the calls a download makes (reference §8.11): `HEAD`/`GET` on
`/resolve/`, the repo-info and tree APIs, and Hub error codes. Blob names in the client
cache come from the ETags served here, so they are the real ones: the git blob SHA-1
for regular files and the SHA-256 for LFS files, as on huggingface.co.

Paths are parsed from the raw request target, because a revision such as `refs/pr/1`
arrives as one percent-encoded segment (`refs%2Fpr%2F1`) that must not be split.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, cast
from urllib.parse import parse_qs, unquote

from tests.support.hashes import (
    git_blob_sha1,
    git_object_sha1,
    lfs_pointer,
    sha256_hex,
)

REPO_TYPES = ("model", "dataset", "space", "kernel")
LFS_SUFFIXES = (".safetensors", ".bin", ".onnx")
LFS_MIN_SIZE = 100 * 1024

# `/resolve/` URLs name the repo type by prefix; models have none.
_RESOLVE_PREFIXES = {"datasets": "dataset", "spaces": "space", "kernels": "kernel"}
_API_TYPES = {f"{repo_type}s": repo_type for repo_type in REPO_TYPES}
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_SEND_CHUNK = 1024 * 1024
_IDLE_TIMEOUT_S = 60
# How often the serving loop checks for stop(): the latency of every stop().
_SHUTDOWN_POLL_S = 0.02
_COMMIT_ROLES = ("author", "committer")

# (sort key, raw entry) of one line of a git tree object.
_TreeEntry = tuple[bytes, bytes]


@dataclass(frozen=True)
class HubFile:
    """One file of a commit: its path in the repo, its bytes, and whether git stores
    it through LFS (which changes the ETag the Hub serves and so the blob name)."""

    path: str
    content: bytes
    lfs: bool = False


class SeenRequest(NamedTuple):
    """A request the hub received: method and raw request target (no headers kept)."""

    method: str
    path: str


@dataclass(frozen=True)
class _ServedFile:
    """A file with the hashes the Hub advertises for it, computed once."""

    source: HubFile
    git_oid: str
    sha256: str | None
    pointer_size: int | None

    @classmethod
    def of(cls, hub_file: HubFile) -> _ServedFile:
        content = hub_file.content
        if not hub_file.lfs:
            return cls(hub_file, git_blob_sha1(content), None, None)
        digest = sha256_hex(content)
        pointer = lfs_pointer(digest, len(content))
        return cls(hub_file, git_blob_sha1(pointer), digest, len(pointer))


@dataclass(frozen=True)
class _Commit:
    sha: str
    files: Mapping[str, _ServedFile]
    tree_oids: Mapping[str, str]  # folder path ("" for the root) -> git tree id


@dataclass
class _Repo:
    commits: dict[str, _Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)


class _HubError(Exception):
    """An error answer: status, Hub error code and, for missing entries, the commit."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        commit: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.commit = commit
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Mapping[str, str]
    body: bytes | memoryview = b""


class _Catalog:
    """Repos, commits and refs, safe to read from handler threads while tests add."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._repos: dict[tuple[str, str], _Repo] = {}

    def has_repo(self, repo_type: str, repo_id: str) -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def resolve(self, repo_type: str, repo_id: str, revision: str) -> _Commit:
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                raise _HubError(404, "RepoNotFound", f"Repository {repo_id} not found")
            sha = repo.refs.get(revision, revision)
            commit = repo.commits.get(sha) if _COMMIT_RE.fullmatch(sha) else None
        if commit is None:
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    def add_commit(
        self,
        repo_type: str,
        repo_id: str,
        files: Sequence[HubFile],
        refs: Sequence[str],
        parent_revision: str | None,
    ) -> str:
        parent = None
        if parent_revision is not None:
            parent = self.resolve(repo_type, repo_id, parent_revision)
        commit = _make_commit(repo_type, repo_id, files, parent)
        with self._lock:
            repo = self._repos.setdefault((repo_type, repo_id), _Repo())
            repo.commits[commit.sha] = commit
            repo.refs.update(dict.fromkeys(refs, commit.sha))
        return commit.sha


def _make_commit(
    repo_type: str, repo_id: str, files: Sequence[HubFile], parent: _Commit | None
) -> _Commit:
    served = dict(parent.files) if parent is not None else {}
    served.update((f.path, _ServedFile.of(f)) for f in files)
    tree_oids = _git_tree_oids(served)

    # A git-shaped commit object makes the sha deterministic, and the repo name in the
    # message keeps identical trees in two repos from sharing a commit.
    lines = [f"tree {tree_oids['']}"]
    if parent is not None:
        lines.append(f"parent {parent.sha}")
    lines += [f"{role} fake-hub <hub@localhost> 0 +0000" for role in _COMMIT_ROLES]
    lines += ["", f"{repo_type}/{repo_id}"]
    sha = git_object_sha1("commit", ("\n".join(lines) + "\n").encode())
    return _Commit(sha, served, tree_oids)


def _folders_of(paths: Iterable[str]) -> set[str]:
    """Every folder that holds one of `paths`, with "" for the repo root."""
    folders = {""}
    for path in paths:
        parts = path.split("/")[:-1]
        folders.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return folders


def _parent_and_name(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    return parent, name


def _depth(folder: str) -> int:
    return folder.count("/") + 1 if folder else 0


def _tree_entry(mode: bytes, name: str, oid: str, sort_suffix: bytes) -> _TreeEntry:
    encoded = name.encode()
    # git orders a folder as if its name ended with "/".
    return encoded + sort_suffix, b"%s %s\0" % (mode, encoded) + bytes.fromhex(oid)


def _git_tree_oids(files: Mapping[str, _ServedFile]) -> dict[str, str]:
    """Return the git tree id of every folder, as git computes it."""
    folders = _folders_of(files)
    entries: dict[str, list[_TreeEntry]] = {folder: [] for folder in folders}
    for path, served in files.items():
        parent, name = _parent_and_name(path)
        entries[parent].append(_tree_entry(b"100644", name, served.git_oid, b""))

    # Deepest folders first, so a folder's id is known before its parent is hashed.
    oids: dict[str, str] = {}
    for folder in sorted(folders, key=_depth, reverse=True):
        raw = b"".join(entry for _, entry in sorted(entries[folder]))
        oids[folder] = git_object_sha1("tree", raw)
        if folder:
            parent, name = _parent_and_name(folder)
            entries[parent].append(_tree_entry(b"40000", name, oids[folder], b"/"))
    return oids


def _json_response(value: object) -> _Response:
    body = json.dumps(value).encode()
    return _Response(200, {"Content-Type": "application/json"}, body)


def _error_response(error: _HubError) -> _Response:
    headers = {"Content-Type": "application/json", **error.headers}
    if error.code is not None:
        headers["X-Error-Code"] = error.code
    if error.commit is not None:
        # With the commit, the client records the miss in `.no_exist/<commit>/`.
        headers["X-Repo-Commit"] = error.commit
    body = json.dumps({"error": error.message}).encode()
    return _Response(error.status, headers, body)


def _not_found(what: str) -> _HubError:
    return _HubError(404, None, f"Not found: {what}")


def _split_repo_id(
    catalog: _Catalog, repo_type: str, segments: list[str], keywords: Sequence[str]
) -> tuple[str, list[str]]:
    """Split `[ns, name, keyword, ...]` or `[name, keyword, ...]` into repo id and rest.

    Repo ids have one or two segments and arrive unencoded, so the keyword that
    follows them (`resolve`, `revision`, `tree`) tells where they end.
    """
    lengths = [n for n in (2, 1) if len(segments) > n and segments[n] in keywords]
    for length in lengths:
        repo_id = "/".join(segments[:length])
        if catalog.has_repo(repo_type, repo_id):
            return repo_id, segments[length:]
    if not lengths:
        raise _not_found("/".join(segments))
    raise _HubError(404, "RepoNotFound", "Repository not found")


def _answer(catalog: _Catalog, target: str, range_header: str | None) -> _Response:
    """Answer a GET or HEAD for a raw request target."""
    raw_path, _, query = target.partition("?")
    segments = raw_path.lstrip("/").split("/")
    try:
        if segments[0] == "api":
            return _answer_api(catalog, segments[1:], parse_qs(query))
        return _answer_resolve(catalog, segments, range_header)
    except _HubError as error:
        return _error_response(error)


def _answer_api(
    catalog: _Catalog, segments: list[str], query: Mapping[str, list[str]]
) -> _Response:
    repo_type = _API_TYPES.get(segments[0])
    if repo_type is None or len(segments) < 2:
        raise _not_found("/".join(segments))
    repo_id, rest = _split_repo_id(
        catalog, repo_type, segments[1:], ("revision", "tree")
    )
    if len(rest) < 2:
        raise _not_found("/".join(segments))
    commit = catalog.resolve(repo_type, repo_id, unquote(rest[1]))
    if rest[0] == "revision" and len(rest) == 2:
        return _repo_info(repo_id, commit)
    if rest[0] == "tree":
        # The client sends the folder as one "%2F"-encoded segment; accept "/" too.
        folder = unquote("/".join(rest[2:])).strip("/")
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        return _json_response(_tree_listing(commit, folder, recursive))
    raise _not_found("/".join(segments))


def _repo_info(repo_id: str, commit: _Commit) -> _Response:
    siblings = [{"rfilename": path} for path in sorted(commit.files)]
    info = {"id": repo_id, "sha": commit.sha, "private": False, "siblings": siblings}
    return _json_response(info)


def _tree_listing(
    commit: _Commit, folder: str, recursive: bool
) -> list[dict[str, object]]:
    if folder and folder not in commit.tree_oids:
        raise _HubError(404, "EntryNotFound", f"{folder} does not exist", commit.sha)
    prefix = f"{folder}/" if folder else ""

    def listed(path: str) -> bool:
        inside = path.startswith(prefix) and path != prefix
        return inside and (recursive or "/" not in path[len(prefix) :])

    folders = [
        {"type": "directory", "path": path, "oid": oid, "size": 0}
        for path, oid in sorted(commit.tree_oids.items())
        if path and listed(path)
    ]
    files = [_tree_file(f) for path, f in sorted(commit.files.items()) if listed(path)]
    return folders + files


def _tree_file(served: _ServedFile) -> dict[str, object]:
    # No "xetHash": it would make the client try Xet, which this hub does not serve.
    entry: dict[str, object] = {
        "type": "file",
        "path": served.source.path,
        "size": len(served.source.content),
        "oid": served.git_oid,
    }
    if served.sha256 is not None:
        entry["lfs"] = {
            "oid": served.sha256,
            "size": len(served.source.content),
            "pointerSize": served.pointer_size,
        }
    return entry


def _answer_resolve(
    catalog: _Catalog, segments: list[str], range_header: str | None
) -> _Response:
    repo_type = _RESOLVE_PREFIXES.get(segments[0], "model")
    if repo_type != "model":
        segments = segments[1:]
    repo_id, rest = _split_repo_id(catalog, repo_type, segments, ("resolve",))
    if len(rest) < 3:
        raise _not_found("/".join(segments))
    commit = catalog.resolve(repo_type, repo_id, unquote(rest[1]))
    path = unquote("/".join(rest[2:]))
    served = commit.files.get(path)
    if served is None:
        raise _HubError(404, "EntryNotFound", f"{path} does not exist", commit.sha)
    return _file_response(commit.sha, served, range_header)


def _file_response(
    commit: str, served: _ServedFile, range_header: str | None
) -> _Response:
    content = served.source.content
    headers = {
        "X-Repo-Commit": commit,
        "ETag": f'"{served.git_oid}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
    if served.sha256 is not None:
        # The client names LFS blobs after X-Linked-Etag, which wins over ETag.
        headers["X-Linked-Etag"] = f'"{served.sha256}"'
        headers["X-Linked-Size"] = str(len(content))
    span = _byte_range(range_header, len(content))
    if span is None:
        return _Response(200, headers, memoryview(content))
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(content)}"
    return _Response(206, headers, memoryview(content)[start:end])


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the [start, end) span of a single-range `Range` header, else None.

    Several ranges or an unparsable header are ignored (a full 200 is allowed).
    """
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", (header or "").strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size
    else:
        start, end = int(first), min(int(last) + 1, size) if last else size
    if start >= end:
        message = f"Range {header} not satisfiable for {size} bytes"
        raise _HubError(
            416, None, message, headers={"Content-Range": f"bytes */{size}"}
        )
    return start, end


class _RequestLog:
    """The requests a hub received, appended to by handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[SeenRequest] = []

    def record(self, method: str, target: str) -> None:
        with self._lock:
            self._seen.append(SeenRequest(method, target))

    def copy(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)


@dataclass
class _Fault:
    """An injected failure: an error answer (`status`), or a body cut off midway.

    `remaining` counts the requests it still applies to; None means every one. A cut
    body stops after `cut_after` bytes, or half the body when that is None.
    """

    path_contains: str
    remaining: int | None
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    cut: bool = False
    cut_after: int | None = None

    def applies_to(self, target: str, *, body: bool) -> bool:
        # A cut needs a body to cut; an error answer replaces HEAD and GET alike.
        return self.path_contains in target and body == self.cut

    def cut_point(self, size: int) -> int:
        return min(size // 2 if self.cut_after is None else self.cut_after, size - 1)


class _Faults:
    """Injected failures, consumed by handler threads while tests add more."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []

    def add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, target: str, *, body: bool) -> _Fault | None:
        """The first fault that applies to this request, counted as used."""
        with self._lock:
            for fault in self._faults:
                if fault.applies_to(target, body=body):
                    self._use(fault)
                    return fault
        return None

    def _use(self, fault: _Fault) -> None:
        if fault.remaining is None:
            return
        fault.remaining -= 1
        if fault.remaining == 0:
            self._faults.remove(fault)


class _HubServer(ThreadingHTTPServer):
    """The HTTP server, holding the catalog, the log of requests and the faults."""

    daemon_threads = True

    def __init__(self, catalog: _Catalog, log: _RequestLog, faults: _Faults) -> None:
        super().__init__(("127.0.0.1", 0), _HubRequestHandler)
        self.catalog = catalog
        self.log = log
        self.faults = faults


class _HubRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _IDLE_TIMEOUT_S  # ends keep-alive connections a client left open

    def do_GET(self) -> None:
        self._reply(send_body=True)

    def do_HEAD(self) -> None:
        self._reply(send_body=False)

    def do_POST(self) -> None:
        self._refuse()

    def do_PUT(self) -> None:
        self._refuse()

    def do_DELETE(self) -> None:
        self._refuse()

    def log_message(self, format: str, *args: object) -> None:
        """Log nothing: clients send their token in `authorization` to any endpoint."""

    @property
    def _hub(self) -> _HubServer:
        return cast(_HubServer, self.server)

    def _reply(self, *, send_body: bool) -> None:
        self._hub.log.record(self.command, self.path)
        failure = self._hub.faults.take(self.path, body=False)
        if failure is not None and failure.status is not None:
            error = _HubError(
                failure.status, None, "injected failure", headers=failure.headers
            )
            self._send(_error_response(error), send_body=send_body)
            return
        response = _answer(self._hub.catalog, self.path, self.headers.get("Range"))
        cut = None
        if send_body and response.status in (200, 206) and response.body:
            cut = self._hub.faults.take(self.path, body=True)
        self._send(response, send_body=send_body, cut=cut)

    def _refuse(self) -> None:
        self._hub.log.record(self.command, self.path)
        # The request body is not read, so the connection cannot be reused.
        self.close_connection = True
        error = _HubError(405, None, f"{self.command} is not served by a read-only hub")
        self._send(_error_response(error), send_body=True)

    def _send(
        self, response: _Response, *, send_body: bool, cut: _Fault | None = None
    ) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        body = memoryview(response.body)
        if cut is not None:
            # The headers announced the whole body: closing early breaks the download.
            body = body[: cut.cut_point(len(body))]
            self.close_connection = True
        if send_body:
            self._stream(body)

    def _stream(self, body: memoryview) -> None:
        try:
            for start in range(0, len(body), _SEND_CHUNK):
                self.wfile.write(body[start : start + _SEND_CHUNK])
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (or resumes later with Range); nothing to clean up.
            self.close_connection = True


class FakeHub:
    """A read-only Hub on 127.0.0.1 with a free port, for `HF_ENDPOINT`.

    Use it as a context manager, or call `start()` and `stop()`. Commits can be added
    before or while it serves. Only requests, never headers, are recorded. Failures
    can be injected with `fail_next()` and `cut_body()`.
    """

    def __init__(self) -> None:
        self._catalog = _Catalog()
        self._log = _RequestLog()
        self._faults = _Faults()
        self._server: _HubServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FakeHub:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Bind 127.0.0.1 on a free port and serve from a background thread."""
        if self._server is not None:
            raise RuntimeError("FakeHub is already started")
        self._server = _HubServer(self._catalog, self._log, self._faults)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_S},
            name="fake-hub",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket; safe to call twice."""
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server, self._thread = None, None

    @property
    def endpoint(self) -> str:
        """Base URL for `HF_ENDPOINT`, e.g. `http://127.0.0.1:41234`."""
        if self._server is None:
            raise RuntimeError("FakeHub is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[SeenRequest]:
        """A copy of the (method, raw path) pairs received so far, in order."""
        return self._log.copy()

    def fail_next(
        self,
        path_contains: str,
        status: int,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` GET or HEAD requests whose raw target contains
        `path_contains` with `status`, `headers` and a JSON error body.

        For example a rate limit, `fail_next("/revision/", 429, {"Retry-After": "1"})`,
        or a gated repo, `fail_next("/api/", 403, {"X-Error-Code": "GatedRepo"})`.
        Requests answered this way are still recorded in `requests`.

        Raises:
            ValueError: `times` is below 1.
        """
        _require_positive(times)
        fault = _Fault(path_contains, times, status=status, headers=dict(headers or {}))
        self._faults.add(fault)

    def cut_body(
        self, path_contains: str, *, after: int | None = None, times: int | None = None
    ) -> None:
        """Break the next `times` downloads (every one, when None) whose raw target
        contains `path_contains`: the headers announce the whole file, the
        connection closes after `after` bytes of it (half, when None).

        Only GET answers with a body are cut; HEAD requests pass untouched.

        Raises:
            ValueError: `times` is below 1.
        """
        if times is not None:
            _require_positive(times)
        self._faults.add(_Fault(path_contains, times, cut=True, cut_after=after))

    def clear_faults(self) -> None:
        """Forget every injected failure not yet used up."""
        self._faults.clear()

    def add_commit(
        self,
        repo_type: str,
        repo_id: str,
        files: Sequence[HubFile],
        refs: Sequence[str] = ("main",),
        parent_files_from: str | None = None,
    ) -> str:
        """Create a commit and point each of `refs` at it.

        Args:
            repo_type: "model", "dataset", "space" or "kernel".
            repo_id: "namespace/name", or "name" for namespace-less repos.
            files: the files of the commit; with `parent_files_from` they are added to
                (or replace) the files of that revision.
            refs: branches, tags or `refs/pr/N` names to point at the commit.
            parent_files_from: a revision of the same repo to start from.

        Returns:
            The commit sha: 40 hex digits, the same for the same content.

        Raises:
            ValueError: unknown repo type or a file listed twice.
        """
        if repo_type not in REPO_TYPES:
            raise ValueError(
                f"repo_type must be one of {REPO_TYPES}, not {repo_type!r}"
            )
        if len({f.path for f in files}) != len(files):
            raise ValueError("a path appears twice in the commit")
        try:
            return self._catalog.add_commit(
                repo_type, repo_id, files, refs, parent_files_from
            )
        except _HubError as error:
            raise ValueError(error.message) from error

    def resolve(self, repo_type: str, repo_id: str, revision: str) -> str:
        """Return the commit sha a revision (ref or sha) names."""
        try:
            return self._catalog.resolve(repo_type, repo_id, revision).sha
        except _HubError as error:
            raise KeyError(error.message) from error

    def files(self, repo_type: str, repo_id: str, revision: str) -> dict[str, HubFile]:
        """Return the files of a revision, by path."""
        commit = self._catalog.resolve(repo_type, repo_id, revision)
        return {path: served.source for path, served in commit.files.items()}


def _require_positive(times: int) -> None:
    if times < 1:
        raise ValueError(f"times must be 1 or more, not {times}")


def _lfs_patterns(folder: Path) -> list[str] | None:
    """The patterns the folder's `.gitattributes` stores through LFS, if it has one."""
    attributes = folder / ".gitattributes"
    if not attributes.is_file():
        return None
    lines = (line.split() for line in attributes.read_text().splitlines())
    return [words[0] for words in lines if "filter=lfs" in words[1:]]


def _matches(path: str, pattern: str) -> bool:
    # As in git, a pattern without "/" applies to the file name at any depth.
    if "/" not in pattern:
        return fnmatch.fnmatchcase(path.rpartition("/")[2], pattern)
    return fnmatch.fnmatchcase(path, pattern.lstrip("/"))


def _is_lfs(path: str, size: int, patterns: list[str] | None, min_size: int) -> bool:
    if patterns is not None:
        return any(_matches(path, pattern) for pattern in patterns)
    return size >= min_size or path.endswith(LFS_SUFFIXES)


def serve_directory_as_repo(
    hub: FakeHub,
    repo_type: str,
    repo_id: str,
    folder: Path,
    *,
    lfs_min_size: int = LFS_MIN_SIZE,
    refs: Sequence[str] = ("main",),
) -> str:
    """Add one commit made of the files under `folder` and return its sha.

    Which files are LFS files decides their blob names in a client cache. When the
    folder has a `.gitattributes`, its `filter=lfs` patterns decide, as git does, so
    a copy of a Hub repo is served as the Hub serves it. Otherwise files of at least
    `lfs_min_size` bytes and weights (`*.safetensors`, `*.bin`, `*.onnx`) are LFS.
    A `.git` folder is skipped.
    """
    patterns = _lfs_patterns(folder)
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if not path.is_file() or relative.split("/")[0] == ".git":
            continue
        content = path.read_bytes()
        lfs = _is_lfs(relative, len(content), patterns, lfs_min_size)
        files.append(HubFile(relative, content, lfs=lfs))
    return hub.add_commit(repo_type, repo_id, files, refs=refs)
