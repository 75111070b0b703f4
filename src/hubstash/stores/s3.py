"""A store in S3 or any S3-compatible service (MinIO, R2, B2, Ceph, GCS interop)."""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hubstash import crashpoints
from hubstash.errors import IntegrityError, StoreUnreachable, UsageError
from hubstash.stores import s3errors
from hubstash.stores.base import ProgressFn, Sink, Store, StoreObject
from hubstash.stores.s3options import S3Options

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

T = TypeVar("T")
MiB = 1024 * 1024
MAX_PARTS = 10_000
MIN_UPLOAD_PART = 5 * MiB
MAX_DELETE_BATCH = 1000  # the most keys S3 takes in one DeleteObjects request
# An answer that breaks off midway is asked for again this often, waiting twice as
# long each time (with jitter), never more than the cap.
BODY_ATTEMPTS = 4
FIRST_BACKOFF = 0.25
MAX_BACKOFF = 4.0


class S3Store(Store):
    """Objects under ``s3://bucket/prefix/``.

    Uploads over one part go up in parallel parts, and downloads over one part come
    down in parallel ranges; memory is bounded by ``jobs * part_size`` whatever the
    file size. Throttled and failed requests are retried by botocore's standard
    mode; an answer whose body breaks off (reset, cut short, stalled past the read
    timeout) is asked for again here, for that part only. Both kinds of retry use
    bounded backoff and are counted in ``retries``.
    """

    ranged_reads = True
    retries_itself = True

    def __init__(self, bucket: str, prefix: str, options: S3Options) -> None:
        self._batch_deletes = True
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.options = options
        self.url = f"s3://{bucket}/{self.prefix}"
        self._retries = 0
        self._retries_lock = threading.Lock()

    # The SDK is loaded and the client made on first use: a pull that finds the
    # cache complete never pays for either, nor sends a request.
    @functools.cached_property
    def _session(self) -> Any:
        import boto3

        try:
            return boto3.session.Session(profile_name=self.options.profile)
        except Exception as exc:
            raise s3errors.translate(exc, action="connect", bucket=self.bucket) from exc

    @functools.cached_property
    def client(self) -> S3Client:
        client = _make_client(self.options, self._session)
        client.meta.events.register("after-call.s3", self._count_sdk_retries)
        client.meta.events.register("after-call-error.s3", self._count_sdk_retries)
        logger.debug("store %s", self._describe(client))
        return client

    @property
    def retries(self) -> int:
        with self._retries_lock:
            return self._retries

    def _count_sdk_retries(
        self, context: dict[str, Any] | None = None, **_: Any
    ) -> None:
        attempt = int((context or {}).get("retries", {}).get("attempt", 1))
        self._add_retries(attempt - 1)

    def _add_retries(self, n: int) -> None:
        if n > 0:
            with self._retries_lock:
                self._retries += n

    @functools.cached_property
    def _parts(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.options.jobs, thread_name_prefix="hubstash-part")

    def require_credentials(self) -> None:
        if self.options.no_sign_request:
            return
        if self._session.get_credentials() is None:
            raise s3errors.no_credentials()

    def describe(self) -> str:
        return self._describe(self.client)

    def _describe(self, client: S3Client) -> str:
        meta = client.meta
        return (
            f"{self.url} endpoint={meta.endpoint_url} region={meta.region_name}"
            f" addressing={self.options.effective_addressing}"
            f" signed={not self.options.no_sign_request}"
        )

    def read(self, key: str) -> bytes:
        return self._get(key)

    def read_stream(self, key: str) -> Iterator[bytes]:
        response = self._call(
            "s3:GetObject", key, self.client.get_object, Key=self._k(key)
        )
        body = response["Body"]
        chunks = body.iter_chunks(MiB)
        while True:
            chunk = self._guard("s3:GetObject", key, lambda: next(chunks, b""))
            if not chunk:
                return
            yield chunk

    def read_range(self, key: str, start: int, length: int) -> bytes:
        return self._get(key, Range=f"bytes={start}-{start + length - 1}")

    def download(self, key: str, sink: Sink, size: int, progress: ProgressFn) -> None:
        """Stream in one request, or in parallel ranges of ``part_size``. An answer
        that breaks off is resumed: the stream from its first missing byte, a range
        alone, so what arrived is kept."""
        part_size = self.part_size_for(size)
        if size <= part_size:
            self._stream(key, sink, progress)
            return

        def fetch(offset: int) -> None:
            length = min(part_size, size - offset)
            data = self.read_range(key, offset, length)
            if len(data) != length:
                raise IntegrityError(
                    f"{self.url}{key} gave {len(data)} bytes at offset {offset},"
                    f" expected {length}: it is not the object the manifest names",
                    path=key,
                )
            sink.write_at(offset, data)
            progress(len(data))

        list(self._parts.map(fetch, range(0, size, part_size)))

    def write(self, key: str, data: bytes) -> None:
        self._call(
            "s3:PutObject",
            key,
            self.client.put_object,
            Key=self._k(key),
            Body=data,
            **self._encryption(),
        )

    def upload(self, key: str, path: Path, size: int, progress: ProgressFn) -> None:
        part_size = self.part_size_for(size, upload=True)
        if size <= part_size:
            with open(path, "rb") as f:
                self._call(
                    "s3:PutObject",
                    key,
                    self.client.put_object,
                    Key=self._k(key),
                    Body=f,
                    ContentLength=size,
                    **self._encryption(),
                )
            progress(size)
            return
        self._multipart(key, path, size, part_size, progress)

    def listing(self, prefix: str) -> Iterator[StoreObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self._k(prefix))
        iterator = iter(pages)
        while True:
            page = self._guard("s3:ListBucket", prefix, lambda: next(iterator, None))
            if page is None:
                return
            for item in page.get("Contents", []):
                yield StoreObject(
                    item["Key"][len(self.prefix) :],
                    item["Size"],
                    item["LastModified"].timestamp(),
                )

    def delete(self, keys: Iterable[str]) -> None:
        """Delete in DeleteObjects batches of 1000 keys, or one by one where the
        service lacks batch deletes (decided once, by its first answer)."""
        pending = list(keys)
        for start in range(0, len(pending), MAX_DELETE_BATCH):
            batch = pending[start : start + MAX_DELETE_BATCH]
            if self._batch_deletes and self._delete_batch(batch):
                continue
            for key in batch:
                self._call(
                    "s3:DeleteObject", key, self.client.delete_object, Key=self._k(key)
                )

    def _delete_batch(self, keys: list[str]) -> bool:
        """Delete with one DeleteObjects request; False when the service lacks it."""
        from botocore.exceptions import BotoCoreError, ClientError

        objects: list[Any] = [{"Key": self._k(key)} for key in keys]
        try:
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
            )
        except (BotoCoreError, ClientError) as exc:
            if not s3errors.batch_delete_unsupported(exc):
                raise s3errors.translate(
                    exc, action="s3:DeleteObject", bucket=self.bucket, key=keys[0]
                ) from exc
            logger.debug("no batch deletes here (%s): deleting one by one", exc)
            self._batch_deletes = False
            return False
        for error in response.get("Errors", []):
            fields = {name: str(value) for name, value in error.items()}
            failure = s3errors.delete_failure(fields, bucket=self.bucket)
            if failure is not None:
                raise failure
        return True

    def part_size_for(self, size: int, *, upload: bool = False) -> int:
        """The configured part size, raised to what S3 accepts for uploads.

        S3 refuses upload parts under 5 MiB (but the last) and more than 10,000
        parts; ranged downloads have no such limit.
        """
        floor = MIN_UPLOAD_PART if upload else 1
        return max(self.options.part_size, floor, math.ceil(size / MAX_PARTS))

    def close(self) -> None:
        if "_parts" in self.__dict__:
            self._parts.shutdown(wait=True)
        if "client" in self.__dict__:
            self.client.close()

    def _multipart(
        self, key: str, path: Path, size: int, part_size: int, progress: ProgressFn
    ) -> None:
        created = self._call(
            "s3:PutObject",
            key,
            self.client.create_multipart_upload,
            Key=self._k(key),
            **self._encryption(),
        )
        upload_id = created["UploadId"]
        try:
            parts = self._upload_parts(key, path, size, part_size, upload_id, progress)
            self._call(
                "s3:PutObject",
                key,
                self.client.complete_multipart_upload,
                Key=self._k(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            self._abort(key, upload_id)
            raise

    def _upload_parts(
        self,
        key: str,
        path: Path,
        size: int,
        part_size: int,
        upload_id: str,
        progress: ProgressFn,
    ) -> list[dict[str, Any]]:
        fd = os.open(path, os.O_RDONLY)
        try:

            def send(number: int) -> dict[str, Any]:
                offset = (number - 1) * part_size
                data = os.pread(fd, min(part_size, size - offset), offset)
                response = self._call(
                    "s3:PutObject",
                    key,
                    self.client.upload_part,
                    Key=self._k(key),
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                )
                progress(len(data))
                crashpoints.reached("s3-part-uploaded")
                return {"PartNumber": number, "ETag": response["ETag"]}

            numbers = range(1, math.ceil(size / part_size) + 1)
            return list(self._parts.map(send, numbers))
        finally:
            os.close(fd)

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._k(key), UploadId=upload_id
            )
        except Exception:  # the original failure matters more than this one
            logger.warning("could not abort the multipart upload of %s", key)

    def _encryption(self) -> dict[str, str]:
        extra: dict[str, str] = {}
        if self.options.sse:
            extra["ServerSideEncryption"] = self.options.sse
        if self.options.sse_kms_key_id:
            extra["SSEKMSKeyId"] = self.options.sse_kms_key_id
        return extra

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _stream(self, key: str, sink: Sink, progress: ProgressFn) -> None:
        """Write an object into ``sink`` in order, one chunk in memory at a time."""
        written = 0
        for attempt in range(1, BODY_ATTEMPTS + 1):
            resume = {"Range": f"bytes={written}-"} if written else {}
            response = self._call(
                "s3:GetObject", key, self.client.get_object, Key=self._k(key), **resume
            )
            body = response["Body"]
            try:
                for chunk in self._chunks(key, body):
                    sink.write(chunk)
                    written += len(chunk)
                    progress(len(chunk))
                return
            except StoreUnreachable as exc:
                if attempt == BODY_ATTEMPTS or not s3errors.broke_off(exc.__cause__):
                    raise
                logger.warning("resuming %s at byte %d after: %s", key, written, exc)
                self._add_retries(1)
            finally:
                body.close()
            time.sleep(_backoff(attempt))

    def _chunks(self, key: str, body: Any) -> Iterator[bytes]:
        chunks = body.iter_chunks(MiB)
        while chunk := self._guard("s3:GetObject", key, lambda: next(chunks, b"")):
            yield chunk

    def _get(self, key: str, **kwargs: Any) -> bytes:
        """A GET's whole body. botocore retries a request that fails, not a body
        that breaks off later (reset, cut short, stalled): that is retried here.
        Only the body is, so that the two kinds of retry never multiply."""
        for attempt in range(1, BODY_ATTEMPTS + 1):
            response = self._call(
                "s3:GetObject", key, self.client.get_object, Key=self._k(key), **kwargs
            )
            body = response["Body"]
            try:
                return self._guard("s3:GetObject", key, body.read)
            except StoreUnreachable as exc:
                if attempt == BODY_ATTEMPTS or not s3errors.broke_off(exc.__cause__):
                    raise
                logger.warning("retrying %s after: %s", key, exc.message)
                self._add_retries(1)
            finally:
                body.close()
            time.sleep(_backoff(attempt))
        raise AssertionError("unreachable")

    def _call(
        self, action: str, key: str, method: Callable[..., T], **kwargs: Any
    ) -> T:
        return self._guard(action, key, lambda: method(Bucket=self.bucket, **kwargs))

    def _guard(self, action: str, key: str, thunk: Callable[[], T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return thunk()
        except (BotoCoreError, ClientError) as exc:
            raise s3errors.translate(
                exc, action=action, bucket=self.bucket, key=self._k(key)
            ) from exc


def _backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt``: doubling, capped, with jitter."""
    ceiling = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def parse_s3_url(url: str) -> tuple[str, str]:
    """Bucket and prefix of ``s3://bucket[/prefix]``."""
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise UsageError(f"{url!r} names no bucket", hint="use s3://bucket/prefix")
    return bucket, prefix


def _make_client(options: S3Options, session: Any) -> S3Client:
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    custom = options.endpoint_url is not None
    config = Config(
        signature_version=UNSIGNED if options.no_sign_request else None,
        s3={"addressing_style": options.effective_addressing},  # type: ignore[arg-type]
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=max(10, options.jobs * 2 + 2),
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        # Several S3-compatible services reject the CRC32 checksums that newer
        # botocore sends by default; send them only when an operation needs them.
        request_checksum_calculation="when_required" if custom else "when_supported",
        response_checksum_validation="when_required" if custom else "when_supported",
    )
    try:
        region = (
            options.region or session.region_name or ("us-east-1" if custom else None)
        )
        client: S3Client = session.client(
            "s3",
            endpoint_url=options.endpoint_url,
            region_name=region,
            verify=options.ca_bundle,
            config=config,
        )
    except BotoCoreError as exc:
        raise s3errors.translate(exc, action="connect", bucket="?") from exc
    return client
