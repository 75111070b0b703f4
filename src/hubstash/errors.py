"""One exception hierarchy for hubstash, and the exit code each error maps to.

Every error a user can meet derives from :class:`HubstashError`. Domain errors also
derive from the builtin a caller would naturally catch (``FileNotFoundError``,
``PermissionError``, ``ConnectionError``, ``ValueError``), so code that does not know
hubstash still handles them sensibly.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit-code contract shared by every command."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    INTEGRITY = 3
    INCOMPLETE = 4
    DENIED = 5
    UNREACHABLE = 6
    INTERRUPTED = 130


class HubstashError(Exception):
    """Root of every error hubstash raises on purpose.

    Attributes:
        hint: the next step a user should take, shown after the message.
    """

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(HubstashError, ValueError):
    """Bad arguments or configuration: a repo name, a store URL, a pattern."""

    exit_code = ExitCode.USAGE


class IntegrityError(HubstashError, ValueError):
    """Content does not match the hash that names it.

    Attributes:
        path: where the content was read (a local path or a store key).
        expected: the hash the content should have.
        actual: the hash it has.
    """

    exit_code = ExitCode.INTEGRITY

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        expected: str = "",
        actual: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.expected = expected
        self.actual = actual


class UnsafeStoreContent(IntegrityError):
    """The store holds something that could write outside the cache, or is malformed."""


class NotFound(HubstashError, FileNotFoundError):
    """Something asked for is missing: a repo, a revision, a store object."""

    exit_code = ExitCode.INCOMPLETE


class StoreFormatError(HubstashError):
    """The store was written by a newer hubstash, or is not a hubstash store."""

    exit_code = ExitCode.USAGE


class AccessDenied(HubstashError, PermissionError):
    """Credentials are missing or wrong, or a permission is not granted."""

    exit_code = ExitCode.DENIED


class NoCredentials(AccessDenied):
    """No credentials could be found at all (as opposed to wrong or denied ones)."""


class StoreUnreachable(HubstashError, ConnectionError):
    """The store cannot be reached: endpoint, DNS, TLS, region or bucket."""

    exit_code = ExitCode.UNREACHABLE


class Interrupted(HubstashError):
    """The user interrupted the run (Ctrl-C); work in progress was abandoned."""

    exit_code = ExitCode.INTERRUPTED


class LocalFilesystemError(HubstashError, OSError):
    """The local cache cannot be read or written: disk full, read-only, denied."""

    exit_code = ExitCode.FAILURE
