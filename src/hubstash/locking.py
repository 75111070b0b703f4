"""``hubstash lock``: resolve the wanted repos to commits and content hashes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from hubstash.cache import scan_cache
from hubstash.cache_location import resolve_cache_dir
from hubstash.cachecontent import read_content
from hubstash.config import Config, WantedRepo
from hubstash.errors import IntegrityError, NotFound, UsageError
from hubstash.lockfile import Lock, LockedRepo, write_lock
from hubstash.manifest import Manifest
from hubstash.progress import SILENT, Progress
from hubstash.stores import Store
from hubstash.storeview import StoreView
from hubstash.transfer import DEFAULT_JOBS


@dataclass(frozen=True)
class LockResult:
    """What ``lock`` wrote."""

    path: Path
    lock: Lock
    changed: bool
    source: str


def lock(
    config: Config,
    *,
    store: Store | None = None,
    cache_dir: str | Path | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = SILENT,
) -> LockResult:
    """Pin every repo of the configuration to a commit and its files' hashes.

    Resolves from the local cache (hashing every file it locks), or from the store
    when one is given. The lock file is written only when its content changes.

    Raises:
        UsageError: the configuration names no repos.
        NotFound: a wanted repo or revision is neither where it was looked for.
        IntegrityError: the cache holds corrupt content for a wanted file.
    """
    if not config.repos:
        raise UsageError(
            "the configuration names no repos to lock",
            hint="add some with: hubstash add org/name",
        )
    if store is not None:
        view = StoreView(store, jobs)
        view.require_format()
        locked = [_from_store(view, wanted) for wanted in config.repos]
        source = store.url
    else:
        root = resolve_cache_dir(cache_dir).path
        locked = [_from_cache(root, wanted, jobs, progress) for wanted in config.repos]
        source = str(root)
    result = Lock(tuple(sorted(locked, key=LockedRepo.key)))
    changed = write_lock(result, config.lock_path)
    return LockResult(config.lock_path, result, changed, source)


def _from_store(view: StoreView, wanted: WantedRepo) -> LockedRepo:
    commit = view.resolve(wanted.spec)
    return _locked(wanted, view.manifest(wanted.spec.repo, commit))


def _from_cache(
    root: Path, wanted: WantedRepo, jobs: int, progress: Progress
) -> LockedRepo:
    try:
        scan = scan_cache(root, (wanted.spec,))
    except NotFound as exc:
        hint = f"pull it, or fetch it from the Hub with: hubstash add {wanted.spec}"
        raise NotFound(exc.message, hint=hint) from exc
    content = read_content(scan, wanted.files, jobs=jobs, progress=progress)
    if content.findings:
        first = content.findings[0]
        raise IntegrityError(
            f"cannot lock {wanted.spec}: {first}",
            path=first.path,
            expected=first.expected,
            actual=first.actual,
        )
    (manifest,) = content.manifests
    _refuse_partial(scan.repos[0].tree_names(manifest.commit), wanted, manifest)
    return _locked(wanted, manifest)


def _refuse_partial(
    listed: Mapping[str, str], wanted: WantedRepo, manifest: Manifest
) -> None:
    """Refuse to pin a snapshot its own tree listing shows incomplete.

    An interrupted download leaves some files of a commit; locking those would
    make every later pull restore the same hole.
    """
    have = {f.path for f in manifest.files}
    missing = sorted(p for p in listed if wanted.files.accepts(p) and p not in have)
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise NotFound(
            f"{wanted.spec}: the cached snapshot lacks {len(missing)} of its files"
            f" ({shown})",
            hint=f"download it again (hubstash add {wanted.spec}), then lock",
        )


def _locked(wanted: WantedRepo, manifest: Manifest) -> LockedRepo:
    files = tuple(
        replace(f, mtime_ns=None)
        for f in manifest.files
        if wanted.files.accepts(f.path)
    )
    if not files:
        raise NotFound(
            f"{wanted.spec}: no files match its include and exclude patterns"
        )
    return LockedRepo(
        repo=wanted.spec.repo,
        revision=wanted.revision,
        commit=manifest.commit,
        include=wanted.include,
        exclude=wanted.exclude,
        files=files,
        tree=manifest.tree,
    )


def lock_matches_config(lock_file: Lock, config: Config) -> list[str]:
    """How the lock and the configuration disagree (empty when they agree)."""
    wanted = {w.key(): w for w in config.repos}
    locked = {r.key(): r for r in lock_file.repos}
    problems = [
        f"{_name(k)} is configured but not locked"
        for k in wanted.keys() - locked.keys()
    ]
    problems += [
        f"{_name(k)} is locked but not configured"
        for k in locked.keys() - wanted.keys()
    ]
    for key in wanted.keys() & locked.keys():
        w, r = wanted[key], locked[key]
        if (w.include, w.exclude) != (r.include, r.exclude):
            problems.append(
                f"{_name(key)}: patterns differ between configuration and lock"
            )
    return sorted(problems)


def _name(key: tuple[str, str, str]) -> str:
    kind, repo_id, revision = key
    prefix = "" if kind == "model" else f"{kind}s/"
    return f"{prefix}{repo_id}@{revision}"
