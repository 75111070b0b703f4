"""Start a local S3-compatible server on 127.0.0.1 and stop it by its PID.

Readiness is a real ListBuckets answer, polled until it comes; a server that exits
before answering (its port was taken meanwhile) is retried on a fresh port.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench.bucket import answers, s3_client
from bench.procs import tail

HOST = "127.0.0.1"
SERVERS = {"localbucket": "localbucket", "moto": "moto"}  # server -> distribution
READY_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.05
PORT_ATTEMPTS = 3
STOP_GRACE_S = 10.0


class ServerError(RuntimeError):
    """The server could not be started or did not answer."""


@dataclass(frozen=True)
class Server:
    name: str
    version: str
    pid: int
    endpoint: str
    log: Path


@contextlib.contextmanager
def running_server(
    name: str, bin_dir: Path, scratch: Path, env: Mapping[str, str]
) -> Iterator[Server]:
    """Run server ``name`` for the duration of the ``with`` block.

    Raises:
        ServerError: it exited before answering on every port tried, or never answered.
    """
    proc, endpoint, log = _start(name, bin_dir, scratch, env)
    try:
        version = metadata.version(SERVERS[name])
        yield Server(name, version, proc.pid, endpoint, log)
    finally:
        _stop(proc)


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _start(
    name: str, bin_dir: Path, scratch: Path, env: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], str, Path]:
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        endpoint = f"http://{HOST}:{port}"
        log = scratch / f"server-{name}-{port}.log"
        proc = _spawn(_argv(name, bin_dir, scratch, port), env, scratch, log)
        try:
            if _wait_ready(proc, endpoint, log):
                return proc, endpoint, log
        except BaseException:
            _stop(proc)
            raise
        _stop(proc)

    raise ServerError(f"{name} exited before answering; last log lines:\n{tail(log)}")


def _argv(name: str, bin_dir: Path, scratch: Path, port: int) -> list[str]:
    if name == "localbucket":
        data = scratch / "localbucket-data"
        data.mkdir(exist_ok=True)
        exe = bin_dir / "localbucket"
        return [str(exe), "--host", HOST, "--port", str(port), str(data)]
    return [str(bin_dir / "moto_server"), "-H", HOST, "-p", str(port)]


def _spawn(
    argv: list[str], env: Mapping[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            # Its own session keeps a terminal's Ctrl-C away; the harness stops it.
            start_new_session=True,
        )


def _wait_ready(proc: subprocess.Popen[bytes], endpoint: str, log: Path) -> bool:
    """Poll ListBuckets until it answers; ``False`` if the server exits first."""
    client = s3_client(endpoint, patient=False)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if answers(client):
            return True
        time.sleep(POLL_INTERVAL_S)
    raise ServerError(f"no answer within {READY_TIMEOUT_S:.0f} s:\n{tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
