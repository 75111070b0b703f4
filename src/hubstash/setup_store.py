"""Setting up a store for a project: ``hubstash init``.

``init_store`` makes a store ready to push to (creating its S3 bucket, private, when
asked), writes its format marker, and writes a ``hubstash.toml`` naming it. It never
asks for, reads into a file, or stores credentials: they stay in the AWS chain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from hubstash import layout
from hubstash.config import CONFIG_NAME
from hubstash.errors import UsageError
from hubstash.policy import policy_for_url
from hubstash.stores import S3Options, Store, open_store, s3errors
from hubstash.storeview import StoreView

if TYPE_CHECKING:
    from mypy_boto3_s3.literals import BucketLocationConstraintType

    from hubstash.stores.s3 import S3Store

logger = logging.getLogger(__name__)

# What a project's configuration may carry from the S3 options: where the store is
# and what it demands. Never credentials, profiles or local paths.
_SHARED_OPTIONS = (
    "endpoint_url",
    "region",
    "addressing_style",
    "sse",
    "sse_kms_key_id",
)
# What S3-compatible services answer for an API they do not have.
_UNSUPPORTED = {"NotImplemented", "XNotImplemented", "501"}
_REPO_EXAMPLE = """\
# The Hub repos this project needs; then run: hubstash push && hubstash lock
# [[repo]]
# id = "sentence-transformers/all-MiniLM-L6-v2"
# revision = "main"                    # branch, tag or commit
# include = ["*.json", "*.safetensors", "*.txt"]
"""


@dataclass(frozen=True)
class InitResult:
    """What ``init_store`` did.

    Attributes:
        store: the store's URL.
        config_path: the project configuration.
        config_written: False when it existed already (it was left as it was).
        bucket_created: True when the bucket was created, False when it existed,
            None when no bucket was asked for.
        public_access_blocked: whether public access to a new bucket was blocked.
        marker_written: False when the store already was a hubstash store.
        policies: the ``read`` and ``write`` IAM policies, for S3 stores.
    """

    store: str
    config_path: Path
    config_written: bool
    bucket_created: bool | None
    public_access_blocked: bool
    marker_written: bool
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)


def init_store(
    url: str,
    options: S3Options | None = None,
    *,
    config_path: Path = Path(CONFIG_NAME),
    create_bucket: bool = False,
) -> InitResult:
    """Make ``url`` a hubstash store and name it in a project configuration.

    Steps, in order: create the bucket when asked (private, public access blocked);
    write the format marker unless the store has one; write ``config_path`` unless
    it exists. The configuration is written last, so a store that cannot be
    prepared leaves no configuration pointing at it.

    Args:
        url: the store URL.
        options: S3 settings; those a team shares (endpoint, region, addressing,
            encryption) are written to the configuration, credentials never.
        config_path: the ``hubstash.toml`` to write; an existing file is kept.
        create_bucket: create the ``s3://`` store's bucket when it does not exist.

    Raises:
        UsageError: ``create_bucket`` for a store that is not ``s3://``, or a
            store that cannot be written (one published over HTTP).
        StoreFormatError: the store is of a newer format, or not a hubstash store.
        HubstashError: the store cannot be reached or written (subclasses say why).
    """
    options = options or S3Options()
    store = open_store(url, options)
    try:
        created, blocked = _bucket(store, create_bucket)
        marker_written = _write_marker(store)
    finally:
        store.close()
    written = _write_config(config_path, config_text(url, options))
    return InitResult(
        store=store.url,
        config_path=config_path,
        config_written=written,
        bucket_created=created,
        public_access_blocked=blocked,
        marker_written=marker_written,
        policies=_policies(url),
    )


def config_text(url: str, options: S3Options | None = None) -> str:
    """A new ``hubstash.toml`` naming the store, with a commented repo example."""
    import tomlkit

    lines = ["[store]", f"url = {tomlkit.string(url).as_string()}"]
    if url.startswith("s3://") and options is not None:
        lines += [
            f"{name.replace('_', '-')} = {tomlkit.string(value).as_string()}"
            for name, value in _shared_settings(options)
        ]
        lines.append("# Credentials never go here: hubstash reads the AWS chain.")
    return "\n".join(lines) + "\n\n" + _REPO_EXAMPLE


def _shared_settings(options: S3Options) -> list[tuple[str, str]]:
    settings = [(name, getattr(options, name)) for name in _SHARED_OPTIONS]
    return [
        (name, value)
        for name, value in settings
        if value and not (name == "addressing_style" and value == "auto")
    ]


def _bucket(store: Store, create: bool) -> tuple[bool | None, bool]:
    if not create:
        return None, False
    from hubstash.stores.s3 import S3Store

    if not isinstance(store, S3Store):
        raise UsageError(
            "--create-bucket is for s3:// stores",
            hint="a folder store is created by its first write",
        )
    if _bucket_exists(store) or not _create_bucket(store):
        logger.info("bucket %s exists: its settings are left as they are", store.bucket)
        return False, False
    return True, _block_public_access(store)


def _bucket_exists(store: S3Store) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        store.client.head_bucket(Bucket=store.bucket)
    except (BotoCoreError, ClientError) as exc:
        if s3errors.error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        # S3 authorizes HeadBucket with s3:ListBucket.
        raise s3errors.translate(
            exc, action="s3:ListBucket", bucket=store.bucket
        ) from exc
    return True


def _create_bucket(store: S3Store) -> bool:
    """Create the bucket in the client's region; False when it is already ours."""
    from botocore.exceptions import BotoCoreError, ClientError

    region = store.client.meta.region_name
    try:
        # us-east-1 is S3's default location and refuses to be named as one.
        if region in (None, "us-east-1", "aws-global"):
            store.client.create_bucket(Bucket=store.bucket)
        else:
            store.client.create_bucket(
                Bucket=store.bucket,
                CreateBucketConfiguration={"LocationConstraint": _location(region)},
            )
    except (BotoCoreError, ClientError) as exc:
        if s3errors.error_code(exc) == "BucketAlreadyOwnedByYou":
            return False
        raise s3errors.translate(
            exc, action="s3:CreateBucket", bucket=store.bucket
        ) from exc
    logger.info("created bucket %s in %s", store.bucket, region or "us-east-1")
    return True


def _location(region: str) -> BucketLocationConstraintType:
    # S3-compatible services name regions of their own; the service judges.
    return cast("BucketLocationConstraintType", region)


def _block_public_access(store: S3Store) -> bool:
    """Block every kind of public access; False where the service cannot."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        store.client.put_public_access_block(
            Bucket=store.bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    except (BotoCoreError, ClientError) as exc:
        if s3errors.error_code(exc) not in _UNSUPPORTED:
            raise s3errors.translate(
                exc, action="s3:PutBucketPublicAccessBlock", bucket=store.bucket
            ) from exc
        logger.warning(
            "this service cannot block public access: check that bucket %s is private",
            store.bucket,
        )
        return False
    return True


def _write_marker(store: Store) -> bool:
    view = StoreView(store)
    if view.check_format():
        logger.info("%s is already a hubstash store", store.url)
        return False
    view.check_format(create=True)
    logger.info("wrote %s%s", store.url, layout.FORMAT_KEY)
    return True


def _write_config(path: Path, text: str) -> bool:
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        return False
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from exc
    return True


def _policies(url: str) -> dict[str, dict[str, Any]]:
    if not url.startswith("s3://"):
        return {}
    return {role: policy_for_url(url, role) for role in ("read", "write")}
