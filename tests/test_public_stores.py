"""Public stores: anonymous S3 requests, and stores published over plain HTTP(S).

moto serves an anonymous GET of an object only when the bucket policy allows
everyone (``Principal: *``) to read it, and any signed request regardless; so a
pull that succeeds against a public bucket and is refused without the policy proves
its requests were unsigned. (moto does not check anonymous listings or writes.)
"""

from __future__ import annotations

import json
import os
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hubstash import ExitCode, push
from hubstash.cli import main
from hubstash.errors import StoreUnreachable, UsageError
from hubstash.stores import FolderStore, S3Options, open_store
from hubstash.stores.http import HttpStore
from tests.support.caches import HandBuiltRepo, default_files, write_canonical_repo
from tests.support.hashes import sha256_hex
from tests.support.s3server import S3Server
from tests.support.stores import s3_credentials
from tests.support.tls import throwaway_certificate


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def hubstash(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    code = main(list(args))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


@dataclass(frozen=True)
class Published:
    """A folder store pushed from a cache, and a project that locked it."""

    store: Path
    repo: HandBuiltRepo
    project: Path


@pytest.fixture
def published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Published:
    store = tmp_path / "site" / "hf"
    cache = tmp_path / "hub"
    repo = write_canonical_repo(cache, "acme/tiny", default_files(), trees=True)
    push(FolderStore(store), cache)
    project = tmp_path / "project"
    project.mkdir()
    (project / "hubstash.toml").write_text('[[repo]]\nid = "acme/tiny"\n')
    monkeypatch.chdir(project)
    monkeypatch.delenv("HUBSTASH_STORE", raising=False)
    monkeypatch.delenv("HUBSTASH_CONFIG", raising=False)
    assert hubstash(capsys, "lock", "--cache-dir", str(cache)).code == ExitCode.OK
    return Published(store, repo, project)


# --------------------------------------------------------------------------------------
# Over plain HTTP(S), with no SDK


@dataclass(frozen=True)
class Site:
    url: str
    paths: list[str]


@contextmanager
def static_site(folder: Path, tls: ssl.SSLContext | None = None) -> Iterator[Site]:
    """Python's own static file server for ``folder`` on 127.0.0.1."""
    paths: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reports what went wrong."""

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=str(folder))
    )
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield Site(f"{scheme}://127.0.0.1:{server.server_address[1]}", paths)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_locked_pull_restores_from_a_store_published_over_http(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = tmp_path / "fresh"

    with static_site(published.store.parent) as site:
        pulled = hubstash(
            capsys, "pull", "--locked", "--store", f"{site.url}/hf/",
            "--cache-dir", str(fresh),
        )  # fmt: skip
    verified = hubstash(capsys, "verify", "--locked", "--cache-dir", str(fresh))

    snapshot = fresh / published.repo.folder / "snapshots" / published.repo.commit
    assert pulled.code == ExitCode.OK, pulled.err
    assert verified.code == ExitCode.OK, verified.err
    for path, hub_file in published.repo.files.items():
        assert (snapshot / path).read_bytes() == hub_file.content
    assert site.paths
    assert all(p.startswith("/hf/blobs/sha256/") for p in site.paths)


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["pull", "--cache-dir", "{fresh}"], "pull --locked works over HTTP"),
        (["pull", "acme/tiny", "--cache-dir", "{fresh}"], "cannot be listed"),
        (["push", "--cache-dir", "{cache}"], "read-only store published over HTTP"),
        (["ls"], "cannot be listed"),
        (["lock", "--from-store"], "cannot be listed"),
    ],
)
def test_an_http_store_refuses_what_needs_a_listing_or_a_write_in_one_line(
    published: Published,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    words: str,
) -> None:
    folders = {"fresh": tmp_path / "fresh", "cache": published.repo.cache_dir}
    args = [a.format(**folders) for a in command]
    lock_before = (published.project / "hubstash.lock").read_bytes()

    with static_site(published.store.parent) as site:
        result = hubstash(capsys, *args, "--store", f"{site.url}/hf")

    errors = [line for line in result.err.splitlines() if "error" in line]
    assert result.code == ExitCode.USAGE
    assert len(errors) == 1
    assert words in errors[0]
    assert site.paths == [] or site.paths == ["/hf/hubstash-store.json"]
    assert (published.project / "hubstash.lock").read_bytes() == lock_before
    assert not (tmp_path / "fresh").exists()


def test_writes_to_an_http_store_are_refused_by_the_library_too() -> None:
    store = open_store("https://models.example.org/hf")

    with pytest.raises(UsageError, match="read-only"):
        store.write("hubstash-store.json", b"{}")
    with pytest.raises(UsageError, match="read-only"):
        store.delete(["hubstash-store.json"])


def test_bytes_an_http_store_serves_altered_are_refused(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = published.repo.files["config.json"].content
    digest = sha256_hex(content)
    (published.store / "blobs" / "sha256" / digest[:2] / digest).write_bytes(
        b'{"model_type": "tampered!!"}\n'
    )
    fresh = tmp_path / "fresh"

    with static_site(published.store.parent) as site:
        result = hubstash(
            capsys, "pull", "--locked", "--store", f"{site.url}/hf",
            "--cache-dir", str(fresh),
        )  # fmt: skip

    assert result.code == ExitCode.INTEGRITY
    snapshot = fresh / published.repo.folder / "snapshots" / published.repo.commit
    assert not snapshot.exists()


def test_a_file_an_http_store_lacks_is_reported_missing(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = sha256_hex(published.repo.files["config.json"].content)
    (published.store / "blobs" / "sha256" / digest[:2] / digest).unlink()

    with static_site(published.store.parent) as site:
        result = hubstash(
            capsys, "pull", "--locked", "--store", f"{site.url}/hf",
            "--cache-dir", str(tmp_path / "fresh"),
        )  # fmt: skip

    assert result.code == ExitCode.INCOMPLETE
    assert f"/hf/blobs/sha256/{digest[:2]}/{digest} does not exist" in result.err


def test_an_http_store_that_cannot_be_reached_says_so(tmp_path: Path) -> None:
    with static_site(tmp_path) as site:
        gone = site.url
    store = HttpStore(gone)

    with pytest.raises(StoreUnreachable, match="cannot connect"):
        store.read("hubstash-store.json")


def test_https_stores_use_the_ca_bundle_given(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    certificate, tls = self_signed_tls(tmp_path)

    with static_site(published.store.parent, tls) as site:
        untrusted = HttpStore(f"{site.url}/hf")
        with pytest.raises(StoreUnreachable, match="TLS verification failed"):
            untrusted.read("hubstash-store.json")
        pulled = hubstash(
            capsys, "pull", "--locked", "--store", f"{site.url}/hf",
            "--ca-bundle", str(certificate), "--cache-dir", str(tmp_path / "fresh"),
        )  # fmt: skip

    assert site.url.startswith("https://127.0.0.1:")
    assert pulled.code == ExitCode.OK, pulled.err


def self_signed_tls(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 signed by itself, and a server context using it."""
    certificate = throwaway_certificate(folder)
    return certificate.cert, certificate.server_context()


# --------------------------------------------------------------------------------------
# Anonymous S3 requests: --no-sign-request


def public_read(bucket: str, prefix: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*",
                }
            ],
        }
    )


def no_credentials_at_all(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Leave the AWS chain with nothing to find: no variables, files or profiles."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "no-config"))


@pytest.fixture
def s3_published(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, HandBuiltRepo]:
    """A bucket that a maintainer pushed ``acme/tiny`` to; then no credentials."""
    s3_credentials(monkeypatch)
    bucket = s3_server.new_bucket()
    cache = tmp_path / "hub"
    repo = write_canonical_repo(cache, "acme/tiny", default_files())
    options = S3Options(endpoint_url=s3_server.endpoint)
    assert push(open_store(f"s3://{bucket}/hf", options), cache).exit_code == 0
    no_credentials_at_all(monkeypatch, tmp_path)
    return bucket, repo


def test_no_sign_request_pulls_a_public_bucket_with_no_credentials_at_all(
    s3_server: S3Server,
    s3_published: tuple[str, HandBuiltRepo],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import boto3

    bucket, repo = s3_published
    s3_server.client().put_bucket_policy(
        Bucket=bucket, Policy=public_read(bucket, "hf")
    )
    fresh = tmp_path / "fresh"

    result = hubstash(
        capsys, "pull", "--no-sign-request", "--store", f"s3://{bucket}/hf",
        "--endpoint-url", s3_server.endpoint, "--cache-dir", str(fresh),
    )  # fmt: skip

    snapshot = fresh / repo.folder / "snapshots" / repo.commit
    assert boto3.session.Session().get_credentials() is None
    assert result.code == ExitCode.OK, result.err
    for path, hub_file in repo.files.items():
        assert (snapshot / path).read_bytes() == hub_file.content


def test_anonymous_pulls_of_a_bucket_without_a_public_policy_are_denied(
    s3_server: S3Server,
    s3_published: tuple[str, HandBuiltRepo],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket, _ = s3_published

    result = hubstash(
        capsys, "pull", "--no-sign-request", "--store", f"s3://{bucket}/hf",
        "--endpoint-url", s3_server.endpoint, "--cache-dir", str(tmp_path / "fresh"),
    )  # fmt: skip

    assert result.code == ExitCode.DENIED
    assert "access denied: s3:GetObject" in result.err
    assert not os.path.exists(tmp_path / "fresh" / "models--acme--tiny")
