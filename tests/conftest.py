"""Fixtures shared by every test.

No test may reach huggingface.co: the environment points the Hub client at a dead
local port, and client processes get their own environment (tests.support.hf_client).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_hub import FakeHub
from tests.support.hf_client import DEAD_ENDPOINT


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
