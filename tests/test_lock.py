"""Known-good sets: hubstash.toml, hubstash.lock, locked pulls, offline checks, env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hubstash import ExitCode, push
from hubstash.cli import main
from hubstash.config import load_config
from hubstash.errors import UsageError
from hubstash.lockfile import read_lock, render
from hubstash.locking import lock
from hubstash.stores import FolderStore
from tests.support.caches import HandBuiltRepo, default_files, write_canonical_repo
from tests.support.fake_hub import HubFile
from tests.support.hashes import sha256_hex
from tests.support.hf_client import snapshot_offline
from tests.support.s3_error_server import ACCESS_DENIED, s3_error_server

CONFIG = """\
[store]
url = "{store}"

[[repo]]
id = "acme/tiny"
revision = "main"
include = ["*.json", "*.safetensors"]

[[repo]]
id = "acme/data"
type = "dataset"
"""


def project(tmp_path: Path) -> tuple[Path, HandBuiltRepo, HandBuiltRepo]:
    """A project whose config names two repos that the cache and store hold."""
    cache = tmp_path / "hub"
    model = write_canonical_repo(cache, "acme/tiny", default_files("m"), trees=True)
    data = write_canonical_repo(
        cache,
        "acme/data",
        [HubFile("train.csv", b"a,b\n1,2\n"), HubFile("README.md", b"# data\n")],
        repo_type="dataset",
    )
    push(FolderStore(tmp_path / "store"), cache)
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "hubstash.toml").write_text(CONFIG.format(store=tmp_path / "store"))
    return folder, model, data


def run(folder: Path, *args: str, env: dict[str, str] | None = None) -> int:
    """The CLI in this process, run from the project folder."""
    old = Path.cwd()
    os.chdir(folder)
    try:
        return main(list(args))
    finally:
        os.chdir(old)


def test_lock_pins_commits_and_hashes_of_the_wanted_files(tmp_path: Path) -> None:
    folder, model, data = project(tmp_path)

    result = lock(load_config(folder / "hubstash.toml"), cache_dir=tmp_path / "hub")

    locked = {r.repo.id: r for r in read_lock(folder / "hubstash.lock").repos}
    assert result.changed
    assert locked["acme/tiny"].commit == model.commit
    assert {f.path for f in locked["acme/tiny"].files} == {
        "config.json",
        "model.safetensors",
    }
    for entry in locked["acme/tiny"].files:
        assert entry.sha256 == sha256_hex(model.files[entry.path].content)
        assert entry.blob == model.blob_name(entry.path)
    assert locked["acme/data"].commit == data.commit
    assert locked["acme/tiny"].tree is not None


def test_the_same_inputs_give_a_byte_identical_lock(tmp_path: Path) -> None:
    folder, _, _ = project(tmp_path)
    config = load_config(folder / "hubstash.toml")

    lock(config, cache_dir=tmp_path / "hub")
    first = (folder / "hubstash.lock").read_bytes()
    again = lock(config, cache_dir=tmp_path / "hub")
    from_store = lock(config, store=FolderStore(tmp_path / "store"))

    assert not again.changed
    assert not from_store.changed
    assert (folder / "hubstash.lock").read_bytes() == first
    assert render(read_lock(folder / "hubstash.lock")).encode() == first


def test_lock_fails_clearly_when_a_revision_is_nowhere(tmp_path: Path) -> None:
    folder, _, _ = project(tmp_path)
    text = (folder / "hubstash.toml").read_text() + '\n[[repo]]\nid = "acme/gone"\n'
    (folder / "hubstash.toml").write_text(text)

    code = run(folder, "lock", "--cache-dir", str(tmp_path / "hub"))
    code_store = run(folder, "lock", "--from-store")

    assert code == code_store == ExitCode.INCOMPLETE
    assert not (folder / "hubstash.lock").exists()


def test_locked_pull_restores_exactly_the_lock(tmp_path: Path) -> None:
    folder, model, _ = project(tmp_path)
    run(folder, "lock", "--cache-dir", str(tmp_path / "hub"))
    cache = tmp_path / "ci" / "hub"

    code = run(folder, "pull", "--locked", "--cache-dir", str(cache))

    snapshot = cache / model.folder / "snapshots" / model.commit
    assert code == ExitCode.OK
    assert sorted(p.name for p in snapshot.iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    assert (cache / model.folder / "refs" / "main").read_text() == model.commit
    offline = snapshot_offline(
        cache, "model", "acme/tiny", "main", ["*.json", "*.safetensors"]
    )
    assert offline.error is None
    assert run(folder, "verify", "--locked", "--cache-dir", str(cache), "--strict") == 0


def test_a_warm_locked_pull_sends_no_request_and_loads_no_s3_client(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "hub"
    many = [HubFile(f"shards/part-{i:03d}.txt", f"{i}\n".encode()) for i in range(300)]
    write_canonical_repo(cache, "acme/many", many)
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "hubstash.toml").write_text(
        '[store]\nurl = "s3://bucket/hf"\n\n[[repo]]\nid = "acme/many"\n'
    )
    assert run(folder, "lock", "--cache-dir", str(cache)) == 0
    script = (
        "import sys; from hubstash.cli import main;"
        f" code = main(['pull', '--locked', '--cache-dir', {str(cache)!r}]);"
        " print('sdk loaded' if 'botocore' in sys.modules else 'no sdk');"
        " sys.exit(code)"
    )

    with s3_error_server(ACCESS_DENIED) as server:
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=folder,
            env={**os.environ, "AWS_ENDPOINT_URL": server.endpoint},
            capture_output=True,
            text=True,
            check=False,
        )

    assert done.returncode == 0, done.stderr
    assert "no sdk" in done.stdout
    assert server.requests == []


def test_a_store_altered_after_locking_cannot_get_its_bytes_in(tmp_path: Path) -> None:
    folder, model, _ = project(tmp_path)
    run(folder, "lock", "--cache-dir", str(tmp_path / "hub"))
    store = FolderStore(tmp_path / "store")
    blob = model.blob_name("config.json")
    key = f"blobs/sha256/{sha256_hex(model.files['config.json'].content)[:2]}/"
    key += sha256_hex(model.files["config.json"].content)
    store.write(key, b'{"evil": true}\n')
    cache = tmp_path / "ci" / "hub"

    code = run(folder, "pull", "--locked", "--cache-dir", str(cache))

    assert code == ExitCode.INTEGRITY
    assert not (cache / model.folder / "blobs" / blob).exists()
    assert not (cache / model.folder / "snapshots" / model.commit).exists()


def test_frozen_fails_when_config_and_lock_disagree(tmp_path: Path) -> None:
    folder, _, _ = project(tmp_path)
    run(folder, "lock", "--cache-dir", str(tmp_path / "hub"))
    text = (folder / "hubstash.toml").read_text().replace('"*.safetensors"', '"*.bin"')
    (folder / "hubstash.toml").write_text(text)

    code = run(
        folder, "pull", "--locked", "--frozen", "--cache-dir", str(tmp_path / "x")
    )

    assert code == ExitCode.USAGE
    assert not (tmp_path / "x").exists()


def test_if_available_without_credentials_skips_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, _ = project(tmp_path)
    run(folder, "lock", "--cache-dir", str(tmp_path / "hub"))
    text = (folder / "hubstash.toml").read_text()
    text = text.replace(str(tmp_path / "store"), "s3://bucket/hf")
    (folder / "hubstash.toml").write_text(text)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    cache = tmp_path / "ci" / "hub"

    skipped = run(
        folder, "pull", "--locked", "--if-available", "--cache-dir", str(cache)
    )
    failed = run(folder, "pull", "--locked", "--cache-dir", str(cache))

    assert skipped == ExitCode.OK
    assert "skipping the restore" in capsys.readouterr().err
    assert failed == ExitCode.DENIED
    assert not cache.exists()


def test_export_env_writes_github_env_only_after_a_complete_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, model, _ = project(tmp_path)
    run(folder, "lock", "--cache-dir", str(tmp_path / "hub"))
    github_env = tmp_path / "github_env"
    github_env.touch()
    monkeypatch.setenv("GITHUB_ENV", str(github_env))
    damaged = FolderStore(tmp_path / "store")
    content = model.files["config.json"].content
    key = f"blobs/sha256/{sha256_hex(content)[:2]}/{sha256_hex(content)}"

    good = run(
        folder, "pull", "--locked", "--export-env", "--cache-dir", str(tmp_path / "a")
    )
    written = github_env.read_text()
    github_env.write_text("")
    damaged.write(key, b"not it")
    bad = run(
        folder, "pull", "--locked", "--export-env", "--cache-dir", str(tmp_path / "b")
    )

    assert good == ExitCode.OK
    assert "HF_HUB_OFFLINE=1\n" in written
    assert f"HF_HUB_CACHE={tmp_path / 'a'}\n" in written
    assert bad == ExitCode.INTEGRITY
    assert github_env.read_text() == ""


def test_verify_locked_names_missing_corrupt_and_extra_files(tmp_path: Path) -> None:
    folder, model, _ = project(tmp_path)
    run(folder, "lock", "--cache-dir", str(tmp_path / "hub"))
    cache = tmp_path / "hub"
    model.blob_path("config.json").write_bytes(b"{}")
    (cache / model.folder / "snapshots" / model.commit / "model.safetensors").unlink()

    code = run(folder, "verify", "--locked", "--cache-dir", str(cache), "--json")
    strict = run(folder, "verify", "--locked", "--strict", "--cache-dir", str(cache))

    assert code == ExitCode.INTEGRITY
    assert strict == ExitCode.INTEGRITY


@pytest.mark.parametrize(
    ("fmt", "line"),
    [
        ("sh", "export HF_HUB_OFFLINE='1'"),
        ("fish", "set -gx HF_HUB_OFFLINE '1'"),
        ("powershell", "$env:HF_HUB_OFFLINE = '1'"),
        ("dotenv", 'HF_HUB_OFFLINE="1"'),
    ],
)
def test_env_prints_the_offline_variables_in_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, line: str
) -> None:
    code = main(["env", "--format", fmt, "--cache-dir", str(tmp_path / "it's")])

    out = capsys.readouterr().out
    assert code == 0
    assert line in out.splitlines()
    for name in ("HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE"):
        assert name in out


def test_sh_output_survives_a_real_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "it's a $cache"
    main(["env", "--cache-dir", str(odd)])
    script = capsys.readouterr().out + 'printf %s "$HF_HUB_CACHE"'

    done = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, check=True
    )

    assert done.stdout == str(odd)


def test_env_github_needs_github_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ENV", raising=False)

    assert main(["env", "--format", "github"]) == ExitCode.USAGE


def test_config_in_pyproject_and_bad_configs(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.hubstash]\nstore = { url = "/s" }\n'
        '[[tool.hubstash.repo]]\nid = "acme/x"\nrevision = "v1"\n'
    )
    (tmp_path / "bad.toml").write_text('[[repo]]\nid = "acme/x"\nrevison = "v1"\n')

    config = load_config(tmp_path / "pyproject.toml")

    assert config.store["url"] == "/s"
    assert [str(w.spec) for w in config.repos] == ["acme/x@v1"]
    with pytest.raises(UsageError, match="unknown key 'revison'"):
        load_config(tmp_path / "bad.toml")


def test_json_of_lock_reports_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, _ = project(tmp_path)

    code = run(folder, "lock", "--cache-dir", str(tmp_path / "hub"), "--json")

    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["path"] == str(folder / "hubstash.lock")


def test_a_snapshot_its_listing_shows_incomplete_is_not_locked(tmp_path: Path) -> None:
    folder, model, _ = project(tmp_path)
    model.snapshot_path("model.safetensors").unlink()

    code = run(folder, "lock", "--cache-dir", str(tmp_path / "hub"))

    assert code == ExitCode.INCOMPLETE
    assert not (folder / "hubstash.lock").exists()


def test_a_locked_pull_denied_by_the_store_says_so_with_exit_code_5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _, _ = project(tmp_path)
    run(folder, "lock", "--cache-dir", str(tmp_path / "hub"))
    text = (folder / "hubstash.toml").read_text()
    (folder / "hubstash.toml").write_text(
        text.replace(str(tmp_path / "store"), "s3://b/hf")
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    with s3_error_server(ACCESS_DENIED) as server:
        code = run(
            folder,
            "pull",
            "--locked",
            "--endpoint-url",
            server.endpoint,
            "--cache-dir",
            str(tmp_path / "ci"),
        )

    assert code == ExitCode.DENIED
