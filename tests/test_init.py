"""``hubstash init``: a store made ready, a configuration naming it, no credentials."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from hubstash import ExitCode, StoreFormatError, layout, push
from hubstash.cli import main
from hubstash.config import load_config
from hubstash.policy import store_policy
from hubstash.setup_store import init_store
from hubstash.stores import FolderStore, S3Options
from tests.support.caches import default_files, write_canonical_repo
from tests.support.s3_error_server import ACCESS_DENIED, s3_error_server
from tests.support.s3server import FAKE_KEY_ID, FAKE_SECRET, S3Server
from tests.support.stores import s3_credentials

MARKER = {"format": "hubstash-store", "version": 1}


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder, the working folder of the test."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("HUBSTASH_STORE", raising=False)
    monkeypatch.delenv("HUBSTASH_CONFIG", raising=False)
    return folder


def run_init(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    code = main(["init", *args])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def test_init_makes_a_folder_store_and_a_configuration_naming_it(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"

    result = run_init(capsys, "--store", str(store))

    config = load_config(project / "hubstash.toml")
    assert result.code == ExitCode.OK
    assert config.store == {"url": str(store)}
    assert config.repos == ()
    assert "# [[repo]]" in (project / "hubstash.toml").read_text()
    assert json.loads(FolderStore(store).read(layout.FORMAT_KEY)) == MARKER
    assert "hubstash push" in result.out
    assert "hubstash lock" in result.out
    assert "git add hubstash.toml hubstash.lock" in result.out


def test_a_second_init_keeps_the_configuration_and_the_store(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    run_init(capsys, "--store", str(store))
    (project / "hubstash.toml").write_text(
        f'[store]\nurl = "{store}"\n\n[[repo]]\nid = "acme/tiny"\n'
    )
    marker = (store / layout.FORMAT_KEY).stat().st_mtime_ns

    again = run_init(capsys)

    assert again.code == ExitCode.OK
    assert "kept the existing" in again.err
    assert "already a hubstash store" in again.err
    assert 'id = "acme/tiny"' in (project / "hubstash.toml").read_text()
    assert (store / layout.FORMAT_KEY).stat().st_mtime_ns == marker


def test_init_leaves_a_store_that_already_holds_repos_as_it_is(
    project: Path, tmp_path: Path
) -> None:
    store = FolderStore(tmp_path / "store")
    cache = tmp_path / "hub"
    write_canonical_repo(cache, "acme/tiny", default_files())
    push(store, cache)
    before = sorted(o.key for o in store.listing(""))

    result = init_store(store.url, config_path=project / "hubstash.toml")

    assert not result.marker_written
    assert sorted(o.key for o in store.listing("")) == before


def test_init_refuses_a_store_of_a_newer_format_and_writes_no_configuration(
    project: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / layout.FORMAT_KEY).write_text('{"format": "hubstash-store", "version": 9}')

    with pytest.raises(StoreFormatError, match="upgrade hubstash"):
        init_store(str(store), config_path=project / "hubstash.toml")

    assert not (project / "hubstash.toml").exists()


def test_init_without_a_store_or_with_a_bucket_for_a_folder_is_a_usage_error(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_store = run_init(capsys)
    folder_bucket = run_init(capsys, "--store", str(tmp_path / "s"), "--create-bucket")

    assert (no_store.code, folder_bucket.code) == (ExitCode.USAGE, ExitCode.USAGE)
    assert "no store given" in no_store.err
    assert "--create-bucket is for s3:// stores" in folder_bucket.err
    assert not (project / "hubstash.toml").exists()


def test_init_creates_a_private_bucket_in_its_region_and_prints_the_policies(
    project: Path,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3_credentials(monkeypatch)
    url = "s3://init-new-bucket/team/hf"

    result = run_init(
        capsys, "--store", url, "--endpoint-url", s3_server.endpoint,
        "--region", "eu-west-1", "--create-bucket",
    )  # fmt: skip

    client = s3_server.client()
    location = client.get_bucket_location(Bucket="init-new-bucket")
    blocked = client.get_public_access_block(Bucket="init-new-bucket")
    marker = s3_server.keys("init-new-bucket")["team/hf/hubstash-store.json"]
    config = load_config(project / "hubstash.toml")
    assert result.code == ExitCode.OK, result.err
    assert location["LocationConstraint"] == "eu-west-1"
    assert set(blocked["PublicAccessBlockConfiguration"].values()) == {True}
    assert json.loads(marker) == MARKER
    assert config.store == {
        "url": url,
        "endpoint-url": s3_server.endpoint,
        "region": "eu-west-1",
    }
    assert "created the bucket" in result.err
    for role in ("read", "write"):
        policy = json.dumps(store_policy("init-new-bucket", "team/hf", role), indent=2)
        assert policy in result.out


def test_init_never_writes_credentials(
    project: Path,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3_credentials(monkeypatch)
    bucket = s3_server.new_bucket()

    result = run_init(
        capsys, "--store", f"s3://{bucket}/hf", "--endpoint-url", s3_server.endpoint
    )

    written = (project / "hubstash.toml").read_text()
    assert result.code == ExitCode.OK, result.err
    assert FAKE_KEY_ID not in written + result.out + result.err
    assert FAKE_SECRET not in written + result.out + result.err


def test_init_accepts_a_bucket_that_is_already_ours_and_leaves_it_as_it_is(
    project: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_credentials(monkeypatch)
    bucket = s3_server.new_bucket()
    options = S3Options(endpoint_url=s3_server.endpoint)

    result = init_store(
        f"s3://{bucket}/hf",
        options,
        config_path=project / "hubstash.toml",
        create_bucket=True,
    )

    assert result.bucket_created is False
    assert not result.public_access_blocked
    assert result.marker_written
    assert set(s3_server.keys(bucket)) == {"hf/hubstash-store.json"}


def test_init_of_a_denied_store_names_the_permission_and_writes_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3_credentials(monkeypatch)

    with s3_error_server(ACCESS_DENIED) as server:
        result = run_init(
            capsys, "--store", "s3://bucket/hf", "--endpoint-url", server.endpoint
        )

    assert result.code == ExitCode.DENIED
    assert "s3:ListBucket" in result.err
    assert [r for r in server.requests if not r.startswith("GET ")] == []
    assert not (project / "hubstash.toml").exists()


def test_init_reports_what_it_did_as_json(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_init(capsys, "--store", str(tmp_path / "store"), "--json")

    document = json.loads(result.out)
    assert result.code == ExitCode.OK
    assert document["config_path"] == str(project / "hubstash.toml")
    assert document["config_written"] is True
    assert document["marker_written"] is True
    assert document["bucket_created"] is None
    assert document["policies"] == {}
