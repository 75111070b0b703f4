"""Running hubstash as a separate process, to be killed or to run beside another.

`run_cli` starts the real console command (a fresh interpreter). `Forker` runs the
CLI in children forked from a server process that imported hubstash once, so a
hundred killed runs cost little more than their work. Either way the child may be
told to SIGKILL itself at a named crash point (`hubstash.crashpoints`).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hubstash.crashpoints import CRASH_AT, PAUSE_AT, PAUSE_DIR

KILLED = -signal.SIGKILL
_OWN_TEMPS = (".hubstash-", ".incomplete")


@dataclass(frozen=True)
class Ran:
    """How a hubstash process ended: its exit code (negative: the signal) and
    what it wrote to stderr."""

    code: int
    err: str = ""


def child_env(
    crash_at: str | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The test's environment, plus the crash point and anything else asked for."""
    env = {k: v for k, v in os.environ.items() if k != CRASH_AT}
    if crash_at is not None:
        env[CRASH_AT] = crash_at
    env.update(extra or {})
    return env


def hubstash_command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "hubstash.cli", *args]


def run_cli(
    args: Sequence[str],
    *,
    crash_at: str | None = None,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> Ran:
    """Run the hubstash command to its end (or its crash point)."""
    done = subprocess.run(
        [*prefix, *hubstash_command(args)],
        env=child_env(crash_at, env),
        capture_output=True,
        text=True,
        check=False,
    )
    return Ran(done.returncode, done.stderr)


class PausedRun:
    """A hubstash command that stops at a crash point until the test resumes it.

    `wait_until_paused` returns once the child stands at the point (or fails when
    it ended without reaching it); `resume` lets it go on; `finish` waits for its
    end. The child and the test meet on two FIFOs, so nothing is timed.
    """

    def __init__(self, args: Sequence[str], point: str, fifos: Path) -> None:
        fifos.mkdir(parents=True, exist_ok=True)
        os.mkfifo(fifos / "reached")
        os.mkfifo(fifos / "resume")
        # Opened before the child starts, so its writer never blocks on us.
        self._reached = os.open(fifos / "reached", os.O_RDONLY | os.O_NONBLOCK)
        self._fifos = fifos
        env = child_env(extra={PAUSE_AT: point, PAUSE_DIR: str(fifos)})
        self.process = subprocess.Popen(
            hubstash_command(args),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_until_paused(self) -> str:
        while True:
            readable, _, _ = select.select([self._reached], [], [], 0.5)
            if readable and (name := os.read(self._reached, 200)):
                os.close(self._reached)
                return name.decode()
            if self.process.poll() is not None:
                ran = self.finish()
                raise AssertionError(f"ended before its pause point: {ran}")

    def resume(self) -> None:
        with open(self._fifos / "resume", "w"):
            pass

    def finish(self) -> Ran:
        _, err = self.process.communicate()
        return Ran(self.process.returncode, err)


# Imports hubstash once, then forks one child per request line (JSON: the arguments
# and the crash point) and answers with the child's exit code (negative: signal).
_FORK_SERVER = """
import json, os, sys
from hubstash.cli import main
import boto3

for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.environ.pop(CRASH_AT, None)
        if request["crash_at"] is not None:
            os.environ[CRASH_AT] = request["crash_at"]
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os._exit(main(request["args"]))
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class Forker:
    """Runs the hubstash CLI in cheap forked children (see the module docstring)."""

    def __init__(self) -> None:
        self._server = subprocess.Popen(
            [sys.executable, "-c", f"CRASH_AT = {CRASH_AT!r}\n{_FORK_SERVER}"],
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, args: Sequence[str], crash_at: str | None = None) -> Ran:
        assert self._server.stdin is not None
        assert self._server.stdout is not None
        request = {"args": list(args), "crash_at": crash_at}
        self._server.stdin.write(json.dumps(request) + "\n")
        self._server.stdin.flush()
        return Ran(int(self._server.stdout.readline()))

    def close(self) -> None:
        self._server.communicate()


def leftovers(cache_dir: Path) -> list[str]:
    """Temporary and partial files anywhere the client looks (not `.locks/`)."""
    found = []
    for root, folders, files in os.walk(cache_dir):
        if Path(root) == cache_dir and ".locks" in folders:
            folders.remove(".locks")
        for name in folders + files:
            if name.startswith(_OWN_TEMPS[0]) or name.endswith(_OWN_TEMPS[1]):
                found.append(str(Path(root, name).relative_to(cache_dir)))
    return sorted(found)
