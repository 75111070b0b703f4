"""stats, prune and gc: running a store (and pruning the local cache).

The deleting commands plan first and print the plan; ``--dry-run`` stops there.
Otherwise they ask on the terminal, unless ``--yes``; without a terminal and without
``--yes`` they refuse.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from hubstash import output
from hubstash.cacheprune import CachePrunePlan, apply_cache_prune, plan_cache_prune
from hubstash.cli import common
from hubstash.errors import ExitCode, UsageError
from hubstash.gc import DEFAULT_GRACE, GcPlan, GcResult, plan_gc, run_gc
from hubstash.lockfile import Lock, read_lock
from hubstash.prune import (
    PrunedRevision,
    StorePrunePlan,
    apply_store_prune,
    plan_store_prune,
)
from hubstash.stats import DEFAULT_PRICE_PER_GB, StoreStats, store_stats

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``stats``, ``prune`` and ``gc``."""
    _add_stats(commands)
    _add_prune(commands)
    _add_gc(commands)


def _add_stats(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "stats",
        help="what a store holds and costs",
        description="Count a store's objects and bytes, what storing each content"
        " once saves over a plain copy, its monthly cost, and what a full pull"
        " downloads. Reads every manifest; writes nothing.",
    )
    common.add_common(p, cache=False)
    _add_price(p)
    p.set_defaults(run=_run_stats)


def _add_prune(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "prune",
        help="remove revisions no lockfile needs, from a store or the local cache",
        description="Remove the revisions no given lockfile pins and (with"
        " --keep-refs) no ref names: from a store, their manifests and refs (then"
        " run gc for the blobs); from the local cache (--cache-dir), their"
        " snapshots, refs and the blobs nothing else uses. Prints the plan, then"
        " asks unless --yes.",
    )
    common.add_common(p)
    p.add_argument(
        "--keep-locked",
        action="extend",
        nargs="+",
        default=[],
        metavar="LOCK",
        help="keep every revision this hubstash.lock pins (repeatable)",
    )
    p.add_argument(
        "--keep-refs",
        action="store_true",
        help="keep every revision a ref (branch, tag, PR) names, and the refs",
    )
    _add_deleting(p)
    _add_price(p)
    p.set_defaults(run=_run_prune)


def _add_gc(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "gc",
        help="delete the blobs of a store no manifest names",
        description="Delete the blobs no manifest names and older than --grace."
        " Safe while others push: a push in progress announces the blobs it uses,"
        " and gc leaves them alone (see the README, 'Deleting: prune and gc')."
        " Prints the plan, then asks unless --yes.",
    )
    common.add_common(p, cache=False)
    p.add_argument(
        "--grace",
        type=duration,
        default=DEFAULT_GRACE,
        metavar="AGE",
        help="keep blobs written less than AGE ago: 30m, 12h, 7d (default), 2w, 0",
    )
    _add_deleting(p)
    _add_price(p)
    p.set_defaults(run=_run_gc)


def _add_deleting(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan, delete nothing"
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="delete without asking (needed without a terminal)",
    )


def _add_price(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--price-per-gb",
        type=price,
        default=DEFAULT_PRICE_PER_GB,
        metavar="USD",
        help="storage price per GB (10^9 bytes) and month, for the costs shown"
        f" (default {DEFAULT_PRICE_PER_GB}, S3 Standard)",
    )


def _run_stats(args: argparse.Namespace) -> int:
    stats = store_stats(
        common.open_configured_store(args),
        price_per_gb=args.price_per_gb,
        jobs=args.jobs,
    )
    print(output.to_json(stats) if args.json else "\n".join(stats_lines(stats)))
    return ExitCode.OK


def _run_prune(args: argparse.Namespace) -> int:
    locks = [read_lock(Path(path)) for path in args.keep_locked]
    if args.cache_dir is None:
        return _prune_store(args, locks)
    if args.store is not None:
        raise UsageError("--store and --cache-dir are alternatives: give one")
    return _prune_cache(args, locks)


def _prune_store(args: argparse.Namespace, locks: list[Lock]) -> int:
    store = common.open_configured_store(args)
    plan = plan_store_prune(
        store,
        locks,
        keep_refs=args.keep_refs,
        price_per_gb=args.price_per_gb,
        jobs=args.jobs,
    )

    def delete() -> tuple[list[str], object]:
        apply_store_prune(store, plan)
        return store_prune_lines(plan, done=True), None

    return _carry_out(args, plan, store_prune_lines(plan, done=False), delete)


def _prune_cache(args: argparse.Namespace, locks: list[Lock]) -> int:
    common.announce_cache(args)
    plan = plan_cache_prune(args.cache_dir, locks, keep_refs=args.keep_refs)

    def delete() -> tuple[list[str], object]:
        apply_cache_prune(plan)
        return cache_prune_lines(plan, done=True), None

    return _carry_out(args, plan, cache_prune_lines(plan, done=False), delete)


def _run_gc(args: argparse.Namespace) -> int:
    store = common.open_configured_store(args)
    plan = plan_gc(
        store,
        grace_seconds=args.grace,
        price_per_gb=args.price_per_gb,
        jobs=args.jobs,
    )

    def delete() -> tuple[list[str], object]:
        result = run_gc(store, plan, jobs=args.jobs)
        return gc_result_lines(result), result

    return _carry_out(args, plan, gc_plan_lines(plan), delete)


def _carry_out(
    args: argparse.Namespace,
    plan: StorePrunePlan | CachePrunePlan | GcPlan,
    lines: list[str],
    delete: Callable[[], tuple[list[str], object]],
) -> int:
    """Show the plan; unless it is a dry run or empty, confirm and delete.

    Text goes to stdout; with ``--json`` it goes to stderr and stdout gets one
    document: the plan, whether it was a dry run, and what was done.
    """
    shown = sys.stderr if args.json else sys.stdout
    print("\n".join(lines), file=shown)
    if args.dry_run or not _deletes_anything(plan):
        _print_json(args, plan, dry_run=args.dry_run)
        return ExitCode.OK
    if not _confirmed(args):
        print("hubstash: nothing deleted", file=sys.stderr)
        return ExitCode.FAILURE
    done, result = delete()
    print("\n".join(done), file=shown)
    _print_json(args, plan, dry_run=False, result=result)
    return ExitCode.OK


def _deletes_anything(plan: StorePrunePlan | CachePrunePlan | GcPlan) -> bool:
    if isinstance(plan, StorePrunePlan):
        return bool(plan.keys)
    if isinstance(plan, CachePrunePlan):
        return bool(plan.paths)
    return bool(plan.blobs or plan.records)


def _confirmed(args: argparse.Namespace) -> bool:
    """Whether the user agreed; raises when there is no one to ask.

    Raises:
        UsageError: no ``--yes`` and no terminal.
    """
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            "refusing to delete without confirmation, and there is no terminal to"
            " ask on",
            hint="pass --yes to delete, or --dry-run to only see the plan",
        )
    print("delete? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _print_json(
    args: argparse.Namespace,
    plan: object,
    *,
    dry_run: bool,
    result: object = None,
) -> None:
    if args.json:
        document = {"dry_run": dry_run, "plan": plan}
        if result is not None:
            document["result"] = result
        print(output.to_json(document))


def stats_lines(stats: StoreStats) -> list[str]:
    """``hubstash stats`` for people."""
    share = stats.saved_bytes / stats.logical_bytes if stats.logical_bytes else 0.0
    return [
        f"store          {stats.store}",
        f"objects        {stats.objects:,}, {nbytes(stats.stored_bytes)}",
        f"blobs          {stats.blobs:,}, {nbytes(stats.blob_bytes)}",
        f"repos          {output.plural(stats.repos, 'repo')},"
        f" {output.plural(stats.revisions, 'revision')}",
        f"logical size   {nbytes(stats.logical_bytes)}: every revision's files, as a"
        " copy that follows links stores them",
        f"deduplication  saves {nbytes(stats.saved_bytes)}, {share:.1%} of the"
        f" logical size: distinct contents are {nbytes(stats.unique_bytes)}",
        f"monthly cost   {dollars(stats.monthly_cost)} at"
        f" ${stats.price_per_gb:g} per GB",
        f"full pull      {output.plural(stats.pull_blobs, 'blob')},"
        f" {nbytes(stats.pull_bytes)}",
        f"unreferenced   {output.plural(stats.unreferenced_blobs, 'blob')},"
        f" {nbytes(stats.unreferenced_bytes)} (hubstash gc deletes them)",
    ]


def store_prune_lines(plan: StorePrunePlan, *, done: bool) -> list[str]:
    """``hubstash prune --store`` for people: the plan, or what was done."""
    if not plan.keys:
        return [f"nothing to remove from {plan.store}: {_kept(plan.kept)}"]
    verb = "removed" if done else "would remove"
    lines = [
        f"{verb} {output.plural(len(plan.removed), 'revision')} from {plan.store}:"
        f" {plan_objects(len(plan.keys))}, {nbytes(plan.key_bytes)};"
        f" {_kept(plan.kept)}",
    ]
    if not done:
        lines += _revision_lines(plan.removed)
    return [*lines, _gc_hint(plan)]


def _gc_hint(plan: StorePrunePlan) -> str:
    return (
        f"hubstash gc can then delete {output.plural(plan.freed_blobs, 'blob')} only"
        f" they use, {nbytes(plan.freed_bytes)}; saving in all"
        f" {dollars(plan.monthly_saving)} a month at ${plan.price_per_gb:g} per GB"
    )


def cache_prune_lines(plan: CachePrunePlan, *, done: bool) -> list[str]:
    """``hubstash prune --cache-dir`` for people: the plan, or what was done."""
    if not plan.paths:
        return [
            f"nothing to remove from the cache {plan.cache_dir}: {_kept(plan.kept)}"
        ]
    verb = "removed" if done else "would remove"
    lines = [
        f"{verb} {output.plural(len(plan.removed), 'revision')} from the cache"
        f" {plan.cache_dir}, freeing {nbytes(plan.freed_bytes)}; {_kept(plan.kept)}",
    ]
    return lines if done else lines + _revision_lines(plan.removed)


def gc_plan_lines(plan: GcPlan) -> list[str]:
    """``hubstash gc`` for people: the plan."""
    lines = [
        f"would delete {output.plural(len(plan.blobs), 'blob')} no manifest names,"
        f" {nbytes(plan.bytes)}, saving {dollars(plan.monthly_saving)} a month at"
        f" ${plan.price_per_gb:g} per GB",
        f"keeps {output.plural(plan.referenced_blobs, 'blob')} manifests name,"
        f" {plan.young_blobs:,} younger than {age(plan.grace_seconds)}"
        f" ({nbytes(plan.young_bytes)}), {plan.pending_blobs:,} that pushes in"
        f" progress use ({nbytes(plan.pending_bytes)})",
    ]
    if plan.records:
        lines.append(
            f"also deletes {output.plural(len(plan.records), 'record')} of pushes or"
            " gcs that stopped"
        )
    return lines


def gc_result_lines(result: GcResult) -> list[str]:
    """``hubstash gc`` for people: what was done."""
    return [
        f"deleted {output.plural(result.deleted_blobs, 'blob')},"
        f" {nbytes(result.deleted_bytes)}, saving {dollars(result.monthly_saving)} a"
        f" month; {result.spared_blobs:,} spared for pushes that began meanwhile"
        f" [{result.seconds:.1f} s]"
    ]


def plan_objects(n: int) -> str:
    return f"{n:,} {'ref or manifest' if n == 1 else 'refs and manifests'}"


def _kept(revisions: int) -> str:
    return f"{output.plural(revisions, 'revision')} kept"


def _revision_lines(revisions: tuple[PrunedRevision, ...]) -> list[str]:
    return [
        f"  {r.repo}  {r.commit[:12]}  {', '.join(r.refs) or '-'}"
        f"  {output.plural(r.files, 'file')}  {output.size(r.size)}"
        for r in revisions
    ]


def nbytes(n: int) -> str:
    """Exact bytes, and their binary size from 1 KiB: ``1,536 bytes (1.5 KiB)``."""
    exact = f"{n:,} {'byte' if n == 1 else 'bytes'}"
    return exact if n < 1024 else f"{exact} ({output.size(n)})"


def dollars(amount: float) -> str:
    """``$4.20``; amounts under a cent say so instead of rounding to nothing."""
    if 0 < amount < 0.01:
        return "under $0.01"
    return f"${amount:,.2f}"


def age(seconds: float) -> str:
    """``7d``, ``12h``, ``30m``, ``45s``: the largest unit that divides it."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds / _UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"


def duration(text: str) -> float:
    """Seconds from ``30m``, ``12h``, ``7d``, ``2w``, ``45s`` or ``0``."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw]?)", text.strip())
    if match is None or (match[2] == "" and float(match[1]) != 0):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an age: use a number and a unit, e.g. 30m, 12h, 7d"
        )
    return float(match[1]) * _UNITS.get(match[2], 1)


def price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a price") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a price cannot be negative")
    return value
