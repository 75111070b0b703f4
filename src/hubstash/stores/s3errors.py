"""Turning botocore's exceptions into hubstash errors that say what to do.

This is the one place that knows botocore's error shapes. Each message names the
bucket, what was being done, and for denials the IAM action that is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hubstash.errors import (
    AccessDenied,
    HubstashError,
    IntegrityError,
    NoCredentials,
    NotFound,
    StoreUnreachable,
    UsageError,
)

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

_CREDENTIALS_HINT = (
    "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or pass"
    " --no-sign-request for a public bucket"
)
_BAD_CREDENTIALS = {
    "InvalidAccessKeyId": "the access key id is not known to this endpoint",
    "SignatureDoesNotMatch": "the secret key does not match the access key id",
    "ExpiredToken": "the session token has expired",
    "InvalidToken": "the session token is not valid",
    "TokenRefreshRequired": "the session token has expired",
}
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "301"}
# Reads of one key: a 403 for them may stand for a key that does not exist.
_READS = {"s3:GetObject", "s3:HeadObject"}
_WRITES = {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}


def translate(
    exc: Exception, *, action: str, bucket: str, key: str = ""
) -> HubstashError:
    """A hubstash error for a botocore failure of ``action`` (e.g. ``s3:GetObject``)."""
    # Imported here so that reading a store's options never loads the SDK.
    from botocore import exceptions as bx

    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    if isinstance(exc, bx.ClientError):
        return _client_error(exc, action, bucket, where)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return no_credentials()
    if isinstance(exc, bx.CredentialRetrievalError):
        return AccessDenied(f"AWS credentials could not be loaded: {exc}")
    if isinstance(exc, bx.ProfileNotFound):
        return UsageError(str(exc), hint="check --profile and ~/.aws/config")
    if isinstance(exc, bx.SSLError):
        return StoreUnreachable(
            f"TLS verification failed for {where}: {exc}",
            hint="pass --ca-bundle with your endpoint's certificate authority",
        )
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        return StoreUnreachable(
            f"cannot connect to the endpoint for {where}",
            hint="check --endpoint-url, the network, or the region",
        )
    if isinstance(exc, bx.ReadTimeoutError):
        return StoreUnreachable(
            f"{action} on {where}: the endpoint stopped answering (read timeout)",
            hint="check the network and the endpoint, then run the command again;"
            " set HUBSTASH_S3_READ_TIMEOUT to wait longer",
        )
    if broke_off(exc):
        return StoreUnreachable(
            f"{action} on {where}: the answer broke off midway ({exc})",
            hint="check the network and the endpoint, then run the command again;"
            " what was verified is kept",
        )
    if isinstance(exc, bx.BotoCoreError):
        return StoreUnreachable(f"{action} on {where} failed: {exc}")
    return HubstashError(f"{action} on {where} failed: {exc}")


def broke_off(exc: BaseException | None) -> bool:
    """Whether a botocore failure is an answer that stopped midway: reset, cut
    short, or stalled past the read timeout. Asking again may well succeed."""
    from botocore import exceptions as bx

    return isinstance(
        exc,
        bx.ResponseStreamingError
        | bx.IncompleteReadError
        | bx.ReadTimeoutError
        | bx.ConnectionClosedError,
    )


def error_code(exc: Exception) -> str:
    """The S3 error code of a botocore failure (``BucketAlreadyOwnedByYou``), or ""."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return ""
    return str(exc.response.get("Error", {}).get("Code", ""))


def no_credentials() -> NoCredentials:
    return NoCredentials("no AWS credentials found", hint=_CREDENTIALS_HINT)


def _client_error(
    exc: ClientError, action: str, bucket: str, where: str
) -> HubstashError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in ("NoSuchBucket",):
        return StoreUnreachable(
            f"bucket {bucket!r} does not exist at this endpoint",
            hint="check the store URL, --endpoint-url and --region",
        )
    if code == "BucketAlreadyExists":
        return UsageError(
            f"the bucket name {bucket!r} is taken by another account",
            hint="bucket names are global: choose another",
        )
    if code == "InvalidRange" or status == 416:
        return IntegrityError(f"{where} is shorter than the manifest says", path=where)
    if code in ("NoSuchKey", "404", "NotFound"):
        return NotFound(f"{where} does not exist")
    if code in _BAD_CREDENTIALS:
        return AccessDenied(
            f"{_BAD_CREDENTIALS[code]} ({where})", hint=_CREDENTIALS_HINT
        )
    if code in _WRONG_REGION or status == 301:
        region = error.get("Region") or exc.response.get("ResponseMetadata", {}).get(
            "HTTPHeaders", {}
        ).get("x-amz-bucket-region")
        hint = f"pass --region {region}" if region else "pass the bucket's --region"
        return StoreUnreachable(f"bucket {bucket!r} is in another region", hint=hint)
    if (
        code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled")
        or status == 403
    ):
        return _denied(action, where)
    if status >= 500:
        retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        return StoreUnreachable(
            f"{action} on {where}: the server answered {status} {code}"
            f" ({retries} retries)",
            hint="the service is failing or throttling: run the command again"
            " later, with fewer --jobs if it answers SlowDown",
        )
    message = error.get("Message") or code
    return HubstashError(f"{action} on {where} failed: {message}")


def _denied(action: str, where: str) -> AccessDenied:
    if action in _READS:
        # Without ListBucket, S3 answers 403 instead of 404 for a missing key: this
        # denial may mean "not there", and must never be read as present or absent.
        return AccessDenied(
            f"access denied: {action} on {where}",
            hint="grant s3:GetObject on the store prefix and s3:ListBucket on the"
            " bucket, without which S3 answers 403, not 404, for a missing key;"
            " hubstash policy prints both",
        )
    if action == "s3:ListBucket":
        return AccessDenied(
            f"access denied: s3:ListBucket on {where}",
            hint="grant s3:ListBucket on the bucket, limited to the store prefix by"
            " an s3:prefix condition; hubstash policy prints it",
        )
    if action in _WRITES:
        return AccessDenied(
            f"access denied: {action} on {where}",
            hint=f"grant {action} on the store prefix to these credentials"
            "; hubstash policy --role write prints what push needs",
        )
    if action == "s3:DeleteObject":
        return AccessDenied(
            f"access denied: s3:DeleteObject on {where}",
            hint="grant s3:DeleteObject on the store prefix to these credentials;"
            " hubstash policy --role admin prints what prune and gc need",
        )
    return AccessDenied(
        f"access denied: {action} on {where}",
        hint=f"grant {action} to these credentials",
    )


# What services without DeleteObjects (or without the checksum it now requires)
# answer it with; single DeleteObject requests work there.
_NO_BATCH_DELETE = {
    "NotImplemented",
    "XNotImplemented",
    "MethodNotAllowed",
    "MissingContentMD5",
    "InvalidDigest",
    "InvalidRequest",
    "MalformedXML",
}


def batch_delete_unsupported(exc: Exception) -> bool:
    """Whether a failed DeleteObjects request means the service lacks it."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in _NO_BATCH_DELETE or status in (405, 501)


def delete_failure(error: dict[str, str], *, bucket: str) -> HubstashError | None:
    """The error for one key a DeleteObjects answer lists, or None when the key was
    already gone (which deleting does not mind)."""
    from botocore.exceptions import ClientError

    code = error.get("Code", "")
    if code in ("NoSuchKey", "404", "NotFound"):
        return None
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": error.get("Message", code)}
    }
    exc = ClientError(response, "DeleteObjects")  # type: ignore[arg-type]
    return translate(
        exc, action="s3:DeleteObject", bucket=bucket, key=error.get("Key", "")
    )
