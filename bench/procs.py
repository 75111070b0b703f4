"""Run one client command and account for its time, CPU and memory.

The client is reaped with ``os.wait4``, whose resource usage covers the client and
every descendant it waited for: that gives its CPU time. Its peak RSS cannot come from
there: a child forked from this harness inherits the harness's RSS high-water mark
(about 60 MiB) across ``exec``, so the command runs under GNU ``/usr/bin/time``, a
small process whose own child starts clean, and its ``%M`` is used instead. The
server's CPU comes from ``/proc/<pid>/stat`` read before and after. The client leads
its own session, so it is stopped as a group.

The kernel's count of connection attempts dropped on full listen queues is read
around each command too: a server with a short backlog (localbucket listens with the
socketserver default of 5) can make a client with many connections wait for TCP
retransmits, seconds each, with neither side using any CPU.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TAIL_LINES = 12
STOP_GRACE_S = 5.0
GNU_TIME = Path("/usr/bin/time")


@dataclass(frozen=True)
class Measured:
    """One command run: exit status and what it cost."""

    argv: tuple[str, ...]
    exit_code: int
    wall_s: float
    cpu_s: float  # user + system, the client and its reaped descendants
    peak_rss_mib: float  # the largest resident set among them
    rss_exact: bool  # False: no GNU time, the figure includes the harness's RSS
    server_cpu_s: float
    listen_drops: int  # system-wide TcpExt ListenDrops during the run
    stderr_tail: str  # last lines of stderr (else stdout), only when the run failed

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_stem: Path,
    server_pid: int,
) -> Measured:
    """Run ``argv`` to completion; stdout and stderr go to ``log_stem``.out/.err.

    Raises:
        OSError: the command could not be started (for example a missing file).
        KeyboardInterrupt: passed on after the client's process group is stopped.
    """
    out_path, err_path = log_stem.with_suffix(".out"), log_stem.with_suffix(".err")
    rss_path = log_stem.with_suffix(".rss")
    timed = GNU_TIME.is_file()
    wrapped = [str(GNU_TIME), "-o", str(rss_path), "-f", "%M", *argv] if timed else argv
    server_before, drops_before = process_cpu_seconds(server_pid), listen_drops()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(wrapped),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        exit_code, usage = _reap(proc)
        wall = time.perf_counter() - started

    return Measured(
        argv=tuple(argv),
        exit_code=exit_code,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=_peak_rss_kib(rss_path, usage) / 1024,
        rss_exact=timed,
        server_cpu_s=process_cpu_seconds(server_pid) - server_before,
        listen_drops=listen_drops() - drops_before,
        stderr_tail="" if exit_code == 0 else tail(err_path) or tail(out_path),
    )


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used, from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces; the numeric fields start after its ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def listen_drops() -> int:
    """Connection attempts the kernel dropped because a listen queue was full."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            counters = dict(zip(names.split(), values.split(), strict=True))
            return int(counters.get("ListenDrops", 0))
    return 0


def process_peak_rss_mib(pid: int) -> float:
    """The high-water mark of a live process's resident set (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    text = path.read_bytes().decode("utf-8", errors="replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _peak_rss_kib(rss_path: Path, usage: resource.struct_rusage) -> int:
    """GNU time's ``%M`` (KiB; its last line), else wait4's inflated figure."""
    lines = rss_path.read_text().split() if rss_path.is_file() else []
    if lines and lines[-1].isdigit():
        return int(lines[-1])
    return usage.ru_maxrss  # Linux reports KiB


def _reap(proc: subprocess.Popen[bytes]) -> tuple[int, resource.struct_rusage]:
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        _stop_group(proc)
        raise
    # Popen did not reap the child itself, so it is told the outcome.
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the client and what it started: TERM, a grace period, then KILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
