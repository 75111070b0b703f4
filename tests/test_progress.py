"""Progress is reported through callbacks; the CLI draws bars only on a terminal."""

from __future__ import annotations

import io
from pathlib import Path

from hubstash import pull, push
from hubstash.output import BarProgress
from hubstash.progress import Progress
from hubstash.stores import FolderStore
from tests.support.caches import default_files, write_canonical_repo


class Recorder(Progress):
    def __init__(self) -> None:
        self.phases: list[tuple[str, int, int]] = []
        self.bytes = 0
        self.files = 0

    def start(self, phase: str, files: int, nbytes: int) -> None:
        self.phases.append((phase, files, nbytes))

    def advance(self, nbytes: int) -> None:
        self.bytes += nbytes

    def file_done(self) -> None:
        self.files += 1


def test_push_and_pull_report_every_byte_they_move(tmp_path: Path) -> None:
    repo = write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())
    total = sum(len(f.content) for f in repo.files.values())
    store = FolderStore(tmp_path / "store")
    pushing, pulling = Recorder(), Recorder()

    push(store, tmp_path / "hub", progress=pushing)
    pull(store, tmp_path / "restored", progress=pulling)

    assert [p[0] for p in pushing.phases] == ["hashing", "uploading"]
    assert pushing.phases[1] == ("uploading", 3, total)
    assert pushing.bytes == 2 * total
    assert pulling.phases == [("downloading", 3, total)]
    assert (pulling.bytes, pulling.files) == (total, 3)


def test_bars_draw_on_the_stream_they_are_given(tmp_path: Path) -> None:
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())
    stream = io.StringIO()

    push(
        FolderStore(tmp_path / "store"), tmp_path / "hub", progress=BarProgress(stream)
    )

    assert "uploading 3 files" in stream.getvalue()
