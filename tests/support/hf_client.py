"""Run the real `huggingface_hub` client in a fresh interpreter, to judge a cache.

The client reads its environment once, at import, so every call gets its own process
with an environment built here from scratch: only a few harmless variables are copied
from ours, `HF_ENDPOINT` must be a local address, and telemetry, update checks and Xet
are off. Nothing the client does can reach another host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# A local port nothing listens on: a client pointed here fails fast and stays local.
DEAD_ENDPOINT = "http://127.0.0.1:9"
CLIENT_TIMEOUT_S = 120.0

_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_KEPT_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")
_ERROR_KEY = "__client_error__"

# Runs the snippet and turns an uncaught exception into one JSON line, so the caller
# learns the client's exception class without parsing a traceback.
_WRAPPER = """
import json, sys, traceback
_source = {source!r}
try:
    exec(compile(_source, "<client snippet>", "exec"), {{"__name__": "__client__"}})
except Exception as error:
    traceback.print_exc()
    print(json.dumps({{{key!r}: type(error).__name__, "message": str(error)}}))
    sys.exit(1)
"""

_CALLS_SNIPPET = """
import hashlib, json, os
from huggingface_hub import hf_hub_download, snapshot_download

def files_under(folder):
    found = []
    for root, _, names in os.walk(folder):
        found += [os.path.relpath(os.path.join(root, n), folder) for n in names]
    return sorted(p.replace(os.sep, "/") for p in found)

def digest(path):
    sha = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()

def run(call):
    kind = call.pop("kind")
    if kind == "file":
        path = hf_hub_download(**call)
        return {"path": path, "sha256": digest(path), "files": []}
    path = snapshot_download(**call)
    return {"path": path, "sha256": None, "files": files_under(path)}

def failed(error):
    return {"path": None, "sha256": None, "files": [], "error": type(error).__name__}

outcomes = []
for call in json.loads(CALLS):
    try:
        outcomes.append({**run(call), "error": None})
    except Exception as error:
        outcomes.append(failed(error))
print(json.dumps(outcomes))
"""

_SCAN_SNIPPET = """
import json
from pathlib import Path
from huggingface_hub import scan_cache_dir

info = scan_cache_dir(CACHE)

def revision(rev):
    snapshot = rev.snapshot_path
    files = sorted(f.file_path.relative_to(snapshot).as_posix() for f in rev.files)
    return {"commit_hash": rev.commit_hash, "refs": sorted(rev.refs), "files": files}

def repo(r):
    revisions = [revision(rev) for rev in r.revisions]
    return {
        "repo_type": r.repo_type, "repo_id": r.repo_id, "nb_files": r.nb_files,
        "size_on_disk": r.size_on_disk, "refs": sorted(r.refs),
        "revisions": sorted(revisions, key=lambda v: v["commit_hash"]),
    }

incomplete = (f.file_path.relative_to(info.cache_dir) for f in info.incomplete_files)
repos = sorted(map(repo, info.repos), key=lambda r: [r["repo_type"], r["repo_id"]])
print(json.dumps({
    "repos": repos,
    "warnings": [str(w) for w in info.warnings],
    "incomplete_files": sorted(path.as_posix() for path in incomplete),
    "size_on_disk": info.size_on_disk,
}))
"""


class ClientError(RuntimeError):
    """The client process failed; `error_class` names the exception it raised."""

    def __init__(self, message: str, *, error_class: str | None, stderr: str) -> None:
        super().__init__(f"{message}\n--- client stderr ---\n{stderr}")
        self.error_class = error_class
        self.stderr = stderr


@dataclass(frozen=True)
class FileDownload:
    """An `hf_hub_download` call (revision None means the client's default, main)."""

    repo_id: str
    filename: str
    repo_type: str = "model"
    revision: str | None = None


@dataclass(frozen=True)
class SnapshotDownload:
    """A `snapshot_download` call, optionally limited by `allow_patterns`."""

    repo_id: str
    repo_type: str = "model"
    revision: str | None = None
    allow_patterns: tuple[str, ...] | None = None


ClientCall = FileDownload | SnapshotDownload


@dataclass(frozen=True)
class CallOutcome:
    """What one client call gave back.

    Attributes:
        path: the path the client returned, or None when it raised.
        error: the class name of the exception it raised, or None.
        sha256: for a file download, the SHA-256 of the returned file.
        files: for a snapshot, the files under the returned folder (posix, sorted).
    """

    path: str | None
    error: str | None
    sha256: str | None
    files: tuple[str, ...]


@dataclass(frozen=True)
class OfflineSnapshot:
    """An offline `snapshot_download`: the files of the folder it returned, or the
    class name of the exception it raised."""

    files: tuple[str, ...]
    error: str | None


@dataclass(frozen=True)
class ScannedRevision:
    commit_hash: str
    refs: tuple[str, ...]
    files: tuple[str, ...]


@dataclass(frozen=True)
class ScannedRepo:
    repo_type: str
    repo_id: str
    nb_files: int
    size_on_disk: int
    refs: tuple[str, ...]
    revisions: tuple[ScannedRevision, ...]


@dataclass(frozen=True)
class ScanReport:
    """What `scan_cache_dir` reports; warnings are the exception messages."""

    repos: tuple[ScannedRepo, ...]
    warnings: tuple[str, ...]
    incomplete_files: tuple[str, ...]
    size_on_disk: int

    def repo(self, repo_type: str, repo_id: str) -> ScannedRepo:
        """Return the scanned repo, or raise KeyError."""
        for repo in self.repos:
            if (repo.repo_type, repo.repo_id) == (repo_type, repo_id):
                return repo
        raise KeyError(f"{repo_type} {repo_id} is not in the scan")


def _require_local(endpoint: str) -> None:
    host = urlsplit(endpoint).hostname
    if host not in _LOCAL_HOSTS:
        raise ValueError(f"HF_ENDPOINT must be a local address, not {endpoint!r}")


def hf_env(
    cache_dir: Path,
    endpoint: str,
    offline: bool = False,
    extra: Mapping[str, str] | None = None,
    *,
    hf_home: Path | None = None,
) -> dict[str, str]:
    """Return a minimal environment for a client process that uses `cache_dir`.

    Args:
        cache_dir: the Hub cache (`HF_HUB_CACHE`).
        endpoint: `HF_ENDPOINT`; must be a local address.
        offline: set `HF_HUB_OFFLINE=1`.
        extra: more variables, applied last (`HF_ENDPOINT` is checked again).
        hf_home: `HF_HOME`, also used as `HOME`; defaults to the cache's parent
            folder, so a cache at `<tmp>/hub` is the default cache of `<tmp>`.

    Raises:
        ValueError: the endpoint is not a local address.
    """
    home = hf_home if hf_home is not None else cache_dir.parent
    env = {name: os.environ[name] for name in _KEPT_VARIABLES if name in os.environ}
    env.update(
        HOME=str(home),
        HF_HOME=str(home),
        HF_HUB_CACHE=str(cache_dir),
        HF_ENDPOINT=endpoint,
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    env.update(extra or {})
    _require_local(env["HF_ENDPOINT"])
    return env


def _failure(stdout: str, stderr: str, returncode: int) -> ClientError:
    last_line = stdout.strip().rsplit("\n", 1)[-1]
    try:
        report = json.loads(last_line)
    except ValueError:
        report = None
    if isinstance(report, dict) and _ERROR_KEY in report:
        message = f"{report[_ERROR_KEY]}: {report['message']}"
        return ClientError(message, error_class=report[_ERROR_KEY], stderr=stderr)
    message = f"client exited with status {returncode}"
    return ClientError(message, error_class=None, stderr=stderr)


def run_client(
    code: str, env: Mapping[str, str], timeout: float = CLIENT_TIMEOUT_S
) -> Any:
    """Run `code` in a fresh interpreter and return the JSON its last line prints.

    The process runs isolated (`python -I`: no user site, no current folder on the
    path), in `HF_HOME`, with exactly `env`.

    Raises:
        ValueError: `env` has no local `HF_ENDPOINT`.
        ClientError: the code raised, the process failed, or printed no JSON.
    """
    _require_local(env.get("HF_ENDPOINT", ""))
    home = Path(env["HF_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    script = _WRAPPER.format(source=code, key=_ERROR_KEY)
    done = subprocess.run(
        [sys.executable, "-I", "-c", script],
        env=dict(env),
        cwd=home,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    stdout = done.stdout.decode("utf-8", "replace")
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise _failure(stdout, stderr, done.returncode)
    try:
        return json.loads(stdout.strip().rsplit("\n", 1)[-1])
    except ValueError as error:
        raise ClientError(
            "no JSON on the last line", error_class=None, stderr=stderr
        ) from error


def _call_json(call: ClientCall, *, offline: bool) -> dict[str, Any]:
    arguments = {
        name: value for name, value in asdict(call).items() if value is not None
    }
    if "allow_patterns" in arguments:
        arguments["allow_patterns"] = list(arguments["allow_patterns"])
    if isinstance(call, FileDownload):
        arguments["kind"] = "file"
        if offline:
            arguments["local_files_only"] = True
    else:
        arguments["kind"] = "snapshot"
    return arguments


def _run_calls(
    calls: Sequence[ClientCall], env: Mapping[str, str], *, offline: bool
) -> list[CallOutcome]:
    encoded = json.dumps([_call_json(call, offline=offline) for call in calls])
    code = f"CALLS = {encoded!r}\n{_CALLS_SNIPPET}"
    outcomes = run_client(code, env)
    return [
        CallOutcome(o["path"], o["error"], o["sha256"], tuple(o["files"]))
        for o in outcomes
    ]


def download(
    cache_dir: Path, endpoint: str, calls: Sequence[ClientCall]
) -> list[CallOutcome]:
    """Run the calls online, in order, in one client process.

    A call that raises does not stop the others: its outcome names the exception.
    """
    return _run_calls(calls, hf_env(cache_dir, endpoint), offline=False)


def run_offline(
    cache_dir: Path, calls: Sequence[ClientCall], endpoint: str = DEAD_ENDPOINT
) -> list[CallOutcome]:
    """Run the calls with `HF_HUB_OFFLINE=1`, in one client process.

    File downloads also pass `local_files_only=True`; snapshots are called as a user
    script would call them offline, without it.
    """
    env = hf_env(cache_dir, endpoint, offline=True)
    return _run_calls(calls, env, offline=True)


def load_offline(
    cache_dir: Path,
    repo_type: str,
    repo_id: str,
    filename: str,
    revision: str = "main",
    endpoint: str = DEAD_ENDPOINT,
) -> bytes:
    """Load one file offline with the client and return its bytes.

    Raises:
        ClientError: the client raised; `error_class` names the exception.
    """
    call = FileDownload(repo_id, filename, repo_type=repo_type, revision=revision)
    (outcome,) = run_offline(cache_dir, [call], endpoint)
    if outcome.path is None:
        message = f"offline load of {filename} failed"
        raise ClientError(message, error_class=outcome.error, stderr="")
    return Path(outcome.path).read_bytes()


def snapshot_offline(
    cache_dir: Path,
    repo_type: str,
    repo_id: str,
    revision: str = "main",
    allow_patterns: Sequence[str] | None = None,
    endpoint: str = DEAD_ENDPOINT,
) -> OfflineSnapshot:
    """Run `snapshot_download` offline; return the folder's files or the error name."""
    patterns = tuple(allow_patterns) if allow_patterns is not None else None
    call = SnapshotDownload(repo_id, repo_type, revision, patterns)
    (outcome,) = run_offline(cache_dir, [call], endpoint)
    return OfflineSnapshot(outcome.files, outcome.error)


def scan(cache_dir: Path, endpoint: str = DEAD_ENDPOINT) -> ScanReport:
    """Return what the client's `scan_cache_dir` reports for `cache_dir`."""
    env = hf_env(cache_dir, endpoint, offline=True)
    report = run_client(f"CACHE = {str(cache_dir)!r}\n{_SCAN_SNIPPET}", env)
    repos = tuple(_scanned_repo(repo) for repo in report["repos"])
    return ScanReport(
        repos=repos,
        warnings=tuple(report["warnings"]),
        incomplete_files=tuple(report["incomplete_files"]),
        size_on_disk=report["size_on_disk"],
    )


def _scanned_repo(repo: dict[str, Any]) -> ScannedRepo:
    revisions = tuple(
        ScannedRevision(rev["commit_hash"], tuple(rev["refs"]), tuple(rev["files"]))
        for rev in repo["revisions"]
    )
    return ScannedRepo(
        repo_type=repo["repo_type"],
        repo_id=repo["repo_id"],
        nb_files=repo["nb_files"],
        size_on_disk=repo["size_on_disk"],
        refs=tuple(repo["refs"]),
        revisions=revisions,
    )
