"""``hubstash add``: put one Hub repo into the project's known-good set.

The steps run in this order, so that a failure leaves nothing half-done:

1. download the repo at its revision into the Hub cache with the real client
   (unless downloads are off), waiting out the Hub's rate limits within bounds;
2. check the snapshot against what the Hub lists for that commit, then push exactly
   that repo, revision and selection to the store. A download that failed, broke
   off or left files missing is never pushed;
3. write the repo into ``hubstash.toml`` (or ``[tool.hubstash]`` of
   ``pyproject.toml``), keeping the file's comments and layout;
4. re-lock every configured repo in ``hubstash.lock``.

When step 1 or 2 fails, the configuration, the lock and the store are left as they
were.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import tomlkit
from tomlkit.items import AoT, Table
from tomlkit.toml_document import TOMLDocument
from tqdm.auto import tqdm

from hubstash.cache_location import resolve_cache_dir
from hubstash.config import (
    CONFIG_NAME,
    Config,
    WantedRepo,
    find_config,
    load_config,
    wanted_from_spec,
)
from hubstash.errors import (
    AccessDenied,
    ExitCode,
    HubstashError,
    NotFound,
    StoreUnreachable,
    UsageError,
)
from hubstash.locking import LockResult, lock
from hubstash.progress import SILENT, Progress
from hubstash.push import PushResult, push
from hubstash.repos import RepoSpec, parse_repo_spec
from hubstash.stores import Store
from hubstash.transfer import DEFAULT_JOBS

logger = logging.getLogger(__name__)

ConfigChange = Literal["added", "updated", "unchanged"]

_T = TypeVar("_T")
_TRUE = {"1", "ON", "YES", "TRUE"}
_NEW_CONFIG = "# The Hub repos this project needs. `hubstash add` adds to this file.\n"
_RATE_LIMITED = 429
_MAX_MESSAGE = 200
# Transport failures of the client's HTTP library (httpx, or httpx2 in
# huggingface_hub 2.x), recognised by name so that neither needs importing here.
_TRANSPORT_ERRORS = {"TransportError", "TimeoutException"}

if TYPE_CHECKING:
    _Bar = tqdm[Any]
else:
    _Bar = tqdm


@dataclass(frozen=True)
class HubRetry:
    """How ``add`` waits out Hub rate limits (HTTP 429) that reach it.

    The client retries some requests itself; this bounds a retry of the whole
    download around it. A wait is the Hub's ``Retry-After`` (or the reset time of its
    ``RateLimit`` header) when it names one, else ``first_wait`` doubled at each
    retry. A named wait longer than ``max_wait`` is not waited for: the add stops at
    once and says when to try again.

    Attributes:
        attempts: downloads tried in all, the first included.
        first_wait: seconds before the first retry when the Hub names no wait.
        max_wait: the longest single wait, in seconds.
        sleep: how to wait; replaceable, so that a caller controls the time.
    """

    attempts: int = 4
    first_wait: float = 2.0
    max_wait: float = 60.0
    sleep: Callable[[float], None] = field(
        default=time.sleep, compare=False, repr=False
    )


@dataclass(frozen=True)
class AddResult:
    """What ``add`` did.

    Attributes:
        config_path: the configuration file (written unless ``config_change`` is
            "unchanged").
        repo: the repo and patterns the configuration names.
        config_change: "added", "updated" (its patterns changed) or "unchanged".
        commit: the commit downloaded from the Hub; None when nothing was.
        download_skipped: why nothing was downloaded, when downloads were off.
        rate_limit_waits: the seconds waited for each rate limit, in order.
        push: the push of the repo; None without a download or a store.
        lock: the lock written; None when it could not be updated (see notices).
        notices: what the user should know: nothing pushed, lock not updated.
        seconds: wall time.
    """

    config_path: Path
    repo: WantedRepo
    config_change: ConfigChange
    commit: str | None
    download_skipped: str | None
    rate_limit_waits: tuple[float, ...]
    push: PushResult | None
    lock: LockResult | None
    notices: tuple[str, ...]
    seconds: float

    @property
    def exit_code(self) -> ExitCode:
        if self.push is not None and self.push.exit_code != ExitCode.OK:
            return self.push.exit_code
        if self.lock is None and self.commit is not None:
            return ExitCode.INCOMPLETE
        return ExitCode.OK


def add(
    config: Config | str | os.PathLike[str] | None,
    spec: str,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    *,
    store: Store | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    retry: HubRetry | None = None,
    hub_progress: bool = False,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
) -> AddResult:
    """Add a Hub repo to the project: download it, push it, configure and lock it.

    The download uses huggingface_hub's ``snapshot_download`` (which reads
    ``HF_ENDPOINT`` and ``HF_TOKEN``) into the cache hubstash resolves. It is skipped
    when ``download`` is false or ``HF_HUB_OFFLINE`` is set; then only the
    configuration and the lock change, the lock resolved from the cache or the store.
    The snapshot is pushed only once it holds every file the Hub lists for the
    commit (within the patterns). A repo already configured at the same revision
    has its patterns replaced instead of being listed twice.

    Args:
        config: the configuration, a path to one (created when missing), or None
            for the one found from the working folder (else a new
            ``hubstash.toml`` there).
        spec: ``[type/]org/name[@revision]``; ``main`` when no revision is named.
        include: only files matching one of these (allow_patterns rules).
        exclude: no files matching these.
        store: where to push; None to only download, configure and lock.
        cache_dir: the Hub cache (or an ``HF_HOME``); found as the client finds it
            when None.
        download: fetch from the Hub; False only edits the configuration and lock.
        retry: how rate limits are waited out.
        hub_progress: let huggingface_hub draw its own progress bars on stderr.
        jobs: concurrent hashes and transfers for push and lock.
        progress: receives push progress.

    Raises:
        UsageError: a bad repo name or configuration, or huggingface_hub is missing.
        NotFound: the Hub has no such repo or revision, or no file matches.
        AccessDenied: the repo is gated, private or disabled for this token.
        StoreUnreachable: the Hub (or the store) cannot be reached, is rate-limited
            beyond ``retry``, or the connection broke off mid-download.
        HubstashError: anything else that stopped the add (subclasses say what).
    """
    started = time.monotonic()
    project = _project(config)
    wanted = wanted_from_spec(spec, tuple(include), tuple(exclude))
    skipped = _why_not_download(download)
    notices = [f"not downloading ({skipped}): nothing is pushed"] if skipped else []

    fetched = None
    if skipped is None:
        cache_root = resolve_cache_dir(cache_dir).path
        fetched = _fetch(wanted, cache_root, retry or HubRetry(), hub_progress)
    pushed = None
    if fetched is not None:
        pushed = _push(store, cache_dir, wanted, jobs, progress, notices)

    change: ConfigChange = "unchanged"
    path, locked = _config_path(project), None
    if pushed is not None and pushed.exit_code != ExitCode.OK:
        notices.append("the push failed: configuration and lock left as they were")
    else:
        change, updated = _write_config(project, wanted)
        locked = _relock(updated, store, cache_dir, jobs, progress, notices)

    return AddResult(
        config_path=path,
        repo=wanted,
        config_change=change,
        commit=fetched.commit if fetched else None,
        download_skipped=skipped,
        rate_limit_waits=fetched.waits if fetched else (),
        push=pushed,
        lock=locked,
        notices=tuple(notices),
        seconds=time.monotonic() - started,
    )


def _project(config: Config | str | os.PathLike[str] | None) -> Config:
    if isinstance(config, Config):
        return config
    if config is None:
        found: Config = find_config()
        return found
    path = Path(config)
    return load_config(path) if path.exists() else Config(path)


def _config_path(project: Config) -> Path:
    return project.path or Path.cwd() / CONFIG_NAME


def _why_not_download(download: bool) -> str | None:
    if not download:
        return "--no-download"
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE:
        return "HF_HUB_OFFLINE is set"
    return None


# --------------------------------------------------------------------------------------
# Downloading from the Hub


@dataclass(frozen=True)
class _Fetched:
    commit: str
    waits: tuple[float, ...]


def _fetch(
    wanted: WantedRepo, cache_root: Path, retry: HubRetry, hub_progress: bool
) -> _Fetched:
    """Download the repo and return the commit its complete snapshot holds.

    Raises:
        HubstashError: the download failed; nothing of it may be pushed.
    """
    hub = _Hub()
    waits: list[float] = []

    def attempt() -> str:
        return hub.download(wanted, cache_root, hub_progress)

    try:
        commit = _waiting_out_rate_limits(attempt, retry, wanted.spec, waits)
    except HubstashError:
        raise
    except Exception as exc:
        raise _hub_error(exc, wanted.spec, hub.endpoint) from exc
    return _Fetched(commit, tuple(waits))


class _Hub:
    """The huggingface_hub client, imported only when a download is asked for."""

    def __init__(self) -> None:
        try:
            from huggingface_hub import HfApi, constants, snapshot_download
        except ImportError as exc:
            raise UsageError(
                "downloading from the Hub needs huggingface_hub, which is missing",
                hint="pip install 'hubstash[hub]', or add with --no-download",
            ) from exc
        self._api = HfApi()
        self._snapshot_download = snapshot_download
        self.endpoint: str = constants.ENDPOINT

    def download(self, wanted: WantedRepo, cache_root: Path, show_bars: bool) -> str:
        """Download into the cache; return the commit of the complete snapshot.

        The commit and its file list are asked of the Hub first, so that a snapshot
        the client fell back to (it returns what the cache has when the Hub fails)
        is taken only when it is the right commit and holds every wanted file.
        """
        repo, revision = wanted.spec.repo, wanted.revision
        info = self._api.repo_info(repo.id, repo_type=repo.type, revision=revision)
        if info.sha is None:
            raise HubstashError(f"the Hub named no commit for {wanted.spec}")
        # Kernels' info carries no file list; the others' does, sparing a request.
        siblings = getattr(info, "siblings", None) or ()
        listed = [s.rfilename for s in siblings] or self._api.list_repo_files(
            repo.id, repo_type=repo.type, revision=info.sha
        )
        paths = _selected(wanted, listed)
        folder = self._snapshot_download(
            repo.id,
            repo_type=repo.type,
            revision=revision,
            allow_patterns=list(wanted.include) or None,
            ignore_patterns=list(wanted.exclude) or None,
            cache_dir=cache_root,
            tqdm_class=None if show_bars else _QuietBar,
        )
        _check_snapshot(wanted, Path(folder), info.sha, paths)
        return info.sha


class _QuietBar(_Bar):
    """A progress bar that draws nothing: the library draws nothing unless asked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def _selected(wanted: WantedRepo, listed: Sequence[str]) -> list[str]:
    paths = sorted(p for p in listed if wanted.files.accepts(p))
    if not paths:
        raise NotFound(
            f"{wanted.spec}: none of its {len(listed)} files on the Hub match the"
            " include and exclude patterns"
        )
    return paths


def _check_snapshot(
    wanted: WantedRepo, folder: Path, commit: str, paths: Sequence[str]
) -> None:
    if folder.name != commit:
        raise HubstashError(
            f"{wanted.spec} moved on the Hub during the download"
            f" ({commit[:12]} became {folder.name[:12]}): nothing was pushed",
            hint="run hubstash add again",
        )
    missing = [p for p in paths if not (folder / p).is_file()]
    if missing:
        raise NotFound(
            f"the download of {wanted.spec} is incomplete ({len(missing)} files"
            f" missing, e.g. {missing[0]}): nothing was pushed",
            hint="run hubstash add again when the Hub can be reached",
        )


def _waiting_out_rate_limits(
    call: Callable[[], _T], retry: HubRetry, spec: RepoSpec, waits: list[float]
) -> _T:
    """Run ``call``, retrying it after each rate limit, within ``retry``'s bounds."""
    for attempt in range(1, retry.attempts + 1):
        try:
            return call()
        except Exception as exc:
            response = _rate_limited_response(exc)
            if response is None or attempt == retry.attempts:
                raise
            wait = _wait_for(response, attempt, retry, spec, exc)
            logger.warning(
                "the Hub rate-limits downloads of %s: retrying in %.0f s (%d of %d)",
                spec,
                wait,
                attempt,
                retry.attempts - 1,
            )
            retry.sleep(wait)
            waits.append(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _wait_for(
    response: Any, attempt: int, retry: HubRetry, spec: RepoSpec, exc: Exception
) -> float:
    asked = _asked_wait(getattr(response, "headers", None) or {})
    if asked is None:
        return float(min(retry.first_wait * 2 ** (attempt - 1), retry.max_wait))
    if asked > retry.max_wait:
        raise StoreUnreachable(
            f"the Hub rate-limits downloads of {spec} for the next {asked:.0f} s",
            hint="try again later",
        ) from exc
    return asked


def _asked_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds the Hub asks to wait: ``Retry-After``, else ``RateLimit``'s ``t=``."""
    retry_after = (headers.get("Retry-After") or "").strip()
    if retry_after.isdigit():
        return float(retry_after)
    reset = re.search(r"\bt=(\d+)", headers.get("RateLimit") or "")
    return float(reset.group(1)) if reset else None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what caused it, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _rate_limited_response(exc: Exception) -> Any | None:
    """The HTTP response of a 429 behind ``exc``, if it is a rate limit."""
    for cause in _causes(exc):
        response = getattr(cause, "response", None)
        if getattr(response, "status_code", None) == _RATE_LIMITED:
            return response
    return None


def _hub_error(exc: Exception, spec: RepoSpec, endpoint: str) -> HubstashError:
    """One line naming what went wrong, with the exit code it deserves."""
    from huggingface_hub import errors

    for cause in _causes(exc):
        if isinstance(cause, errors.LocalEntryNotFoundError):
            continue  # "not in the cache either": what matters is what caused it
        if isinstance(cause, errors.HfHubHTTPError):
            return _http_error(cause, spec, endpoint)
        if _is_transport_error(cause):
            return StoreUnreachable(
                f"the connection to the Hub at {endpoint} failed while downloading"
                f" {spec}: {_first_line(cause)}",
                hint="check HF_ENDPOINT and the network, or add with --no-download",
            )
    if isinstance(exc, errors.LocalEntryNotFoundError):
        return StoreUnreachable(
            f"cannot reach the Hub at {endpoint} to download {spec}",
            hint="check HF_ENDPOINT and the network, or add with --no-download",
        )
    return HubstashError(f"downloading {spec} failed: {_first_line(exc)}")


def _http_error(cause: Exception, spec: RepoSpec, endpoint: str) -> HubstashError:
    from huggingface_hub import errors

    status = getattr(getattr(cause, "response", None), "status_code", None)
    if isinstance(cause, errors.GatedRepoError):
        return AccessDenied(
            f"{spec.repo} is gated on the Hub",
            hint=f"accept its conditions at {endpoint}/{spec.repo} and set HF_TOKEN",
        )
    if isinstance(cause, errors.DisabledRepoError):
        return AccessDenied(f"{spec.repo} is disabled on the Hub")
    if isinstance(cause, errors.RepositoryNotFoundError):
        return NotFound(
            f"{spec.repo}: no such repo on the Hub at {endpoint}",
            hint="check the name; a private repo also needs HF_TOKEN",
        )
    if isinstance(cause, errors.RevisionNotFoundError):
        return NotFound(f"{spec.repo} has no revision {spec.revision!r} on the Hub")
    if status in (401, 403):
        return AccessDenied(
            f"the Hub denied access to {spec.repo} (HTTP {status})",
            hint="set HF_TOKEN to a token that may read it",
        )
    if status == _RATE_LIMITED:
        return StoreUnreachable(
            f"the Hub kept rate-limiting downloads of {spec} (HTTP 429)",
            hint="try again later",
        )
    if isinstance(status, int) and status >= 500:
        return StoreUnreachable(
            f"the Hub failed while serving {spec} (HTTP {status})",
            hint="try again later",
        )
    return HubstashError(f"the Hub refused {spec}: {_first_line(cause)}")


def _is_transport_error(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(kind.__name__ in _TRANSPORT_ERRORS for kind in type(exc).__mro__)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


# --------------------------------------------------------------------------------------
# Pushing and locking


def _push(
    store: Store | None,
    cache_dir: str | Path | None,
    wanted: WantedRepo,
    jobs: int,
    progress: Progress,
    notices: list[str],
) -> PushResult | None:
    if store is None:
        notices.append(
            "no store configured, so nothing was pushed (name one with --store,"
            " HUBSTASH_STORE or [store] url)"
        )
        return None
    return push(
        store,
        cache_dir,
        [wanted.spec],
        selections={wanted.spec.repo: wanted.files},
        jobs=jobs,
        progress=progress,
    )


def _relock(
    project: Config,
    store: Store | None,
    cache_dir: str | Path | None,
    jobs: int,
    progress: Progress,
    notices: list[str],
) -> LockResult | None:
    """Lock every configured repo from the cache, else from the store.

    Returns None, with a notice saying why, when a repo is in neither.
    """
    try:
        return lock(project, cache_dir=cache_dir, jobs=jobs, progress=progress)
    except NotFound as from_cache:
        if store is None:
            notices.append(f"{project.lock_path} not updated: {from_cache}")
            return None
        logger.info("locking from the store, as the cache lacks some: %s", from_cache)
    try:
        return lock(project, store=store, jobs=jobs, progress=progress)
    except NotFound as from_store:
        notices.append(f"{project.lock_path} not updated: {from_store}")
        return None


# --------------------------------------------------------------------------------------
# Editing the configuration


def _write_config(project: Config, wanted: WantedRepo) -> tuple[ConfigChange, Config]:
    """Add the repo to the configuration file, or update its patterns there.

    The file is read again just before the edit and replaced atomically; tomlkit
    keeps every comment and the layout of what is not changed.
    """
    path = _config_path(project)
    original = _read_config(path)
    document = tomlkit.parse(original)
    change = _put(_section(document, path), wanted)
    if change != "unchanged":
        _replace_file(path, _same_ending(tomlkit.dumps(document), original))
    return change, load_config(path)


def _read_config(path: Path) -> str:
    if not path.exists():
        return _NEW_CONFIG if path.name == CONFIG_NAME else ""
    load_config(path)  # refuses a file that says something invalid, naming it
    # Bytes, not text mode, so that line endings are kept as they are.
    return path.read_bytes().decode("utf-8")


def _same_ending(text: str, original: str) -> str:
    """Drop the blank line a new last entry brought to the end of the file."""
    if text.endswith("\n\n") and not original.endswith("\n\n"):
        return text.rstrip("\n") + "\n"
    return text


def _section(document: TOMLDocument, path: Path) -> TOMLDocument | Table:
    """Where ``[[repo]]`` goes: the document, or ``[tool.hubstash]`` of a pyproject."""
    if path.name != "pyproject.toml":
        return document
    tool = document.get("tool")
    if tool is None:
        tool = tomlkit.table(is_super_table=True)
        document.append("tool", tool)
    hubstash = tool.get("hubstash")
    if hubstash is None:
        hubstash = tomlkit.table(is_super_table=True)
        tool.append("hubstash", hubstash)
    if not isinstance(hubstash, Table):
        raise UsageError(f"{path}: [tool.hubstash] must be a table")
    return hubstash


def _put(section: TOMLDocument | Table, wanted: WantedRepo) -> ConfigChange:
    entries = section.get("repo")
    if entries is None:
        _end_last_table(section)
        entries = tomlkit.aot()
        section.append("repo", entries)
    for entry in entries:
        if _entry_key(entry) == wanted.key():
            return _update_entry(entry, wanted)
    _append_entry(entries, _new_entry(wanted))
    return "added"


def _entry_key(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    kind = str(entry.get("type", "model"))
    prefix = "" if kind == "model" else f"{kind}s/"
    repo = parse_repo_spec(f"{prefix}{entry['id']}").repo
    return (repo.type, repo.id, str(entry.get("revision", "main")))


def _update_entry(entry: Any, wanted: WantedRepo) -> ConfigChange:
    current = (_patterns(entry.get("include")), _patterns(entry.get("exclude")))
    if current == (wanted.include, wanted.exclude):
        return "unchanged"
    for key, patterns in (("include", wanted.include), ("exclude", wanted.exclude)):
        if patterns:
            entry[key] = list(patterns)  # in place: a comment after it stays
        elif key in entry:
            del entry[key]
    return "updated"


def _patterns(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (str(raw),)
    return tuple(str(p) for p in raw)


def _new_entry(wanted: WantedRepo) -> dict[str, Any]:
    repo = wanted.spec.repo
    fields: dict[str, Any] = {"id": repo.id}
    if repo.type != "model":
        fields["type"] = repo.type
    fields["revision"] = wanted.revision
    if wanted.include:
        fields["include"] = list(wanted.include)
    if wanted.exclude:
        fields["exclude"] = list(wanted.exclude)
    return fields


def _append_entry(entries: Any, fields: dict[str, Any]) -> None:
    if not isinstance(entries, AoT):
        # ``repo = [{...}, ...]``: an inline array stays one.
        inline = tomlkit.inline_table()
        inline.update(fields)
        entries.append(inline)
        return
    if len(entries) > 0:
        _end_with_blank_line(entries[-1])
    table = tomlkit.table()
    table.update(fields)
    # Whatever follows the new entry stays a paragraph of its own.
    _end_with_blank_line(table)
    entries.append(table)


def _end_last_table(section: TOMLDocument | Table) -> None:
    """Leave a blank line between what the section holds and a new ``[[repo]]``."""
    values = list(section.values())
    last = values[-1] if values else None
    if isinstance(last, Table):
        _end_with_blank_line(last)
    elif isinstance(section, Table) and not section.is_super_table():
        _end_with_blank_line(section)


def _end_with_blank_line(table: Table) -> None:
    for _ in range(2):
        if table.as_string().endswith("\n\n"):
            return
        table.add(tomlkit.ws("\n"))


def _replace_file(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temp.open("w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        if path.exists():
            shutil.copymode(path, temp)
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)
