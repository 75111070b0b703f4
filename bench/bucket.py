"""The harness's own S3 calls: readiness probe, bucket setup and prefix accounting.

Deletes go one key at a time because localbucket has no DeleteObjects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectTypeDef

FAKE_KEY = "bench"
REGION = "us-east-1"


@dataclass(frozen=True)
class PrefixUsage:
    objects: int
    bytes: int


def s3_client(endpoint: str, *, patient: bool = True) -> S3Client:
    """A boto3 S3 client bound to ``endpoint`` with fake credentials.

    Args:
        endpoint: the local server's URL; the client never talks to anything else.
        patient: ``False`` for readiness probes: short timeouts and no retries.
    """
    config = Config(
        s3={"addressing_style": "path"},
        connect_timeout=5 if patient else 0.5,
        read_timeout=60 if patient else 2,
        retries={"max_attempts": 3 if patient else 1, "mode": "standard"},
        proxies={},
    )
    session = boto3.session.Session(
        aws_access_key_id=FAKE_KEY,
        aws_secret_access_key=FAKE_KEY,
        region_name=REGION,
    )
    return session.client("s3", endpoint_url=endpoint, config=config)


def answers(client: S3Client) -> bool:
    """Whether the server answers a real request (ListBuckets) right now."""
    try:
        client.list_buckets()
    except Exception:  # any failure means "not ready yet"; the caller retries
        return False
    return True


def create_bucket(client: S3Client, bucket: str) -> None:
    client.create_bucket(Bucket=bucket)


def prefix_usage(client: S3Client, bucket: str, prefix: str) -> PrefixUsage:
    """Count the objects and bytes stored under ``prefix``."""
    objects = 0
    total = 0
    for item in _list(client, bucket, prefix):
        objects += 1
        total += item.get("Size", 0)
    return PrefixUsage(objects, total)


def clear_prefix(client: S3Client, bucket: str, prefix: str) -> int:
    """Delete every object under ``prefix``; returns how many were deleted."""
    keys = [item["Key"] for item in _list(client, bucket, prefix) if "Key" in item]
    for key in keys:
        client.delete_object(Bucket=bucket, Key=key)
    return len(keys)


def _list(client: S3Client, bucket: str, prefix: str) -> list[ObjectTypeDef]:
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix
    )
    return [item for page in pages for item in page.get("Contents", [])]
