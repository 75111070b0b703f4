"""Doctor: what is wrong with this machine's set-up, one check at a time.

Each check says OK, WARN, FAIL or SKIP, what it found, and the next step. Doctor
only reads, except when asked to check writing: it then writes one small object,
``doctor/write-check``, always under that key, so that checks never add up to junk.
Secrets found in a store are named by key, never shown.
"""

from __future__ import annotations

import enum
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hubstash import layout, synccopy
from hubstash.cache_location import resolve_cache_dir
from hubstash.config import Config, find_config
from hubstash.errors import ExitCode, HubstashError, NotFound, UsageError
from hubstash.leaks import ROTATE_HINT, Leak, find_leaks
from hubstash.output import plural, size
from hubstash.repos import RepoId
from hubstash.settings import StoreFlags, s3_options, store_url
from hubstash.stores import FolderStore, Store, StoreObject, open_store
from hubstash.stores.s3 import S3Store

WRITE_CHECK_KEY = "doctor/write-check"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
# What the Hub client reads as true; any other value leaves it online.
_TRUE = ("1", "ON", "YES", "TRUE")
_STORE_CHECKS = ("read", "list", "format", "write", "secrets")
# The most basic failure decides the exit code: nothing else can be right when the
# store cannot be reached, or reached but not read.
_WORST_FIRST = (
    ExitCode.UNREACHABLE,
    ExitCode.DENIED,
    ExitCode.USAGE,
    ExitCode.INTEGRITY,
    ExitCode.INCOMPLETE,
    ExitCode.FAILURE,
)


class Status(enum.Enum):
    """How a check came out."""

    OK = "ok"
    WARN = "warn"  # works, but probably not as intended
    FAIL = "fail"  # broken: the next step says what to do
    SKIP = "skip"  # not run: not asked for, or an earlier check failed


@dataclass(frozen=True)
class Check:
    """One check.

    Attributes:
        name: what was checked (``cache``, ``store``, ``read``, ``secrets``...).
        status: how it came out.
        message: what was found, in one line.
        hint: the next step, for warnings and failures.
        code: the exit code a failure calls for.
    """

    name: str
    status: Status
    message: str
    hint: str = ""
    code: ExitCode = ExitCode.OK


@dataclass(frozen=True)
class DoctorResult:
    """Every check, in order, and the secrets the store scan found."""

    checks: tuple[Check, ...]
    leaks: tuple[Leak, ...]

    @property
    def exit_code(self) -> ExitCode:
        """OK unless a check failed; then the code of the most basic failure."""
        failed = {c.code for c in self.checks if c.status is Status.FAIL}
        return next((code for code in _WORST_FIRST if code in failed), ExitCode.OK)


def doctor(
    flags: StoreFlags | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    config_file: str | None = None,
    check_write: bool = False,
    environ: Mapping[str, str] | None = None,
) -> DoctorResult:
    """Check the cache folder, the offline variables and the store.

    Store checks stop at the first that makes the rest meaningless (no credentials,
    unreachable). With a listing, every object is scanned for leaked Hub tokens:
    keys named like the client's token files, and objects under 4 KiB whose bytes
    hold one.

    Args:
        flags: the store settings given on the command line.
        cache_dir: the Hub cache (or an ``HF_HOME``); found as the client finds it
            when None.
        config_file: ``hubstash.toml`` to use instead of searching for one.
        check_write: also write and read back ``doctor/write-check``.
        environ: the environment to judge (default: this process's); the
            configuration file is found as every command finds it.
    """
    env = os.environ if environ is None else environ
    config_check, config = _config(config_file)
    checks = [_cache(cache_dir, env), _offline(env), config_check]
    store_checks, leaks = _store_checks(flags or StoreFlags(), config, env, check_write)
    return DoctorResult(tuple(checks + store_checks), leaks)


def _config(config_file: str | None) -> tuple[Check, Config]:
    try:
        config = find_config(config_file)
    except UsageError as exc:
        return _failed("config", exc), Config()
    where = str(config.path) if config.path else "none found (flags and environment)"
    return Check("config", Status.OK, where), config


def _cache(cache_dir: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Check:
    try:
        location = resolve_cache_dir(cache_dir, env)
    except UsageError as exc:
        return _failed("cache", exc)
    where, path = f"{location.path} ({location.reason})", location.path
    if not path.exists():
        return _warn(
            "cache",
            f"{where} does not exist yet",
            "a pull creates it; the Hub client reads the folder named here",
        )
    if not path.is_dir():
        hint = "pass --cache-dir"
        return _fail("cache", f"{where} is not a folder", hint, ExitCode.USAGE)
    try:
        repos = sum(RepoId.from_folder(e.name) is not None for e in path.iterdir())
    except OSError as exc:
        hint = "fix its permissions or pass --cache-dir"
        code = _os_code(exc)
        return _fail("cache", f"{where} cannot be read: {exc.strerror}", hint, code)
    if not os.access(path, os.W_OK):
        return _warn(
            "cache",
            f"{where}: {plural(repos, 'repo')}, not writable",
            "pull writes there: fix its permissions or pass --cache-dir",
        )
    return Check("cache", Status.OK, f"{where}: {plural(repos, 'repo')}")


def _offline(env: Mapping[str, str]) -> Check:
    found = [(name, env[name]) for name in OFFLINE_VARIABLES if name in env]
    if not found:
        return Check(
            "offline",
            Status.OK,
            "no offline variable set: the Hub client goes online for what the"
            ' cache lacks (for offline runs: eval "$(hubstash env)")',
        )
    shown = ", ".join(
        f"{name}={value} ({'on' if _truthy(value) else 'off'})" for name, value in found
    )
    # TRANSFORMERS_OFFLINE is the client's legacy spelling of HF_HUB_OFFLINE.
    hub_offline = any(
        _truthy(env.get(name, ""))
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    effect = "reads only the cache" if hub_offline else "may go online"
    return Check("offline", Status.OK, f"{shown}: the Hub client {effect}")


def _truthy(value: str) -> bool:
    return value.upper() in _TRUE


def _store_checks(
    flags: StoreFlags, config: Config, env: Mapping[str, str], check_write: bool
) -> tuple[list[Check], tuple[Leak, ...]]:
    try:
        url = store_url(flags, config, env)
        store = open_store(url, s3_options(flags, config, env)) if url else None
    except UsageError as exc:
        return [_failed("store", exc)], ()
    if store is None:
        hint = "pass --store URL, set HUBSTASH_STORE, or name it in hubstash.toml"
        return [_warn("store", "no store configured", hint)], ()
    source = _store_source(flags, config, env)
    checks = [Check("store", Status.OK, f"{store.url} (from {source})")]
    try:
        probed, leaks = _probe(store, check_write, flags.jobs)
    finally:
        store.close()
    return checks + probed, leaks


def _store_source(flags: StoreFlags, config: Config, env: Mapping[str, str]) -> str:
    if flags.url:
        return "--store"
    if env.get("HUBSTASH_STORE"):
        return "HUBSTASH_STORE"
    return str(config.path)


def _probe(
    store: Store, check_write: bool, jobs: int
) -> tuple[list[Check], tuple[Leak, ...]]:
    """Run the store checks in order; those that cannot work are skipped."""
    checks = _connection(store)
    if any(c.status is Status.FAIL for c in checks):
        return checks + _not_run(_STORE_CHECKS, "the store cannot be used"), ()
    read, marker = _read_marker(store)
    if read.code is ExitCode.UNREACHABLE:
        return [*checks, read, *_not_run(_STORE_CHECKS[1:], "unreachable")], ()
    listed, objects = _list(store)
    checks += [read, listed, _format(store, read, marker, objects)]
    checks.append(_write(store) if check_write else _write_skipped())
    secrets, leaks = _secrets(store, objects, jobs)
    return [*checks, secrets], leaks


def _not_run(names: Sequence[str], why: str) -> list[Check]:
    return [_skip(name, f"not checked: {why}") for name in names]


def _connection(store: Store) -> list[Check]:
    if isinstance(store, FolderStore):
        return [_folder(store.root)]
    checks = []
    if isinstance(store, S3Store):
        checks.append(_credentials(store))
        if checks[-1].status is Status.FAIL:
            return checks
    try:
        checks.append(Check("endpoint", Status.OK, store.describe()))
    except HubstashError as exc:
        checks.append(_failed("endpoint", exc))
    return checks


def _folder(root: Path) -> Check:
    if not root.exists():
        hint = "check the path; a push creates the folder"
        return _warn("folder", f"{root} does not exist yet", hint)
    if not root.is_dir():
        hint = "check the store path"
        return _fail("folder", f"{root} is not a folder", hint, ExitCode.USAGE)
    return Check("folder", Status.OK, f"{root} is a folder")


def _credentials(store: S3Store) -> Check:
    if store.options.no_sign_request:
        return Check("credentials", Status.OK, "none: unsigned requests")
    try:
        store.require_credentials()
    except HubstashError as exc:
        return _failed("credentials", exc)
    return Check("credentials", Status.OK, "found in the AWS chain")


def _read_marker(store: Store) -> tuple[Check, bytes | None]:
    try:
        data = store.read(layout.FORMAT_KEY)
    except NotFound:
        return _read_ok(f"{layout.FORMAT_KEY} is absent"), None
    except HubstashError as exc:
        return _failed("read", exc), None
    return _read_ok(f"read {layout.FORMAT_KEY}"), data


def _read_ok(detail: str) -> Check:
    return Check("read", Status.OK, f"reading works ({detail})")


def _list(store: Store) -> tuple[Check, list[StoreObject] | None]:
    try:
        objects = list(store.listing(""))
    except HubstashError as exc:
        return _failed("list", exc), None
    total = size(sum(o.size for o in objects))
    found = f"{plural(len(objects), 'object')} ({total})"
    listed = Check("list", Status.OK, f"listing works: {found}")
    return listed, objects


def _format(
    store: Store, read: Check, marker: bytes | None, objects: list[StoreObject] | None
) -> Check:
    if read.status is Status.FAIL:
        return _skip("format", f"not checked: {layout.FORMAT_KEY} could not be read")
    if marker is not None:
        try:
            layout.check_format_marker(marker, store.url)
        except HubstashError as exc:
            return _failed("format", exc)
        version = json.loads(marker)["version"]
        return Check("format", Status.OK, f"hubstash store, format {version}")
    return _unmarked(store, objects)


def _unmarked(store: Store, objects: list[StoreObject] | None) -> Check:
    """The verdict on a store without a format marker, from what it holds."""
    if not objects:
        hint = f"push to it: hubstash push --store {store.url}"
        return _warn("format", f"no {layout.FORMAT_KEY}: nothing pushed yet", hint)
    if synccopy.holds_cache(o.key for o in objects):
        return _fail(
            "format",
            f"no {layout.FORMAT_KEY}: {plural(len(objects), 'object')} that look like"
            " a copy of a Hugging Face cache (aws s3 sync)",
            f"adopt them: hubstash import {store.url} --store NEW-URL, then use"
            " NEW-URL as the store",
            ExitCode.INCOMPLETE,
        )
    return _fail(
        "format",
        f"no {layout.FORMAT_KEY}, but {plural(len(objects), 'other object')}: not"
        " a hubstash store",
        "check the store URL and its prefix",
        ExitCode.INCOMPLETE,
    )


def _write(store: Store) -> Check:
    payload = json.dumps(
        {"written-by": "hubstash doctor", "check": uuid.uuid4().hex}
    ).encode()
    try:
        store.write(WRITE_CHECK_KEY, payload)
        back = store.read(WRITE_CHECK_KEY)
    except HubstashError as exc:
        return _failed("write", exc)
    if back != payload:
        return _fail(
            "write",
            f"{WRITE_CHECK_KEY} read back other bytes than were written",
            "check the store's consistency and caching proxies",
        )
    return Check(
        "write",
        Status.OK,
        f"wrote and read back {WRITE_CHECK_KEY} (one object, replaced at each check)",
    )


def _write_skipped() -> Check:
    return _skip(
        "write",
        f"not checked (--check-write writes and reads back {WRITE_CHECK_KEY})",
    )


def _secrets(
    store: Store, objects: list[StoreObject] | None, jobs: int
) -> tuple[Check, tuple[Leak, ...]]:
    if objects is None:
        return _skip("secrets", "not checked: the store could not be listed"), ()
    scan = find_leaks(objects, store.read, secret_name=_secret_name, jobs=jobs)
    if scan.leaks:
        found = plural(len(scan.leaks), "object")
        message = f"{found} hold or are named like Hub tokens"
        return _fail("secrets", message, ROTATE_HINT), scan.leaks
    scanned = f"{plural(len(objects), 'object')} ({scan.read} small ones read)"
    if scan.unreadable:
        unread = plural(len(scan.unreadable), "small object")
        return _warn(
            "secrets",
            f"no Hub token in {scanned}; {unread} could not be read",
            "grant s3:GetObject on the whole store prefix",
        ), ()
    return Check("secrets", Status.OK, f"no Hub token in {scanned}"), ()


def _secret_name(key: str) -> str | None:
    """Why a store key names a secret; hubstash's own keys never do.

    A branch may well be called ``token``: ``repos/<repo>/refs/token`` is a ref.
    """
    if key == layout.FORMAT_KEY or key.startswith((layout.BLOBS, layout.REPOS)):
        return None
    return synccopy.secret_reason(key)


def _os_code(exc: OSError) -> ExitCode:
    return ExitCode.DENIED if isinstance(exc, PermissionError) else ExitCode.FAILURE


def _failed(name: str, exc: HubstashError) -> Check:
    return _fail(name, exc.message, exc.hint or "", exc.exit_code)


def _fail(
    name: str, message: str, hint: str, code: ExitCode = ExitCode.FAILURE
) -> Check:
    return Check(name, Status.FAIL, message, hint, code)


def _warn(name: str, message: str, hint: str) -> Check:
    return Check(name, Status.WARN, message, hint)


def _skip(name: str, message: str) -> Check:
    return Check(name, Status.SKIP, message)
