"""The environment every process of the benchmark runs in.

Nothing may leave 127.0.0.1: credentials are fake, AWS config files and instance
metadata are out of reach, proxies are dropped, the Hub endpoint is a closed local
port, and the S3 endpoint is the local server even for a command that forgot its flag.
"""

from __future__ import annotations

import os
from pathlib import Path

# Variables inherited from the caller that could change where requests go or how a
# client behaves; the harness sets its own values instead.
DROPPED_PREFIXES = ("AWS_", "HF_", "HUGGINGFACE_", "S3_", "BOTO_", "HUBSTASH_")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy")


def isolated_env(scratch: Path, endpoint: str | None = None) -> dict[str, str]:
    """The caller's environment minus anything that could reach another host.

    Args:
        scratch: the benchmark's temporary folder; config files and HF_HOME point
            inside it.
        endpoint: the local S3 server, once it is known.
    """
    env = {name: value for name, value in os.environ.items() if _kept(name)}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(scratch / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(scratch / "no-aws-credentials"),
        HF_HOME=str(scratch / "hf-home"),
        HF_ENDPOINT="http://127.0.0.1:9",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    if endpoint:
        env.update(AWS_ENDPOINT_URL=endpoint, S3_ENDPOINT_URL=endpoint)
    return env


def _kept(name: str) -> bool:
    if name.upper().startswith(DROPPED_PREFIXES):
        return False
    return name.lower() not in PROXY_VARIABLES
