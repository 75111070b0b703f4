"""Where store settings come from: flag, then environment, then file, then default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hubstash.config import Config
from hubstash.errors import UsageError
from hubstash.stores import S3Options
from hubstash.stores.s3options import DEFAULT_PART_SIZE

_ADDRESSING = ("auto", "path", "virtual")
_SSE = ("AES256", "aws:kms")


@dataclass(frozen=True)
class StoreFlags:
    """The store settings given on the command line (None: not given)."""

    url: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    no_sign_request: bool | None = None
    addressing_style: str | None = None
    ca_bundle: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    part_size: int | None = None
    jobs: int = 8


def store_url(
    flags: StoreFlags, config: Config, environ: Mapping[str, str] | None = None
) -> str:
    """The store URL, or "" when none is configured anywhere."""
    env = os.environ if environ is None else environ
    url = flags.url or env.get("HUBSTASH_STORE") or config.store.get("url") or ""
    if not isinstance(url, str):
        raise UsageError(f"{config.path}: store url must be a string")
    return url


def s3_options(
    flags: StoreFlags, config: Config, environ: Mapping[str, str] | None = None
) -> S3Options:
    """The S3 options, each from the first place that sets it.

    Raises:
        UsageError: a value is of the wrong kind or not one of the allowed ones.
    """
    env = os.environ if environ is None else environ
    file = config.store

    def pick(flag: Any, env_names: tuple[str, ...], key: str) -> Any:
        if flag is not None:
            return flag
        for name in env_names:
            if env.get(name):
                return env[name]
        return file.get(key)

    options = S3Options(
        endpoint_url=pick(
            flags.endpoint_url,
            ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
            "endpoint-url",
        ),
        region=pick(flags.region, (), "region"),
        profile=pick(flags.profile, (), "profile"),
        no_sign_request=bool(pick(flags.no_sign_request, (), "no-sign-request")),
        addressing_style=pick(flags.addressing_style, (), "addressing-style") or "auto",
        ca_bundle=pick(flags.ca_bundle, ("AWS_CA_BUNDLE",), "ca-bundle"),
        sse=pick(flags.sse, (), "sse"),
        sse_kms_key_id=pick(flags.sse_kms_key_id, (), "sse-kms-key-id"),
        part_size=flags.part_size or DEFAULT_PART_SIZE,
        jobs=flags.jobs,
        connect_timeout=_seconds(env, "HUBSTASH_S3_CONNECT_TIMEOUT", 10.0),
        read_timeout=_seconds(env, "HUBSTASH_S3_READ_TIMEOUT", 60.0),
    )
    _check(options)
    return options


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise UsageError(f"{name} must be a positive number of seconds, not {text!r}")
    return value


def _check(options: S3Options) -> None:
    endpoint = options.endpoint_url
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise UsageError(
            f"endpoint URL {endpoint!r} must start with http:// or https://"
        )
    if options.addressing_style not in _ADDRESSING:
        raise UsageError(f"addressing style must be one of {', '.join(_ADDRESSING)}")
    if options.sse is not None and options.sse not in _SSE:
        raise UsageError(f"sse must be one of {', '.join(_SSE)}")
    if options.sse_kms_key_id and options.sse != "aws:kms":
        raise UsageError("an SSE KMS key id needs sse = aws:kms")
    for name in ("endpoint_url", "region", "profile", "ca_bundle"):
        value = getattr(options, name)
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{name.replace('_', '-')} must be a string")
