"""Benchmark hubstash against aws s3 sync and s5cmd on one synthetic Hub cache.

For each client, on the same cache and the same local S3 server: a cold upload, a
no-op upload, a cold download into an empty folder and a no-op download into the same
folder. Progress goes to stderr, the tables to stdout, every figure to a JSON file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from bench.bucket import clear_prefix, create_bucket, prefix_usage, s3_client
from bench.clients import CLIENT_NAMES, Client, Target, make_clients
from bench.procs import Measured, process_peak_rss_mib, run_measured
from bench.report import (
    PHASES,
    PhaseResult,
    Summary,
    render_cache_line,
    render_restore_details,
    render_table,
    summarize,
    write_json,
)
from bench.sandbox import isolated_env
from bench.servers import SERVERS, Server, ServerError, running_server
from bench.synthcache import SCALES, Scale, build_cache
from bench.treecheck import (
    ContentHasher,
    RestoreCheck,
    Tree,
    TreeStats,
    compare_trees,
    disk_usage,
    snapshot_tree,
    tree_stats,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "bench"
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
EXIT_INTERRUPTED = 130
VERSION_TIMEOUT_S = 60
BUSY_LOAD = 0.5


@dataclass(frozen=True)
class Options:
    scale: Scale
    server: str
    repeat: int
    clients: tuple[str, ...]
    jobs: int
    s5cmd_workers: int | None
    out: Path
    tmp_dir: Path | None
    keep_logs: bool
    bin_dir: Path
    hubstash: Path | None


@dataclass(frozen=True)
class Machine:
    cpus: int
    platform: str
    load_before: float  # 1-minute load average when the run started
    load_after: float


@dataclass(frozen=True)
class Outcome:
    """Everything one run measured; written out as the JSON file."""

    started: str
    options: Options
    machine: Machine
    server: Server
    server_peak_rss_mib: float
    versions: dict[str, str]
    cache: TreeStats
    skipped: dict[str, str]  # client -> why it could not run
    source_changed_by: list[str]  # clients that wrote into the source cache
    summaries: list[Summary]
    results: list[PhaseResult]


@dataclass(frozen=True)
class Bench:
    """Everything a phase needs: where things live and what the source looks like."""

    scratch: Path
    env: Mapping[str, str]
    server: Server
    s3: S3Client
    target: Target
    source: Tree
    hasher: ContentHasher  # remembers the source's digests between checks


def main(argv: Sequence[str]) -> int:
    """Run the benchmark; returns the process exit status."""
    options = parse_args(argv)
    try:
        with _signals_as_interrupts(), _scratch_folder(options.tmp_dir) as scratch:
            return _run(options, scratch)
    except KeyboardInterrupt:
        _say("interrupted: server stopped, temporary files removed")
        return EXIT_INTERRUPTED
    except ServerError as error:
        _say(f"the {options.server} server did not start: {error}")
        return 1


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark hubstash against aws s3 sync and s5cmd on a local S3.",
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--server", choices=sorted(SERVERS), default="localbucket")
    parser.add_argument("--repeat", type=_positive, default=1, metavar="N")
    parser.add_argument(
        "--clients",
        type=_client_list,
        default=CLIENT_NAMES,
        help=f"comma-separated subset of {','.join(CLIENT_NAMES)} (default: all)",
    )
    parser.add_argument("--jobs", type=_positive, default=16, help="hubstash --jobs")
    parser.add_argument(
        "--s5cmd-workers",
        type=_positive,
        default=None,
        metavar="N",
        help="s5cmd --numworkers (default: s5cmd's own, 256)",
    )
    parser.add_argument(
        "--hubstash",
        type=Path,
        default=None,
        help="hubstash executable to measure (default: the one beside this Python)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--tmp-dir", type=Path, default=None)
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="copy every command's stdout/stderr and the server log next to the JSON",
    )
    args = parser.parse_args(argv)
    return Options(
        scale=SCALES[args.scale],
        server=args.server,
        repeat=args.repeat,
        clients=args.clients,
        jobs=args.jobs,
        s5cmd_workers=args.s5cmd_workers,
        out=args.out,
        tmp_dir=args.tmp_dir,
        keep_logs=args.keep_logs,
        bin_dir=Path(sys.prefix) / "bin",
        hubstash=args.hubstash.absolute() if args.hubstash else None,
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _client_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in CLIENT_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(CLIENT_NAMES)}")
    return names


def _run(options: Options, scratch: Path) -> int:
    _isolate_this_process(scratch)
    outcome = _benchmark(options, scratch)
    _print_outcome(outcome)
    name = f"{outcome.started}-{options.scale.name}-{options.server}"
    _say(f"results written to {write_json(options.out, f'{name}.json', outcome)}")
    if options.keep_logs:
        _keep_logs(scratch, outcome.server, options.out / f"{name}-logs")
    if not outcome.summaries:
        _say("no client completed a phase")
        return 1
    return 0


def _isolate_this_process(scratch: Path) -> None:
    """The harness's own boto3 calls get the same isolation as the clients."""
    os.environ.clear()
    os.environ.update(isolated_env(scratch))


def _benchmark(options: Options, scratch: Path) -> Outcome:
    started, load_before = _now(), _load_average()
    cache = scratch / "hub"
    hasher = ContentHasher()
    source = _build_source(options.scale, cache, hasher)
    clients, skipped = _available_clients(options)
    env = isolated_env(scratch)
    with running_server(options.server, options.bin_dir, scratch, env) as server:
        bench = _prepare(options, scratch, server, cache, (source, hasher))
        versions = _tool_versions(clients, bench)
        results, changed_by = _bench_clients(clients, bench, options.repeat)
        server_peak = process_peak_rss_mib(server.pid)

    return Outcome(
        started=started,
        options=options,
        machine=_machine(load_before),
        server=server,
        server_peak_rss_mib=server_peak,
        versions=versions,
        cache=tree_stats(cache, source),
        skipped=skipped,
        source_changed_by=changed_by,
        summaries=summarize(results),
        results=results,
    )


def _print_outcome(outcome: Outcome) -> None:
    server = outcome.server
    print(render_cache_line(outcome.cache))
    print(
        f"server: {server.name} {server.version}, "
        f"peak RSS {outcome.server_peak_rss_mib:.0f} MiB"
    )
    print(render_table(outcome.summaries))
    print(render_restore_details(outcome.summaries))
    _warn_if_busy(outcome.machine.load_before)


def _machine(load_before: float) -> Machine:
    return Machine(
        cpus=os.cpu_count() or 0,
        platform=platform.platform(),
        load_before=load_before,
        load_after=_load_average(),
    )


def _keep_logs(scratch: Path, server: Server, dest: Path) -> None:
    shutil.copytree(scratch / "logs", dest)
    shutil.copy2(server.log, dest / server.log.name)
    _say(f"logs kept in {dest}")


def _build_source(scale: Scale, cache: Path, hasher: ContentHasher) -> Tree:
    _say(f"building the {scale.name} synthetic cache in {cache}")
    build_cache(cache, scale)
    source = snapshot_tree(cache, hasher)
    _say(render_cache_line(tree_stats(cache, source)))
    return source


def _available_clients(options: Options) -> tuple[list[Client], dict[str, str]]:
    clients = make_clients(options.clients, options.bin_dir, options.hubstash)
    skipped = {c.name: c.missing_reason() for c in clients if c.missing_reason()}
    for name, reason in skipped.items():
        _say(f"{name}: skipped, {reason}")
    return [c for c in clients if c.name not in skipped], skipped


def _prepare(
    options: Options,
    scratch: Path,
    server: Server,
    cache: Path,
    source: tuple[Tree, ContentHasher],
) -> Bench:
    _say(
        f"{server.name} {server.version} ready at {server.endpoint} (pid {server.pid})"
    )
    s3 = s3_client(server.endpoint)
    create_bucket(s3, BUCKET)
    (scratch / "logs").mkdir()
    return Bench(
        scratch=scratch,
        env=isolated_env(scratch, server.endpoint),
        server=server,
        s3=s3,
        target=Target(
            server.endpoint, BUCKET, cache, options.jobs, options.s5cmd_workers
        ),
        source=source[0],
        hasher=source[1],
    )


def _bench_clients(
    clients: Sequence[Client], bench: Bench, repeats: int
) -> tuple[list[PhaseResult], list[str]]:
    """Run every client ``repeats`` times; a client that fails once is dropped."""
    results: list[PhaseResult] = []
    failed: set[str] = set()
    changed_by: list[str] = []
    for repeat in range(repeats):
        for client in (c for c in clients if c.name not in failed):
            runs = _bench_client(client, bench, repeat)
            results.extend(runs)
            if not all(r.run.ok for r in runs):
                failed.add(client.name)
            if _source_changed(bench):
                changed_by.append(client.name)
    return results, changed_by


def _bench_client(client: Client, bench: Bench, repeat: int) -> list[PhaseResult]:
    """The four phases, in order, from an empty prefix into a fresh folder."""
    clear_prefix(bench.s3, BUCKET, client.prefix)
    dest = bench.scratch / f"restore-{client.name}-{repeat}"
    dest.mkdir()
    runs: list[PhaseResult] = []
    try:
        for phase in PHASES:
            runs.append(_run_phase(client, phase, bench, repeat, dest))
            if not runs[-1].run.ok:
                _report_failure(client, phase, runs[-1].run)
                break
        else:
            if client.name == "hubstash":
                runs.append(_run_locked_no_op(client, bench, repeat, dest))
    finally:
        # Restored copies can take gigabytes; only the figures are kept.
        _remove_tree(dest)
    return runs


def _run_phase(
    client: Client, phase: str, bench: Bench, repeat: int, dest: Path
) -> PhaseResult:
    upload = phase.endswith("upload")
    argv = client.push(bench.target) if upload else client.pull(bench.target, dest)
    stem = bench.scratch / "logs" / f"{client.name}-{repeat}-{phase.replace(' ', '-')}"
    # Dirty pages left by the previous phase would throttle this one's writes.
    os.sync()
    run = _measure(argv, bench, stem)
    ok = run.ok
    bucket = prefix_usage(bench.s3, BUCKET, client.prefix) if upload and ok else None
    restore = _check_restore(bench.source, dest) if ok and not upload else None
    result = PhaseResult(client.name, phase, repeat, run, bucket, restore)
    _say(_progress_line(result))
    return result


LOCKED_PHASE = "locked no-op"


def _run_locked_no_op(
    client: Client, bench: Bench, repeat: int, dest: Path
) -> PhaseResult:
    """hubstash's CI path: ``pull --locked`` into a complete cache (no requests).

    The lock is made from the store first, unmeasured; the phase compares with the
    other clients' no-op download.
    """
    project = bench.scratch / f"project-{repeat}"
    project.mkdir(exist_ok=True)
    config = project / "hubstash.toml"
    config.write_text(_locked_config(bench), encoding="utf-8")
    base = [str(client.executable)]
    store = ["--store", f"s3://{bench.target.bucket}/hubstash"]
    store += ["--endpoint-url", bench.target.endpoint]
    subprocess.run(
        [*base, "lock", "--from-store", "--config", str(config), *store],
        env=dict(bench.env),
        cwd=project,
        check=True,
        capture_output=True,
    )
    argv = [*base, "pull", "--locked", "--config", str(config), *store]
    argv += ["--cache-dir", str(dest)]
    os.sync()
    run = _measure(argv, bench, bench.scratch / "logs" / f"hubstash-{repeat}-locked")
    result = PhaseResult(client.name, LOCKED_PHASE, repeat, run, None, None)
    _say(_progress_line(result))
    return result


def _locked_config(bench: Bench) -> str:
    """A hubstash.toml naming every repo of the source cache at main."""
    lines: list[str] = []
    for folder in sorted(bench.target.cache.iterdir()):
        kind, _, rest = folder.name.partition("--")
        if not rest or kind not in ("models", "datasets"):
            continue
        lines += [
            "[[repo]]",
            f'id = "{rest.replace("--", "/")}"',
            f'type = "{kind[:-1]}"',
            "",
        ]
    return "\n".join(lines)


def _measure(argv: list[str], bench: Bench, stem: Path) -> Measured:
    try:
        return run_measured(
            argv,
            env=bench.env,
            cwd=bench.scratch,
            log_stem=stem,
            server_pid=bench.server.pid,
        )
    except OSError as error:
        return Measured(
            argv=tuple(argv),
            exit_code=127,
            wall_s=0.0,
            cpu_s=0.0,
            peak_rss_mib=0.0,
            rss_exact=True,
            server_cpu_s=0.0,
            listen_drops=0,
            stderr_tail=f"cannot start: {error}",
        )


def _check_restore(source: Tree, dest: Path) -> RestoreCheck:
    return compare_trees(source, snapshot_tree(dest), disk_usage(dest))


def _source_changed(bench: Bench) -> bool:
    """Whether the last client wrote into the cache it was only meant to read."""
    now = snapshot_tree(bench.target.cache, bench.hasher)
    if now == bench.source:
        return False
    paths = sorted(
        p for p in {*now, *bench.source} if now.get(p) != bench.source.get(p)
    )
    _say(f"warning: {len(paths)} paths of the source cache changed: {paths[:5]}")
    return True


def _report_failure(client: Client, phase: str, run: Measured) -> None:
    _say(
        f"{client.name}: skipped from here on, {phase} exited {run.exit_code}: "
        f"{' '.join(run.argv)}"
    )
    for line in run.stderr_tail.splitlines():
        _say(f"  | {line}")


def _progress_line(result: PhaseResult) -> str:
    run = result.run
    status = "" if run.ok else f"  FAILED (exit {run.exit_code})"
    check = f"  {result.restore.verdict}" if result.restore else ""
    drops = f"  {run.listen_drops} listen drops" if run.listen_drops else ""
    return (
        f"  {result.client:<9}{result.phase:<15}{run.wall_s:8.2f} s wall"
        f"{run.cpu_s:8.2f} s cpu{run.server_cpu_s:8.2f} s server"
        f"{drops}{check}{status}"
    )


def _tool_versions(clients: Sequence[Client], bench: Bench) -> dict[str, str]:
    flags = {"aws": ["--version"], "s5cmd": ["version"], "hubstash": ["--version"]}
    return {
        c.name: _first_line([str(c.executable), *flags[c.name]], bench) for c in clients
    }


def _first_line(argv: list[str], bench: Bench) -> str:
    try:
        done = subprocess.run(
            argv,
            env=dict(bench.env),
            cwd=bench.scratch,
            capture_output=True,
            timeout=VERSION_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({error})"
    text = (done.stdout or done.stderr).decode(errors="replace").strip()
    return text.splitlines()[0] if text and done.returncode == 0 else "unknown"


@contextlib.contextmanager
def _scratch_folder(parent: Path | None) -> Iterator[Path]:
    scratch = Path(tempfile.mkdtemp(prefix="hubstash-bench-", dir=parent))
    try:
        yield scratch
    finally:
        _remove_tree(scratch)


@contextlib.contextmanager
def _signals_as_interrupts() -> Iterator[None]:
    """Let SIGINT, SIGTERM and SIGHUP unwind like Ctrl-C, so every cleanup runs.

    SIGINT is set explicitly because a shell starts background jobs with it ignored.
    """
    caught = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {number: signal.getsignal(number) for number in caught}
    for number in caught:
        signal.signal(number, _interrupt)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _interrupt(number: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, onerror=_make_writable_and_retry)


def _make_writable_and_retry(
    function: Callable[..., object], path: str, excinfo: object
) -> None:
    """A client may restore read-only folders; open them up and try once more."""
    parent = os.path.dirname(path)
    os.chmod(parent, 0o700)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o700)
    function(path)


def _load_average() -> float:
    return os.getloadavg()[0]


def _warn_if_busy(load_before: float) -> None:
    """Other work on this machine skews wall times; say so next to the figures."""
    if load_before >= BUSY_LOAD:
        _say(
            f"warning: the 1-minute load average was {load_before:.2f} at the start; "
            "other processes shared the CPUs and the wall times may be high"
        )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
