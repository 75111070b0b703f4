"""lock and env: pinning the known-good set, and the variables for offline runs."""

from __future__ import annotations

import argparse
import sys

from hubstash.cache_location import resolve_cache_dir
from hubstash.cli import common
from hubstash.errors import ExitCode
from hubstash.locking import lock
from hubstash.offline_env import (
    FORMATS,
    append_to_github_env,
    offline_variables,
    render,
)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_lock(commands)
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


def _run_env(args: argparse.Namespace) -> int:
    variables = offline_variables(resolve_cache_dir(args.cache_dir).path)
    if args.format == "github":
        target = append_to_github_env(variables)
        print(f"hubstash: offline variables appended to {target}", file=sys.stderr)
    else:
        sys.stdout.write(render(variables, args.format))
    return ExitCode.OK
