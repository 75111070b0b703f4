"""Least-privilege IAM policies for an S3 store, scoped to its prefix.

Three roles, each a superset of the one before:

- ``read``: what ``pull``, ``ls``, ``verify --store`` and ``lock --from-store`` need
  (for CI): ``s3:GetObject`` on the store's objects, and ``s3:ListBucket`` on the
  bucket for listings under the store's prefix only. Without ``s3:ListBucket``, S3
  answers 403 instead of 404 for a key that does not exist, so a store cannot even
  tell "missing" from "denied".
- ``write``: what ``push`` adds: ``s3:PutObject`` (multipart uploads included),
  ``s3:AbortMultipartUpload`` to clean up a failed upload,
  ``s3:ListMultipartUploadParts``, and ``s3:DeleteObject`` under ``pending/`` only,
  where a push keeps the record that guards its blobs from a concurrent gc and
  deletes it when done.
- ``admin``: ``s3:DeleteObject`` on the whole store, for prune and gc.

No statement reaches beyond ``arn:aws:s3:::bucket/prefix/*``, and listings are
limited by an ``s3:prefix`` condition to ``prefix/`` and what is below it.
"""

from __future__ import annotations

import json
from typing import Any, Literal, get_args

from hubstash import layout
from hubstash.errors import UsageError

Role = Literal["read", "write", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

READ_ACTIONS = ("s3:GetObject",)
WRITE_ACTIONS = (
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)
DELETE_ACTIONS = ("s3:DeleteObject",)
# IAM reads these as wildcards or policy variables: a name holding one would widen
# the policy beyond the store.
_SPECIAL = ("*", "?", "$")


def store_policy(bucket: str, prefix: str = "", role: Role = "read") -> dict[str, Any]:
    """The IAM policy document that lets ``role`` use ``s3://bucket/prefix/``.

    Args:
        bucket: the bucket name.
        prefix: the store's prefix in the bucket; "" for a store at the bucket root.
        role: ``read``, ``write`` or ``admin``.

    Returns:
        A policy document, ready for ``json.dumps``.

    Raises:
        UsageError: an unknown role, or a name IAM would read as a wildcard.
    """
    _check_role(role)
    prefix = prefix.strip("/")
    _check_literal(bucket, "bucket name")
    _check_literal(prefix, "prefix")
    statements = [
        _list_statement(bucket, prefix),
        _objects("ReadStoreObjects", READ_ACTIONS, bucket, prefix),
    ]
    if role == "write":
        # A push deletes its own record of the blobs it uses (``gcprotocol``).
        records = _join(prefix, layout.PENDING.rstrip("/"))
        statements += [
            _objects("WriteStoreObjects", WRITE_ACTIONS, bucket, prefix),
            _objects("DeletePushRecords", DELETE_ACTIONS, bucket, records),
        ]
    if role == "admin":
        statements += [
            _objects("WriteStoreObjects", WRITE_ACTIONS, bucket, prefix),
            _objects("DeleteStoreObjects", DELETE_ACTIONS, bucket, prefix),
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def policy_for_url(url: str, role: Role = "read") -> dict[str, Any]:
    """The policy of ``role`` for the store at ``s3://bucket/prefix``.

    Raises:
        UsageError: the URL is not an ``s3://`` URL (folder and HTTP stores are
            protected by file or web server permissions, not IAM).
    """
    if not url.startswith("s3://"):
        raise UsageError(
            f"IAM policies are for s3:// stores, not {url!r}",
            hint="protect a folder store with file permissions, and an HTTP store"
            " with the web server's",
        )
    from hubstash.stores.s3 import parse_s3_url

    bucket, prefix = parse_s3_url(url)
    return store_policy(bucket, prefix, role)


def render(policy: dict[str, Any]) -> str:
    """The policy as the JSON text IAM consoles and ``aws iam`` accept."""
    return json.dumps(policy, indent=2) + "\n"


def _list_statement(bucket: str, prefix: str) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": "ListStorePrefix",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
    }
    if prefix:
        patterns = [f"{prefix}/", f"{prefix}/*"]
        statement["Condition"] = {"StringLike": {"s3:prefix": patterns}}
    return statement


def _objects(
    sid: str, actions: tuple[str, ...], bucket: str, prefix: str
) -> dict[str, Any]:
    objects = f"{bucket}/{prefix}/*" if prefix else f"{bucket}/*"
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": f"arn:aws:s3:::{objects}",
    }


def _join(prefix: str, folder: str) -> str:
    return f"{prefix}/{folder}" if prefix else folder


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UsageError(
            f"unknown role {role!r}", hint=f"use one of {', '.join(ROLES)}"
        )


def _check_literal(name: str, what: str) -> None:
    special = [c for c in _SPECIAL if c in name]
    if special:
        raise UsageError(
            f"the {what} {name!r} holds {special[0]!r}, which IAM reads as a wildcard"
            " or variable: no policy can be limited to it",
            hint="use a store prefix without *, ? or $",
        )
