"""Doctor: one line per check, the next step when something is wrong, the exit code of
the most basic failure, and secrets named by key but never shown."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hubstash import ExitCode, layout, push
from hubstash.cli import main
from hubstash.doctor import WRITE_CHECK_KEY, Check, Status, doctor
from hubstash.settings import StoreFlags
from hubstash.stores import FolderStore
from tests.support.awscli import aws_s3_sync
from tests.support.caches import default_files, make_token_files, write_canonical_repo
from tests.support.s3_error_server import (
    ACCESS_DENIED,
    NO_SUCH_BUCKET,
    WRONG_REGION,
    S3Error,
    s3_error_server,
)
from tests.support.s3server import FAKE_SECRET, S3Server
from tests.support.stores import StoreUnderTest, s3_credentials


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def line(self, check: str) -> str:
        """The line of one check, e.g. ``OK    read  ...``."""
        (found,) = [
            line for line in self.out.splitlines() if line[6:].startswith(check + " ")
        ]
        return found

    def status(self, check: str) -> str:
        return self.line(check).split()[0]


Cli = Callable[..., Run]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run ``hubstash doctor`` in this process, away from any hubstash.toml."""
    monkeypatch.delenv("HUBSTASH_STORE", raising=False)
    monkeypatch.delenv("HUBSTASH_CONFIG", raising=False)

    def run(*args: str) -> Run:
        code = main(["doctor", *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files(), refs=("main",))
    return tmp_path / "hub"


def test_a_healthy_store_passes_every_check_and_exits_0(
    cli: Cli, cache: Path, store: StoreUnderTest
) -> None:
    push(store.open(), cache)

    result = cli(*store.cli_args(), "--cache-dir", str(cache))

    assert result.code == ExitCode.OK, result.out
    assert f"{cache} (--cache-dir): 1 repo" in result.line("cache")
    assert "hubstash store, format 1" in result.line("format")
    for check in ("cache", "offline", "config", "store", "read", "list", "format"):
        assert result.status(check) == "OK", result.out
    assert result.status("write") == "SKIP"
    assert result.status("secrets") == "OK"
    assert result.out.splitlines()[-1] == "doctor: nothing failed (exit 0)"


def test_check_write_leaves_one_object_however_often_it_runs(
    cli: Cli, cache: Path, store: StoreUnderTest
) -> None:
    push(store.open(), cache)
    before = {o.key for o in store.open().listing("")}

    first = cli(*store.cli_args(), "--check-write")
    second = cli(*store.cli_args(), "--check-write")

    assert (first.code, second.code) == (0, 0)
    assert second.status("write") == "OK"
    assert {o.key for o in store.open().listing("")} == before | {WRITE_CHECK_KEY}


def test_s3_checks_show_the_endpoint_region_and_addressing_never_credentials(
    cli: Cli, cache: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_credentials(monkeypatch)
    url = f"s3://{s3_server.new_bucket()}/hf"

    result = cli("--store", url, "--endpoint-url", s3_server.endpoint)

    assert result.code == ExitCode.OK
    assert result.status("credentials") == "OK"
    endpoint = result.line("endpoint")
    assert f"endpoint={s3_server.endpoint} region=us-east-1 addressing=path" in endpoint
    assert result.status("format") == "WARN"
    assert "nothing pushed yet" in result.line("format")
    assert FAKE_SECRET not in result.out + result.err


def test_leaked_tokens_are_named_by_key_and_never_shown(
    cli: Cli,
    cache: Path,
    tmp_path: Path,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3_credentials(monkeypatch)
    hf_home = tmp_path / "hf-home"
    write_canonical_repo(hf_home / "hub", "acme/tiny", default_files())
    secret = make_token_files(hf_home).secrets[0]
    (hf_home / "ci.env").write_text(f"HF_TOKEN={secret}\n")
    # Only small objects are read: a token inside a large one is not found.
    (hf_home / "big.log").write_text("x" * 5000 + secret)
    bucket = s3_server.new_bucket()
    aws_s3_sync(s3_server.endpoint, str(hf_home), f"s3://{bucket}/cache/", tmp_path)

    result = cli(
        "--store", f"s3://{bucket}/cache/", "--endpoint-url", s3_server.endpoint
    )
    as_json = cli(
        "--store",
        f"s3://{bucket}/cache/",
        "--endpoint-url",
        s3_server.endpoint,
        "--json",
    )

    assert result.status("secrets") == "FAIL"
    for key in ("token", "stored_tokens", "sandbox/pools/default/state.json", "ci.env"):
        assert f"{key} " in result.out
    assert "big.log" not in result.out
    assert "huggingface.co/settings/tokens" in result.out
    assert result.status("format") == "FAIL"
    assert f"hubstash import s3://{bucket}/cache/" in result.out
    # A store that is an old sync copy needs import first: that outranks the leak.
    assert result.code == ExitCode.INCOMPLETE
    everything = result.out + result.err + as_json.out + as_json.err
    assert "hf_F" not in everything
    assert json.loads(as_json.out)["exit_code"] == ExitCode.INCOMPLETE


def test_a_branch_named_token_is_not_a_leak(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_canonical_repo(tmp_path / "hub", "acme/t", default_files(), refs=("token",))
    push(FolderStore(tmp_path / "store"), tmp_path / "hub")

    result = cli("--store", str(tmp_path / "store"))

    assert "repos/models--acme--t/refs/token" in {
        o.key for o in FolderStore(tmp_path / "store").listing("repos/")
    }
    assert result.status("secrets") == "OK"
    assert result.code == ExitCode.OK


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (ACCESS_DENIED, ExitCode.DENIED, "s3:GetObject"),
        (WRONG_REGION, ExitCode.UNREACHABLE, "--region eu-west-3"),
        (NO_SUCH_BUCKET, ExitCode.UNREACHABLE, "does not exist"),
    ],
)
def test_a_store_that_refuses_fails_with_the_code_of_its_cause(
    cli: Cli,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: S3Error,
    code: ExitCode,
    words: str,
) -> None:
    s3_credentials(monkeypatch)

    with s3_error_server(error) as server:
        result = cli("--store", "s3://bucket/p", "--endpoint-url", server.endpoint)

    assert result.code == code
    assert result.status("read") == "FAIL"
    assert words in result.out
    assert result.status("secrets") == "SKIP"
    assert "Traceback" not in result.err


def test_denied_reads_and_listings_name_both_permissions(
    cli: Cli, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_credentials(monkeypatch)

    with s3_error_server(ACCESS_DENIED) as server:
        result = cli(
            "--store", "s3://b/p", "--endpoint-url", server.endpoint, "--check-write"
        )

    assert result.status("list") == "FAIL"
    assert "s3:ListBucket" in result.line("list")
    assert result.status("write") == "FAIL"
    assert "s3:PutObject" in result.line("write")
    assert result.status("format") == "SKIP"
    assert result.code == ExitCode.DENIED


def test_missing_credentials_fail_first_and_skip_the_store_checks(
    cli: Cli,
    cache: Path,
    tmp_path: Path,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))

    result = cli("--store", "s3://b/p", "--endpoint-url", s3_server.endpoint)

    assert result.code == ExitCode.DENIED
    assert "no AWS credentials found" in result.line("credentials")
    for check in ("read", "list", "format", "write", "secrets"):
        assert result.status(check) == "SKIP"


def test_a_store_of_a_newer_format_says_to_upgrade(
    cli: Cli, cache: Path, tmp_path: Path
) -> None:
    FolderStore(tmp_path / "store").write(
        layout.FORMAT_KEY, b'{"format": "hubstash-store", "version": 99}'
    )

    result = cli("--store", str(tmp_path / "store"))

    assert result.status("format") == "FAIL"
    assert "pip install -U hubstash" in result.out
    assert result.code == ExitCode.USAGE


def test_no_store_is_a_warning_and_the_other_checks_still_run(
    cli: Cli, cache: Path
) -> None:
    result = cli("--cache-dir", str(cache))

    assert result.status("store") == "WARN"
    assert "set HUBSTASH_STORE" in result.out
    assert result.status("cache") == "OK"
    assert result.code == ExitCode.OK


def named(checks: tuple[Check, ...], name: str) -> Check:
    (found,) = [c for c in checks if c.name == name]
    return found


def test_the_cache_check_says_which_folder_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home" / "hub").mkdir(parents=True)

    from_home = doctor(environ={"HF_HOME": str(tmp_path / "home")})
    from_hub_cache = doctor(environ={"HF_HUB_CACHE": str(tmp_path / "nowhere")})

    cache = named(from_home.checks, "cache")
    assert cache.status is Status.OK
    assert cache.message.startswith(f"{tmp_path / 'home' / 'hub'} (HF_HOME/hub)")
    missing = named(from_hub_cache.checks, "cache")
    assert missing.status is Status.WARN
    assert (
        missing.message == f"{tmp_path / 'nowhere'} (HF_HUB_CACHE) does not exist yet"
    )


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({}, "no offline variable set"),
        ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE=1 (on): the Hub client reads only"),
        ({"TRANSFORMERS_OFFLINE": "yes"}, "(on): the Hub client reads only the cache"),
        ({"HF_HUB_OFFLINE": "0"}, "HF_HUB_OFFLINE=0 (off): the Hub client may go"),
        ({"HF_DATASETS_OFFLINE": "1"}, "(on): the Hub client may go online"),
    ],
)
def test_offline_variables_are_read_as_the_client_reads_them(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    words: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = doctor(StoreFlags(), tmp_path, environ=environ)

    assert words in named(result.checks, "offline").message


def test_json_lists_every_check_with_the_exit_code(cli: Cli, cache: Path) -> None:
    result = cli("--cache-dir", str(cache), "--json")

    document = json.loads(result.out)
    assert [c["name"] for c in document["checks"]] == [
        "cache",
        "offline",
        "config",
        "store",
    ]
    assert document["checks"][3]["status"] == "warn"
    assert document["exit_code"] == 0
