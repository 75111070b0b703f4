"""Problems found while reading a cache or a store, reported without stopping the work.

A fatal condition (store unreachable, bad arguments) raises a ``HubstashError``; a
problem with one file or one ref becomes a :class:`Finding` so that everything else
still gets done, and the command's exit code says the worst that was found.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from hubstash.errors import ExitCode


class Severity(enum.IntEnum):
    """How bad a finding is; the order is the order of precedence for exit codes."""

    NOTICE = 0
    FAILURE = 1
    UNREACHABLE = 2
    DENIED = 3
    INCOMPLETE = 4
    INTEGRITY = 5


_EXIT = {
    Severity.NOTICE: ExitCode.OK,
    Severity.FAILURE: ExitCode.FAILURE,
    Severity.UNREACHABLE: ExitCode.UNREACHABLE,
    Severity.DENIED: ExitCode.DENIED,
    Severity.INCOMPLETE: ExitCode.INCOMPLETE,
    Severity.INTEGRITY: ExitCode.INTEGRITY,
}


@dataclass(frozen=True)
class Finding:
    """One problem, named precisely enough to act on.

    Attributes:
        kind: a stable identifier, e.g. ``corrupt-blob``, ``dangling-link``.
        repo: the repo as the Hub names it, or "" for cache-wide findings.
        path: the file, ref or key concerned.
        message: one line for humans.
        severity: what it does to the exit code.
        expected: the expected hash or value, when there is one.
        actual: the value found.
    """

    kind: str
    repo: str
    path: str
    message: str
    severity: Severity = Severity.NOTICE
    expected: str = ""
    actual: str = ""

    def __str__(self) -> str:
        where = f"{self.repo}: " if self.repo else ""
        return f"{where}{self.message}"


def severity_of(code: ExitCode) -> Severity:
    """The severity of a finding made from an error with this exit code."""
    for severity, exit_code in _EXIT.items():
        if exit_code == code and severity != Severity.NOTICE:
            return severity
    return Severity.FAILURE


def exit_code_for(findings: Iterable[Finding]) -> ExitCode:
    """The exit code the worst finding calls for (OK when there is none)."""
    worst = max((f.severity for f in findings), default=Severity.NOTICE)
    return _EXIT[worst]
