"""The command line: output, exit codes, and one clear line for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hubstash import layout
from hubstash.cli import main
from hubstash.stores import FolderStore
from tests.support.caches import default_files, make_corrupt_blob, write_canonical_repo
from tests.support.s3_error_server import (
    ACCESS_DENIED,
    NO_SUCH_BUCKET,
    WRONG_REGION,
    S3Error,
    s3_error_server,
)
from tests.support.s3server import FAKE_SECRET, S3Server
from tests.support.stores import s3_credentials


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


Cli = Callable[..., Run]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run the command line in this process, capturing stdout and stderr."""

    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files(), refs=("main",))
    return tmp_path / "hub"


def test_push_and_pull_print_the_cache_and_a_summary(
    cli: Cli, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBSTASH_STORE", str(tmp_path / "store"))

    pushed = cli("push", "--cache-dir", str(cache))
    again = cli("push", "--cache-dir", str(cache))
    pulled = cli("pull", "--cache-dir", str(tmp_path / "restored"))

    assert (pushed.code, again.code, pulled.code) == (0, 0, 0)
    assert f"cache {cache} (--cache-dir)" in pushed.err
    assert pushed.out.startswith("pushed 1 repo, 1 revision, 3 files: uploaded 3 blobs")
    assert again.out.startswith("nothing to upload: the store already has")
    assert pulled.out.startswith("restored 1 repo, 1 revision, 3 files: downloaded 3")


def test_json_output_carries_the_result_and_exit_code(
    cli: Cli, cache: Path, tmp_path: Path
) -> None:

    result = cli(
        "push", "--store", str(tmp_path / "s"), "--cache-dir", str(cache), "--json"
    )

    document = json.loads(result.out)
    assert document["exit_code"] == 0
    assert document["uploaded_files"] == 3
    assert document["findings"] == []


def test_dry_run_pull_says_what_would_move_and_writes_nothing(
    cli: Cli, cache: Path, tmp_path: Path
) -> None:
    cli("push", "--store", str(tmp_path / "s"), "--cache-dir", str(cache))

    result = cli(
        "pull",
        "--store",
        str(tmp_path / "s"),
        "--cache-dir",
        str(tmp_path / "r"),
        "--dry-run",
    )

    assert result.code == 0
    assert result.out.startswith(
        "would restore 1 repo, 1 revision, 3 files: would download 3 blobs"
    )
    assert "1 ref [" in result.out
    assert not (tmp_path / "r").exists()


def test_a_corrupt_blob_is_named_and_exits_with_the_integrity_code(
    cli: Cli, tmp_path: Path
) -> None:
    corrupt = make_corrupt_blob(tmp_path / "hub")

    result = cli(
        "push", "--store", str(tmp_path / "s"), "--cache-dir", str(tmp_path / "hub")
    )

    assert result.code == 3
    assert "acme/corrupt" in result.err
    assert corrupt.path in result.err
    assert corrupt.actual in result.err
    assert result.out.startswith("pushed 1 repo, 1 revision, 2 files")


def write_newer_store(folder: Path) -> None:
    FolderStore(folder).write(
        layout.FORMAT_KEY, b'{"format": "hubstash-store", "version": 99}'
    )


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["push", "acme/unknown"], 4, "acme/unknown is not in the cache"),
        (["push", "acme/tiny@v9"], 4, "no such ref in the cache"),
        (["push", "not/a/repo"], 2, "invalid repo id"),
        (["pull", "acme/tiny@nope"], 4, "no such ref in the store"),
        (["pull", "acme/absent"], 4, "not in the store"),
        (["pull", "--store", "ftp://x/y"], 2, "not supported"),
        (["pull", "--store", "{tmp}/nowhere"], 4, "is not a hubstash store"),
        (["pull", "--store", "{tmp}/newer"], 2, "uses store format 99"),
    ],
)
def test_bad_input_gets_one_line_and_the_contract_exit_code(
    cli: Cli, cache: Path, tmp_path: Path, args: list[str], code: int, words: str
) -> None:
    store = str(tmp_path / "store")
    cli("push", "--store", store, "--cache-dir", str(cache))
    write_newer_store(tmp_path / "newer")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--store" not in args:
        args += ["--store", store]

    result = cli(*args, "--cache-dir", str(cache))

    errors = [line for line in result.err.splitlines() if "error" in line]
    assert result.code == code
    assert len(errors) == 1
    assert words in errors[0]
    assert "Traceback" not in result.err


def test_no_store_is_a_usage_error(
    cli: Cli, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBSTASH_STORE", raising=False)

    result = cli("pull", "--cache-dir", str(cache))

    assert result.code == 2
    assert "pass --store URL, set HUBSTASH_STORE" in result.err


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (ACCESS_DENIED, 5, "s3:GetObject"),
        (WRONG_REGION, 6, "--region eu-west-3"),
        (NO_SUCH_BUCKET, 6, "does not exist"),
    ],
)
def test_s3_errors_name_the_cause_and_what_to_do(
    cli: Cli,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: S3Error,
    code: int,
    words: str,
) -> None:
    s3_credentials(monkeypatch)

    with s3_error_server(error) as server:
        result = cli(
            "pull",
            "--store",
            "s3://bucket/p",
            "--endpoint-url",
            server.endpoint,
            "--cache-dir",
            str(cache),
        )

    assert result.code == code
    assert words in result.err
    assert "Traceback" not in result.err


def test_missing_credentials_are_named(
    cli: Cli,
    cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: S3Server,
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))

    result = cli(
        "pull",
        "--store",
        "s3://bucket/p",
        "--endpoint-url",
        s3_server.endpoint,
        "--cache-dir",
        str(cache),
    )

    assert result.code == 5
    assert "no AWS credentials found" in result.err


def test_an_unreachable_endpoint_is_named(
    cli: Cli, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_credentials(monkeypatch)

    result = cli(
        "pull",
        "--store",
        "s3://bucket/p",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--cache-dir",
        str(cache),
    )

    assert result.code == 6
    assert "cannot connect" in result.err


def test_debug_shows_the_effective_endpoint_and_never_credentials(
    cli: Cli, cache: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server
) -> None:
    s3_credentials(monkeypatch)
    bucket = s3_server.new_bucket()

    result = cli(
        "push",
        "--store",
        f"s3://{bucket}/p",
        "--endpoint-url",
        s3_server.endpoint,
        "--cache-dir",
        str(cache),
        "--debug",
    )

    assert result.code == 0
    assert f"endpoint={s3_server.endpoint}" in result.err
    assert "region=us-east-1 addressing=path" in result.err
    assert FAKE_SECRET not in result.err + result.out
    assert "Signature" not in result.err


@pytest.mark.parametrize("command", ["push", "pull", "verify", "ls"])
def test_every_command_explains_itself(command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hubstash.cli", command, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0
    assert "--store" in done.stdout
    assert "--json" in done.stdout


def test_the_console_script_reports_errors_without_a_traceback(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "hubstash"

    done = subprocess.run(
        [
            str(script),
            "pull",
            "--store",
            str(tmp_path / "none"),
            "--cache-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 4
    assert done.stderr.strip().splitlines()[-1].startswith("hubstash: error:")
    assert "Traceback" not in done.stderr
