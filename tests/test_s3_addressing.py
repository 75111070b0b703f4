"""How requests are addressed to S3-compatible services, without any DNS or network.

botocore chooses path-style by itself for 127.0.0.1, which would prove nothing, so
these tests name an endpoint by hostname and capture the URL botocore would send,
answering it from the test (case O2).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from hubstash.stores import S3Options
from hubstash.stores.s3 import S3Store
from tests.support.stores import s3_credentials


class _EmptyBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


def captured_url(options: S3Options) -> str:
    store = S3Store("models", "team/hf", options)
    urls: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        urls.append(request.url)
        return AWSResponse(request.url, 200, HTTPHeaders(), _EmptyBody())

    store.client.meta.events.register("before-send.s3", answer)  # type: ignore[arg-type]
    store.write("hubstash-store.json", b"{}")
    return urls[0]


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    s3_credentials(monkeypatch)


def test_custom_endpoints_use_path_style_by_default() -> None:
    url = captured_url(S3Options(endpoint_url="http://minio.internal:9000"))

    assert url == "http://minio.internal:9000/models/team/hf/hubstash-store.json"


def test_virtual_addressing_can_be_asked_for() -> None:
    options = S3Options(
        endpoint_url="http://minio.internal:9000", addressing_style="virtual"
    )

    url = captured_url(options)

    assert url == "http://models.minio.internal:9000/team/hf/hubstash-store.json"


def test_custom_endpoints_send_no_optional_checksums() -> None:
    store = S3Store("models", "", S3Options(endpoint_url="http://minio.internal:9000"))
    headers: list[dict[str, str]] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        headers.append({k.lower(): v for k, v in request.headers.items()})
        return AWSResponse(request.url, 200, HTTPHeaders(), _EmptyBody())

    store.client.meta.events.register("before-send.s3", answer)  # type: ignore[arg-type]
    store.write("x", b"data")

    assert not any(h.startswith("x-amz-checksum") for h in headers[0])
    assert "x-amz-sdk-checksum-algorithm" not in headers[0]


def test_server_side_encryption_is_requested_when_asked(tmp_path: Path) -> None:
    options = S3Options(
        endpoint_url="http://minio.internal:9000", sse="aws:kms", sse_kms_key_id="key-1"
    )
    store = S3Store("models", "", options)
    sent: list[dict[str, str]] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append({k.lower(): _text(v) for k, v in request.headers.items()})
        return AWSResponse(request.url, 200, HTTPHeaders(), _EmptyBody())

    store.client.meta.events.register("before-send.s3", answer)  # type: ignore[arg-type]
    source = tmp_path / "blob"
    source.write_bytes(b"content")
    store.upload("blobs/x", source, 7, lambda _: None)

    assert sent[0]["x-amz-server-side-encryption"] == "aws:kms"
    assert sent[0]["x-amz-server-side-encryption-aws-kms-key-id"] == "key-1"


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
