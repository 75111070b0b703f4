"""A real S3-compatible server for tests: moto in server mode, on 127.0.0.1.

moto runs in a thread of the test process, serving HTTP on a free port; hubstash
talks to it through boto3 exactly as it would to any S3-compatible endpoint.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

FAKE_KEY_ID = "testing-key-id"
FAKE_SECRET = "testing-secret-key"
_buckets = itertools.count()


@dataclass(frozen=True)
class S3Server:
    """A running S3 server and how to reach it."""

    endpoint: str

    def client(self) -> Any:
        """A boto3 client with the fake test credentials, for arranging and checking."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=FAKE_KEY_ID,
            aws_secret_access_key=FAKE_SECRET,
        )

    def new_bucket(self) -> str:
        """A fresh, empty bucket: tests share the server, never a bucket."""
        name = f"test-bucket-{next(_buckets)}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under a prefix, with its bytes."""
        client = self.client()
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        )
        return {
            item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])[
                "Body"
            ].read()
            for page in pages
            for item in page.get("Contents", [])
        }


@contextmanager
def moto_server() -> Iterator[S3Server]:
    """Start moto's S3 server on 127.0.0.1 with a free port; stop it afterwards."""
    from moto.server import ThreadedMotoServer

    # One line per request would drown every failure report.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()
