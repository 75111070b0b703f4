"""File selection by the rules of huggingface_hub's allow and ignore patterns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class FileFilter:
    """Which snapshot paths to take.

    As in huggingface_hub: a path is taken when it matches any include pattern (or
    there are none) and no exclude pattern; a pattern ending in ``/`` means
    everything below that folder.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None
    ) -> FileFilter:
        return cls(_normalise(include or ()), _normalise(exclude or ()))

    @property
    def is_everything(self) -> bool:
        return not self.include and not self.exclude

    def accepts(self, path: str) -> bool:
        if self.include and not any(fnmatchcase(path, p) for p in self.include):
            return False
        return not any(fnmatchcase(path, p) for p in self.exclude)


def _normalise(patterns: Sequence[str]) -> tuple[str, ...]:
    return tuple(p + "*" if p.endswith("/") else p for p in patterns)


EVERYTHING = FileFilter()
