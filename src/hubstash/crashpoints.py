"""Named points where a test can kill or pause hubstash, to prove it recovers.

``reached(name)`` does nothing unless the environment names that point, as ``name``
(the first time it is reached) or ``name:N`` (the N-th time):

- ``$HUBSTASH_CRASH_AT``: the process kills itself with SIGKILL: no cleanup, no
  ``finally``, exactly as a power cut or an OOM kill would leave things.
- ``$HUBSTASH_PAUSE_AT``, with ``$HUBSTASH_PAUSE_DIR`` holding two FIFOs: the process
  writes the point's name to ``reached``, then waits until something opens
  ``resume`` for writing. Opening a FIFO blocks until the other end is opened, so a
  test steps two processes past each other without timing anything.

The variables are read at each call, so a test may set them for one child only.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path

CRASH_AT = "HUBSTASH_CRASH_AT"
PAUSE_AT = "HUBSTASH_PAUSE_AT"
PAUSE_DIR = "HUBSTASH_PAUSE_DIR"

_passes: Counter[tuple[str, str]] = Counter()
_count_lock = threading.Lock()


def reached(name: str) -> None:
    """Kill or pause this process when the environment names this point."""
    if _is_the_pass(CRASH_AT, name):
        os.kill(os.getpid(), signal.SIGKILL)
    if _is_the_pass(PAUSE_AT, name):
        _pause(name, Path(os.environ[PAUSE_DIR]))


def _is_the_pass(variable: str, name: str) -> bool:
    wanted = os.environ.get(variable)
    if not wanted:
        return False
    point, _, nth = wanted.partition(":")
    if point != name:
        return False
    with _count_lock:
        _passes[variable, name] += 1
        return _passes[variable, name] == int(nth or 1)


def _pause(name: str, fifos: Path) -> None:
    with open(fifos / "reached", "w") as reached_fifo:
        reached_fifo.write(name)
    with open(fifos / "resume") as resume_fifo:
        resume_fifo.read()
