"""Fixtures shared by every test.

No test may reach huggingface.co: the environment points the Hub client at a dead
local port, and client processes get their own environment (tests.support.hf_client).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.fake_hub import FakeHub
from tests.support.hf_client import DEAD_ENDPOINT
from tests.support.s3server import S3Server, moto_server
from tests.support.stores import StoreUnderTest, make_store

# Timing varies on a shared two-core machine; a slow example is not a failure.
settings.register_profile("hubstash", deadline=None, print_blob=True)
settings.load_profile("hubstash")


@pytest.fixture(autouse=True)
def _no_real_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep anything that reads the environment in this process local and quiet."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_UPDATE_CHECK", "1")
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    """A started, empty FakeHub, stopped after the test."""
    with FakeHub() as hub:
        yield hub


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1, shared by the session; tests own buckets."""
    with moto_server() as server:
        yield server


@pytest.fixture(params=["folder", "s3"])
def store(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[StoreUnderTest]:
    """Each store test runs once per backend: a local folder, and S3 on moto."""
    yield from make_store(request.param, tmp_path, s3_server, monkeypatch)
