"""The two store backends every store test runs against."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hubstash.stores import S3Options, Store, open_store
from tests.support.s3server import FAKE_KEY_ID, FAKE_SECRET, S3Server

# Small parts so that multipart uploads and ranged downloads happen with small
# objects: moto copies a whole object for every ranged GET.
TEST_PART_SIZE = 256 * 1024


@dataclass(frozen=True)
class StoreUnderTest:
    """A store, its URL, and how to open it again as a separate client would."""

    kind: str
    url: str
    options: S3Options | None

    def open(self) -> Store:
        return open_store(self.url, self.options)

    def cli_args(self) -> list[str]:
        args = ["--store", self.url]
        if self.options is not None and self.options.endpoint_url:
            args += ["--endpoint-url", self.options.endpoint_url, "--part-size", "1"]
        return args


def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def make_store(
    kind: str, tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StoreUnderTest]:
    if kind == "folder":
        yield StoreUnderTest("folder", str(tmp_path / "store"), None)
        return
    s3_credentials(monkeypatch)
    bucket = s3.new_bucket()
    options = S3Options(endpoint_url=s3.endpoint, part_size=TEST_PART_SIZE, jobs=4)
    yield StoreUnderTest("s3", f"s3://{bucket}/team/hf", options)
