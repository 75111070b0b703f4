"""The real AWS CLI, as the old recipe runs it: `aws s3 sync`, against a local S3 only.

The process gets an environment built from scratch: fake credentials, no AWS
configuration files, no instance metadata, no proxies, and an explicit endpoint that
must be a local address. It cannot reach another host.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.s3server import FAKE_KEY_ID, FAKE_SECRET

AWS = Path(sys.executable).parent / "aws"
SYNC_TIMEOUT_S = 300.0
_KEPT_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")


def aws_s3_sync(endpoint: str, source: str, destination: str, scratch: Path) -> None:
    """Run `aws s3 sync SOURCE DESTINATION` with its defaults (links followed).

    Args:
        endpoint: the local S3 server.
        source: a folder or `s3://bucket/prefix/`.
        destination: a folder or `s3://bucket/prefix/`.
        scratch: a folder for the process's home; nothing is written there.

    Raises:
        ValueError: the endpoint is not a local address.
        RuntimeError: the AWS CLI is not installed, or the sync failed.
    """
    if urlsplit(endpoint).hostname not in ("127.0.0.1", "localhost"):
        raise ValueError(f"refusing a non-local endpoint {endpoint!r}")
    if not AWS.is_file():
        raise RuntimeError(
            f"the AWS CLI is not installed at {AWS} (pip install awscli)"
        )
    command = [str(AWS), "--endpoint-url", endpoint, "s3", "sync", source, destination]
    done = subprocess.run(
        [*command, "--only-show-errors"],
        env=_sealed_env(scratch),
        capture_output=True,
        text=True,
        timeout=SYNC_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")


def _sealed_env(scratch: Path) -> dict[str, str]:
    env = {name: os.environ[name] for name in _KEPT_VARIABLES if name in os.environ}
    env.update(
        HOME=str(scratch),
        AWS_ACCESS_KEY_ID=FAKE_KEY_ID,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(scratch / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(scratch / "no-aws-credentials"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env
