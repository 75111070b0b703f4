"""Progress reporting: the library calls these hooks, only the CLI draws bars."""

from __future__ import annotations


class Progress:
    """Receives progress of a long operation. Every hook does nothing by default.

    Hooks may be called from worker threads; implementations must be thread-safe.
    """

    def start(self, phase: str, files: int, nbytes: int) -> None:
        """A phase begins (``hashing``, ``uploading``, ``downloading``)."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more bytes of the current phase are done."""

    def file_done(self) -> None:
        """One more file of the current phase is done."""

    def finish(self) -> None:
        """The current phase is over."""


SILENT = Progress()
