"""Credentials, permissions and reaching the endpoint: one line, the right exit code.

Each failure gives exactly one error line naming the cause and the next step, no
traceback, and the exit code of the contract: 5 for credentials or permission, 6
for an endpoint, bucket or region that cannot be reached. Denials of one operation
come from the fault proxy in front of moto (the other requests are real); answers
moto cannot give (bad keys, expired tokens, another region) from the error server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hubstash import layout
from hubstash.cli import main
from tests.support.caches import default_files, snapshot_tree, write_canonical_repo
from tests.support.fault_proxy import FaultProxy, Status, fault_proxy
from tests.support.s3_error_server import (
    NO_SUCH_BUCKET,
    WRONG_REGION,
    S3Error,
    s3_error_server,
)
from tests.support.s3server import S3Server
from tests.support.stores import s3_credentials
from tests.support.tls import throwaway_certificate

CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
)
DENIED = Status(403, "AccessDenied")


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def error(self) -> str:
        """The one error line; fails when there is not exactly one."""
        lines = [line for line in self.err.splitlines() if "error:" in line]
        assert len(lines) == 1, self.err
        assert "Traceback" not in self.err
        return lines[0]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())
    return tmp_path / "hub"


@pytest.fixture(autouse=True)
def _no_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    code = main(list(args))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def on_s3(
    command: str, endpoint: str, cache: Path, bucket: str = "bucket"
) -> list[str]:
    return [
        command,
        "--store",
        f"s3://{bucket}/hf",
        "--endpoint-url",
        endpoint,
        "--cache-dir",
        str(cache),
    ]


def no_credentials_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.mark.parametrize("command", ["push", "pull"])
def test_no_credentials_at_all_say_where_credentials_come_from(
    capsys: pytest.CaptureFixture[str],
    cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: S3Server,
    command: str,
) -> None:
    no_credentials_anywhere(monkeypatch, tmp_path)
    bucket = s3_server.new_bucket()

    result = run_cli(capsys, *on_s3(command, s3_server.endpoint, cache, bucket))

    assert result.code == 5
    assert "no AWS credentials found" in result.error
    assert "AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" in result.error


BAD_CREDENTIALS = [
    (S3Error(403, "InvalidAccessKeyId"), "the access key id is not known"),
    (S3Error(403, "SignatureDoesNotMatch"), "the secret key does not match"),
    (S3Error(400, "ExpiredToken"), "the session token has expired"),
    (S3Error(400, "InvalidToken"), "the session token is not valid"),
]


@pytest.mark.parametrize(
    ("answer", "cause"),
    BAD_CREDENTIALS,
    ids=[answer.code for answer, _ in BAD_CREDENTIALS],
)
@pytest.mark.parametrize("command", ["push", "pull"])
def test_wrong_or_expired_credentials_are_named(
    capsys: pytest.CaptureFixture[str],
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    answer: S3Error,
    cause: str,
) -> None:
    s3_credentials(monkeypatch)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "fake-session-token")

    with s3_error_server(answer) as server:
        result = run_cli(capsys, *on_s3(command, server.endpoint, cache))

    assert result.code == 5
    assert cause in result.error
    assert "AWS_ACCESS_KEY_ID" in result.error


@dataclass
class Bucket:
    """A pushed store in moto, reached through the fault proxy."""

    name: str
    proxy: FaultProxy

    def args(self, command: str, cache: Path, *extra: str) -> list[str]:
        return [*on_s3(command, self.proxy.endpoint, cache, self.name), *extra]


@pytest.fixture
def pushed(
    cache: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Bucket]:
    s3_credentials(monkeypatch)
    bucket = s3_server.new_bucket()
    assert main(on_s3("push", s3_server.endpoint, cache, bucket)) == 0
    with fault_proxy(s3_server.endpoint) as proxy:
        yield Bucket(bucket, proxy)


DENIALS = [
    ("get", "pull", "GET", "/hubstash-store.json", "s3:GetObject", "s3:ListBucket"),
    ("list", "pull", "GET", "list-type=2", "s3:ListBucket", "hubstash policy"),
    ("put", "push", "PUT", "/blobs/", "s3:PutObject", "hubstash policy --role write"),
]


@pytest.mark.parametrize(
    ("command", "method", "path", "action", "next_step"),
    [case[1:] for case in DENIALS],
    ids=[case[0] for case in DENIALS],
)
def test_a_denied_operation_names_the_permission_to_grant(
    capsys: pytest.CaptureFixture[str],
    pushed: Bucket,
    tmp_path: Path,
    command: str,
    method: str,
    path: str,
    action: str,
    next_step: str,
) -> None:
    changed = tmp_path / "changed"
    write_canonical_repo(changed, "acme/other", default_files("other"))
    cache = changed if command == "push" else tmp_path / "restored"
    pushed.proxy.inject(method, path, DENIED, count=1000)

    result = run_cli(capsys, *pushed.args(command, cache))

    assert result.code == 5
    assert f"access denied: {action}" in result.error
    assert next_step in result.error


def test_a_denied_delete_names_the_admin_policy(
    capsys: pytest.CaptureFixture[str], pushed: Bucket, s3_server: S3Server
) -> None:
    orphan = b"no manifest names this content"
    key = f"hf/{layout.blob_key(hashlib.sha256(orphan).hexdigest())}"
    s3_server.client().put_object(Bucket=pushed.name, Key=key, Body=orphan)
    pushed.proxy.inject("POST", "?delete", DENIED, count=1000)
    pushed.proxy.inject("DELETE", "/", DENIED, count=1000)
    gc = ["gc", "--store", f"s3://{pushed.name}/hf"]
    gc += ["--endpoint-url", pushed.proxy.endpoint, "--grace", "0", "--yes"]

    result = run_cli(capsys, *gc)

    assert result.code == 5
    assert "access denied: s3:DeleteObject" in result.error
    assert "hubstash policy --role admin" in result.error
    assert key in s3_server.keys(pushed.name)


@pytest.mark.parametrize("command", ["push", "pull"])
def test_a_bucket_that_does_not_exist_is_named(
    capsys: pytest.CaptureFixture[str],
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: S3Server,
    command: str,
) -> None:
    s3_credentials(monkeypatch)

    result = run_cli(
        capsys, *on_s3(command, s3_server.endpoint, cache, "no-such-bucket-here")
    )

    assert result.code == 6
    assert "bucket 'no-such-bucket-here' does not exist" in result.error
    assert "check the store URL, --endpoint-url and --region" in result.error


@pytest.mark.parametrize(
    ("answer", "cause", "next_step"),
    [
        (WRONG_REGION, "is in another region", "pass --region eu-west-3"),
        (NO_SUCH_BUCKET, "does not exist", "--endpoint-url"),
    ],
    ids=["wrong region", "no such bucket"],
)
@pytest.mark.parametrize("command", ["push", "pull"])
def test_a_bucket_elsewhere_is_named_with_the_setting_to_fix(
    capsys: pytest.CaptureFixture[str],
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    answer: S3Error,
    cause: str,
    next_step: str,
) -> None:
    s3_credentials(monkeypatch)

    with s3_error_server(answer) as server:
        result = run_cli(capsys, *on_s3(command, server.endpoint, cache))

    assert result.code == 6
    assert cause in result.error
    assert next_step in result.error


@pytest.mark.parametrize("command", ["push", "pull"])
def test_an_unreachable_endpoint_is_named(
    capsys: pytest.CaptureFixture[str],
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    s3_credentials(monkeypatch)

    result = run_cli(capsys, *on_s3(command, "http://127.0.0.1:9", cache))

    assert result.code == 6
    assert "cannot connect to the endpoint" in result.error
    assert "check --endpoint-url" in result.error


@pytest.fixture
def tls_endpoint(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    """moto behind HTTPS with a throwaway certificate: its URL and CA file."""
    s3_credentials(monkeypatch)
    certificate = throwaway_certificate(tmp_path / "tls")
    with fault_proxy(s3_server.endpoint, tls=certificate.server_context()) as proxy:
        yield proxy.endpoint, certificate.cert


@pytest.mark.parametrize("command", ["push", "pull"])
def test_an_untrusted_certificate_is_named_with_ca_bundle(
    capsys: pytest.CaptureFixture[str],
    cache: Path,
    tls_endpoint: tuple[str, Path],
    s3_server: S3Server,
    command: str,
) -> None:
    endpoint, _ = tls_endpoint
    bucket = s3_server.new_bucket()

    result = run_cli(capsys, *on_s3(command, endpoint, cache, bucket))

    assert result.code == 6
    assert "TLS verification failed" in result.error
    assert "--ca-bundle" in result.error


def test_with_its_ca_bundle_a_tls_endpoint_works(
    capsys: pytest.CaptureFixture[str],
    cache: Path,
    tmp_path: Path,
    tls_endpoint: tuple[str, Path],
    s3_server: S3Server,
) -> None:
    endpoint, ca = tls_endpoint
    bucket = s3_server.new_bucket()
    trust = ["--ca-bundle", str(ca)]
    restored = tmp_path / "restored"

    pushed = run_cli(capsys, *on_s3("push", endpoint, cache, bucket), *trust)
    pulled = run_cli(capsys, *on_s3("pull", endpoint, restored, bucket), *trust)

    assert (pushed.code, pulled.code) == (0, 0), pushed.err + pulled.err
    assert snapshot_tree(restored) == snapshot_tree(cache)
