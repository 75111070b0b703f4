"""push, pull, verify and ls."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hubstash import output
from hubstash.cli import common
from hubstash.config import Config
from hubstash.errors import ExitCode, NoCredentials, UsageError
from hubstash.inventory import list_cache, list_store
from hubstash.lockfile import Lock, read_lock
from hubstash.locking import lock_matches_config
from hubstash.offline_env import append_to_github_env, offline_variables
from hubstash.patterns import FileFilter
from hubstash.pull import PullResult, pull, pull_locked
from hubstash.push import push
from hubstash.repos import RepoId, RepoSpec, parse_repo_spec
from hubstash.verify import verify, verify_locked


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_push(commands)
    _add_pull(commands)
    _add_verify(commands)
    _add_ls(commands)


def _add_push(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "push",
        help="save repos of the local cache into a store",
        description="Upload repos of the local Hub cache to a store: the named ones,"
        " else those of hubstash.toml, else the whole cache. Each distinct content"
        " is checked against its name and uploaded once; refs the store has are"
        " never moved unless --force-refs.",
    )
    p.add_argument("repos", nargs="*", metavar="REPO[@REV]", help=common.REPO_HELP)
    common.add_common(p)
    common.add_selection(p)
    p.add_argument(
        "--force-refs",
        action="store_true",
        help="move refs the store already has to the cache's commits",
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="read back and hash the blobs the store already has, and replace"
        " damaged ones with this cache's verified bytes",
    )
    p.set_defaults(run=_run_push)


def _add_pull(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "pull",
        help="restore repos from a store into the local cache",
        description="Restore repos into the local Hub cache, exactly as the Hub client"
        " writes it: the named ones, else those of hubstash.toml, else the whole"
        " store. Every byte is verified before it is renamed into place; what the"
        " cache has is skipped. With --locked, exactly the files of hubstash.lock.",
    )
    p.add_argument("repos", nargs="*", metavar="REPO[@REV]", help=common.REPO_HELP)
    common.add_common(p)
    common.add_selection(p)
    p.add_argument(
        "--copy",
        action="store_true",
        default=None,
        help="write real files in snapshots/ instead of links (for filesystems"
        " without symlinks; also chosen by HF_HUB_DISABLE_SYMLINKS=1)",
    )
    locked = p.add_argument_group("locked restores (CI)")
    locked.add_argument(
        "--locked",
        action="store_true",
        help="restore exactly hubstash.lock, each file checked against its hash; no"
        " request at all when the cache already has everything",
    )
    locked.add_argument("--lock", metavar="FILE", help="the lock file to use")
    locked.add_argument(
        "--frozen",
        action="store_true",
        help="fail when hubstash.toml and the lock disagree",
    )
    locked.add_argument(
        "--export-env",
        action="store_true",
        help="after a complete restore, append the offline variables to $GITHUB_ENV",
    )
    locked.add_argument(
        "--if-available",
        action="store_true",
        help="without any credentials (e.g. pull requests from forks), say so and"
        " exit 0 without touching the cache",
    )
    p.set_defaults(run=_run_pull)


def _add_verify(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "verify",
        help="check the local cache (against a store or the lock)",
        description="Hash every blob of the local cache against its name, check every"
        " snapshot link and ref; with --store, also report what the store has that"
        " the cache lacks; with --locked, check the cache against hubstash.lock,"
        " offline. Writes nothing.",
    )
    p.add_argument("repos", nargs="*", metavar="REPO[@REV]", help=common.REPO_HELP)
    common.add_common(p)
    p.add_argument("--locked", action="store_true", help="check against the lock")
    p.add_argument("--lock", metavar="FILE", help="the lock file to use")
    p.add_argument(
        "--strict",
        action="store_true",
        help="with --locked, also report files the lock does not name",
    )
    p.add_argument(
        "--deep",
        action="store_true",
        help="with --store, also read back and hash every object the store holds"
        " (for the named repos, else all), naming each damaged one",
    )
    p.set_defaults(run=_run_verify)


def _add_ls(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "ls",
        help="list what a store (or, with --cache-dir, the local cache) holds",
        description="List the repos of a store: revisions, refs, files and sizes."
        " With --cache-dir, list the local cache instead (--store and --cache-dir"
        " are alternatives).",
    )
    p.add_argument("repos", nargs="*", metavar="REPO", help=common.REPO_HELP)
    common.add_common(p)
    p.set_defaults(run=_run_ls)


def _run_push(args: argparse.Namespace) -> int:
    store = common.open_configured_store(args)
    specs, selections = _repos(args, common.config(args))
    common.announce_cache(args)
    result = push(
        store,
        args.cache_dir,
        specs,
        include=args.include,
        exclude=args.exclude,
        dry_run=args.dry_run,
        force_refs=args.force_refs,
        repair=args.repair,
        selections=selections,
        jobs=args.jobs,
        progress=common.progress(args),
    )
    summary = output.push_summary(result)
    return common.report(args, result, result.findings, summary, result.exit_code)


def _run_pull(args: argparse.Namespace) -> int:
    if args.locked:
        return _run_pull_locked(args)
    if args.frozen or args.export_env or args.if_available:
        raise UsageError("--frozen, --export-env and --if-available go with --locked")
    store = common.open_configured_store(args)
    specs, selections = _repos(args, common.config(args))
    common.announce_cache(args)
    result = pull(
        store,
        args.cache_dir,
        specs,
        include=args.include,
        exclude=args.exclude,
        copy=args.copy,
        dry_run=args.dry_run,
        selections=selections,
        jobs=args.jobs,
        progress=common.progress(args),
    )
    return _report_pull(args, result)


def _run_pull_locked(args: argparse.Namespace) -> int:
    if args.repos or args.include or args.exclude:
        raise UsageError(
            "--locked restores exactly the lock: name no repos or patterns"
        )
    project = common.config(args)
    lock = _lock(args, project)
    if args.export_env:
        _require_github_env()
    store = common.open_configured_store(args)
    common.announce_cache(args)
    try:
        result = pull_locked(
            store,
            lock,
            args.cache_dir,
            copy=args.copy,
            dry_run=args.dry_run,
            jobs=args.jobs,
            progress=common.progress(args),
        )
    except NoCredentials as exc:
        if not args.if_available:
            raise
        print(
            f"hubstash: {exc.message}: skipping the restore (--if-available)",
            file=sys.stderr,
        )
        return ExitCode.OK
    code = _report_pull(args, result)
    if args.export_env and code == ExitCode.OK and not args.dry_run:
        target = append_to_github_env(offline_variables(result.cache_dir))
        print(f"hubstash: offline variables appended to {target}", file=sys.stderr)
    return code


def _report_pull(args: argparse.Namespace, result: PullResult) -> int:
    summary = output.pull_summary(result)
    return common.report(args, result, result.findings, summary, result.exit_code)


def _run_verify(args: argparse.Namespace) -> int:
    if args.locked:
        return _run_verify_locked(args)
    if args.strict:
        raise UsageError("--strict goes with --locked")
    store = common.open_configured_store(args) if common.has_store(args) else None
    common.announce_cache(args)
    result = verify(
        args.cache_dir,
        args.repos,
        store=store,
        deep=args.deep,
        jobs=args.jobs,
        progress=common.progress(args),
    )
    summary = output.verify_summary(result)
    return common.report(args, result, result.findings, summary, result.exit_code)


def _run_verify_locked(args: argparse.Namespace) -> int:
    if args.deep:
        raise UsageError("--deep checks a store: it does not go with --locked")
    lock = _lock(args, common.config(args))
    common.announce_cache(args)
    result = verify_locked(
        lock,
        args.cache_dir,
        strict=args.strict,
        jobs=args.jobs,
        progress=common.progress(args),
    )
    summary = output.verify_summary(result)
    return common.report(args, result, result.findings, summary, result.exit_code)


def _run_ls(args: argparse.Namespace) -> int:
    if args.cache_dir is not None and args.store is not None:
        raise UsageError("--store and --cache-dir are alternatives: give one")
    if args.cache_dir is not None:
        common.announce_cache(args)
        repos, where = list_cache(args.cache_dir, args.repos), "the cache"
    else:
        store = common.open_configured_store(args)
        repos, where = list_store(store, args.repos, jobs=args.jobs), "the store"
    if args.json:
        print(output.to_json({"repos": list(repos)}))
    else:
        print("\n".join(output.inventory_lines(repos)) or f"{where} holds no repos")
    return ExitCode.OK


def _repos(
    args: argparse.Namespace, project: Config
) -> tuple[list[RepoSpec], dict[RepoId, FileFilter]]:
    """The named repos; else the configuration's, with their patterns; else none."""
    if args.repos:
        return [parse_repo_spec(r) for r in args.repos], {}
    specs = [w.spec for w in project.repos]
    return specs, {w.spec.repo: w.files for w in project.repos}


def _lock(args: argparse.Namespace, project: Config) -> Lock:
    path = project.lock_path if args.lock is None else Path(args.lock)
    lock = read_lock(path)
    if getattr(args, "frozen", False):
        problems = lock_matches_config(lock, project)
        if problems:
            raise UsageError(
                f"{path} does not match the configuration: {'; '.join(problems)}",
                hint="run hubstash lock and commit the result",
            )
    return lock


def _require_github_env() -> None:
    if not os.environ.get("GITHUB_ENV"):
        raise UsageError(
            "--export-env appends to $GITHUB_ENV, which is not set here",
            hint='outside GitHub Actions use: eval "$(hubstash env)"',
        )
