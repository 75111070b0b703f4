"""lock, add and env: pinning the known-good set, and the variables for offline runs."""

from __future__ import annotations

import argparse
import sys

from hubstash import output
from hubstash.adding import AddResult, add
from hubstash.cache_location import resolve_cache_dir
from hubstash.cli import common
from hubstash.errors import ExitCode
from hubstash.locking import LockResult, lock
from hubstash.offline_env import (
    FORMATS,
    append_to_github_env,
    offline_variables,
    render,
)
from hubstash.progress import SILENT


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_lock(commands)
    _add_add(commands)
    _add_env(commands)


def _add_lock(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "lock",
        help="pin hubstash.toml's repos to commits and hashes in hubstash.lock",
        description="Resolve every repo of hubstash.toml (or [tool.hubstash]) to a"
        " commit and its files (path, blob name, size, SHA-256), and write"
        " hubstash.lock beside it. Resolves from the local cache, hashing every file,"
        " or from the store with --from-store.",
    )
    common.add_common(p)
    p.add_argument(
        "--from-store",
        action="store_true",
        help="resolve from the store's refs and manifests instead of the cache",
    )
    p.set_defaults(run=_run_lock)


def _add_add(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "add",
        help="add a Hub repo: download it, push it, configure and lock it",
        description="Add REPO[@REV] to hubstash.toml ([tool.hubstash] of"
        " pyproject.toml when that is the configuration; a new hubstash.toml in the"
        " working folder when there is none), keeping the file's comments; a repo"
        " already there at that revision gets the new patterns. Unless --no-download"
        " or HF_HUB_OFFLINE=1: download it from the Hub (HF_ENDPOINT, HF_TOKEN) into"
        " the cache with huggingface_hub, waiting out rate limits, and push exactly"
        " that repo to the store. Then re-lock every configured repo, from the cache"
        " or else the store. A failed or incomplete download is never pushed and"
        " changes no file.",
    )
    p.add_argument(
        "repo",
        metavar="REPO[@REV]",
        help="as the Hub names it: org/name, datasets/org/name, spaces/...,"
        " kernels/...; @REV is a branch, tag or commit (default main)",
    )
    common.add_common(p)
    common.add_patterns(p)
    p.add_argument(
        "--no-download",
        action="store_true",
        help="ask nothing of the Hub: only write the configuration and the lock",
    )
    p.set_defaults(run=_run_add)


def _add_env(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "env",
        help="print the variables for offline runs",
        description="Print the environment that makes Hugging Face libraries use the"
        " cache alone: HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1, TRANSFORMERS_OFFLINE=1,"
        ' HF_HUB_CACHE and telemetry off. Use: eval "$(hubstash env)". With'
        " --format github the variables are appended to $GITHUB_ENV.",
    )
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the Hub cache (default: found as huggingface_hub finds it)",
    )
    p.add_argument("--format", choices=FORMATS, default="sh", help="default: sh")
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=_run_env)


def _run_lock(args: argparse.Namespace) -> int:
    project = common.config(args)
    store = common.open_configured_store(args) if args.from_store else None
    result = lock(
        project,
        store=store,
        cache_dir=args.cache_dir,
        jobs=args.jobs,
        progress=common.progress(args),
    )
    files = sum(len(r.files) for r in result.lock.repos)
    state = "wrote" if result.changed else "unchanged:"
    summary = (
        f"{state} {result.path}: {len(result.lock.repos)} repos, {files} files,"
        f" resolved from {result.source}"
    )
    return common.report(args, result, (), summary, ExitCode.OK)


def _run_add(args: argparse.Namespace) -> int:
    store = common.open_configured_store(args) if common.has_store(args) else None
    common.announce_cache(args)
    bars = common.progress(args)
    result = add(
        common.config(args),
        args.repo,
        args.include,
        args.exclude,
        store=store,
        cache_dir=args.cache_dir,
        download=not args.no_download,
        hub_progress=bars is not SILENT,
        jobs=args.jobs,
        progress=bars,
    )
    for notice in result.notices:
        print(f"hubstash: {notice}", file=sys.stderr)
    findings = result.push.findings if result.push is not None else ()
    summary = "\n".join(_add_lines(result))
    return common.report(args, result, findings, summary, result.exit_code)


def _add_lines(result: AddResult) -> list[str]:
    lines = [_config_line(result)]
    if result.commit is not None:
        waited = sum(result.rate_limit_waits)
        rate = f" (waited {waited:.0f} s for rate limits)" if waited else ""
        lines.append(f"downloaded {result.repo.spec}: commit {result.commit}{rate}")
    if result.push is not None:
        lines.append(output.push_summary(result.push))
    if result.lock is not None:
        lines.append(_lock_line(result.lock))
    return lines


def _config_line(result: AddResult) -> str:
    wanted, path = result.repo, result.config_path
    selection = [f"--include {p}" for p in wanted.include]
    selection += [f"--exclude {p}" for p in wanted.exclude]
    files = " ".join(selection) or "every file"
    if result.config_change == "added":
        return f"added {wanted.spec} ({files}) to {path}"
    if result.config_change == "updated":
        return f"updated {wanted.spec} in {path}: {files}"
    return f"{path} unchanged"


def _lock_line(result: LockResult) -> str:
    files = sum(len(r.files) for r in result.lock.repos)
    state = "wrote" if result.changed else "unchanged:"
    return (
        f"{state} {result.path}: {len(result.lock.repos)} repos, {files} files,"
        f" resolved from {result.source}"
    )


def _run_env(args: argparse.Namespace) -> int:
    variables = offline_variables(resolve_cache_dir(args.cache_dir).path)
    if args.format == "github":
        target = append_to_github_env(variables)
        print(f"hubstash: offline variables appended to {target}", file=sys.stderr)
    else:
        sys.stdout.write(render(variables, args.format))
    return ExitCode.OK
