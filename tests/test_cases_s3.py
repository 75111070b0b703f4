"""Field cases that only an S3 store shows (I3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hubstash import ExitCode, pull, push
from hubstash.stores import S3Options, open_store
from tests.support.caches import write_canonical_repo
from tests.support.fake_hub import HubFile
from tests.support.s3server import S3Server
from tests.support.stores import s3_credentials

MiB = 1024 * 1024


def test_i3_integrity_comes_from_names_never_from_s3_etags(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_credentials(monkeypatch)
    bucket = s3_server.new_bucket()
    options = S3Options(endpoint_url=s3_server.endpoint, part_size=5 * MiB, jobs=2)
    url = f"s3://{bucket}/hf"
    weights = HubFile("model.safetensors", os.urandom(6 * MiB), lfs=True)
    repo = write_canonical_repo(tmp_path / "hub", "acme/parts", [weights])
    blob = repo.blob_name(weights.path)
    key = f"hf/blobs/sha256/{blob[:2]}/{blob}"

    push(open_store(url, options), tmp_path / "hub")
    multipart_etag = s3_server.client().head_object(Bucket=bucket, Key=key)["ETag"]
    # The same bytes uploaded in one part: another ETag, the same content.
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=weights.content)
    same = pull(open_store(url, options), tmp_path / "same")
    # Other bytes of the same size: a plausible ETag, the wrong content.
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=os.urandom(6 * MiB))
    other = pull(open_store(url, options), tmp_path / "other")

    assert multipart_etag.strip('"').endswith("-2")
    assert same.exit_code == ExitCode.OK, same.findings
    assert other.exit_code == ExitCode.INTEGRITY
    assert not (tmp_path / "other" / repo.folder / "snapshots" / repo.commit).exists()
