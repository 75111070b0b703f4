"""moto's S3 server with IAM enforced, in a subprocess on 127.0.0.1.

moto enforces IAM policies once ``INITIAL_NO_AUTH_ACTION_COUNT`` requests have been
served: it reads that number from the environment at import, into process-wide
settings, so this server runs in a process of its own (the session's ordinary moto
server, in the test process, stays permissive). The first three requests, still
unauthenticated, make an ``admin`` user allowed everything; every later request,
the admin's included, is checked against the caller's policies.

moto checks a policy's actions and resources, not its conditions (``StringLike`` is
ignored), and answers 404 for a missing key whatever the caller may list.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Literal

import pytest

UNAUTHENTICATED_SETUP_CALLS = 3
ALLOW_EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
_names = itertools.count()


@dataclass(frozen=True)
class Keys:
    """An IAM user's access key (moto's, fake)."""

    key_id: str
    secret: str

    def use(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make these the only credentials of the AWS chain in this process."""
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", self.key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", self.secret)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        monkeypatch.delenv("AWS_PROFILE", raising=False)


@dataclass(frozen=True)
class IamS3Server:
    """A running IAM-enforcing server and its admin's keys."""

    endpoint: str
    admin: Keys

    def client(self, service: Literal["s3", "iam"], keys: Keys | None = None) -> Any:
        """A boto3 client acting as ``keys`` (the admin by default)."""
        import boto3

        keys = keys or self.admin
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=keys.key_id,
            aws_secret_access_key=keys.secret,
        )

    def new_bucket(self) -> str:
        name = f"iam-bucket-{next(_names)}"
        self.client("s3").create_bucket(Bucket=name)
        return name

    def user_with_policy(self, policy: dict[str, Any]) -> Keys:
        """A new IAM user whose only permissions are ``policy``."""
        return _user(self.client("iam"), f"user-{next(_names)}", policy)

    def keys_in(self, bucket: str) -> set[str]:
        pages = (
            self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
        )
        return {item["Key"] for page in pages for item in page.get("Contents", [])}


@contextmanager
def iam_enforcing_s3_server() -> Iterator[IamS3Server]:
    """Start the server on a free port of 127.0.0.1; stop it (by its PID) after."""
    env = {
        **os.environ,
        "INITIAL_NO_AUTH_ACTION_COUNT": str(UNAUTHENTICATED_SETUP_CALLS),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        endpoint = _endpoint(process.stderr)
        yield IamS3Server(endpoint, _bootstrap_admin(endpoint))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _endpoint(stderr: IO[str]) -> str:
    """Read the server's log until it says where it runs; keep draining it after."""
    seen: collections.deque[str] = collections.deque(maxlen=20)
    for line in stderr:
        seen.append(line)
        found = re.search(r"Running on (http://127\.0\.0\.1:\d+)", line)
        if found:
            _drain(stderr)
            return found.group(1)
    raise RuntimeError("moto's server stopped before serving:\n" + "".join(seen))


def _drain(stream: IO[str]) -> None:
    # Werkzeug logs every request; an unread pipe would block the server when full.
    thread = threading.Thread(target=collections.deque, args=(stream, 0), daemon=True)
    thread.start()


def _bootstrap_admin(endpoint: str) -> Keys:
    """Spend the unauthenticated calls on a user that may do everything."""
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    return _user(iam, "admin", ALLOW_EVERYTHING)


def _user(iam: Any, name: str, policy: dict[str, Any]) -> Keys:
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(
        UserName=name, PolicyName="hubstash", PolicyDocument=json.dumps(policy)
    )
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])
