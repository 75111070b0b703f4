"""Options for S3-compatible stores, kept apart so that reading them imports no SDK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 16 * MiB
AddressingStyle = Literal["auto", "path", "virtual"]


@dataclass(frozen=True)
class S3Options:
    """How to reach an S3-compatible service.

    Attributes:
        endpoint_url: a custom endpoint (MinIO, R2, ...); None for AWS.
        region: the bucket's region; None lets the AWS chain decide.
        profile: a named AWS profile.
        no_sign_request: send anonymous requests (public buckets).
        addressing_style: ``auto`` means path-style for custom endpoints (their
            hostnames rarely resolve per bucket) and botocore's choice for AWS.
        ca_bundle: a certificate authority file for TLS endpoints.
        sse: server-side encryption to request: ``AES256`` or ``aws:kms``.
        sse_kms_key_id: the KMS key for ``aws:kms``.
        part_size: bytes per part for multipart uploads and ranged downloads.
        jobs: concurrent requests.
        connect_timeout: seconds to wait for a connection to the endpoint.
        read_timeout: seconds to wait for any bytes of an answer; a stalled
            transfer ends after this, and is retried.
    """

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    no_sign_request: bool = False
    addressing_style: AddressingStyle = "auto"
    ca_bundle: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    part_size: int = DEFAULT_PART_SIZE
    jobs: int = 8
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @property
    def effective_addressing(self) -> str:
        if self.addressing_style != "auto":
            return self.addressing_style
        return "path" if self.endpoint_url else "auto"
