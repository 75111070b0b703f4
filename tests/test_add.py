"""`hubstash add`: one repo from the Hub into the configuration, the store and the lock.

Every test runs the command in a subprocess, as a user would: huggingface_hub reads
its environment once, at import, so only a fresh process can be pointed at the
FakeHub on 127.0.0.1. Each process gets an environment built from scratch with a
local `HF_ENDPOINT`; nothing reaches another host.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from hubstash.adding import HubRetry
from hubstash.config import load_config
from hubstash.errors import ExitCode
from hubstash.lockfile import LockedRepo, read_lock
from tests.support.fake_hub import FakeHub, HubFile
from tests.support.hashes import hub_etag, pseudo_random_bytes, sha256_hex
from tests.support.hf_client import DEAD_ENDPOINT, hf_env

VENV_BIN = Path(sys.executable).parent
REPO = "acme/tiny"
OTHER_REPO = "acme/other"
FAKE_TOKEN = "hf_FAKEaddTokenThatMustNeverBeWrittenAnywhere"
FILES = (
    HubFile("config.json", b'{"hidden_size": 8}\n'),
    HubFile("tokenizer.json", b'{"vocab": {"a": 0, "b": 1}}\n'),
    HubFile("model.safetensors", pseudo_random_bytes("add", 200_000), lfs=True),
)
OTHER_FILES = (HubFile("config.json", b'{"other": true}\n'),)
CONFIG = """\
# The models our tests need.
[store]
url = "{store}"  # the team's store
"""
REVISION_API = f"/api/models/{REPO}/revision/"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def errors(self) -> list[str]:
        return [e for e in self.err.splitlines() if e.startswith("hubstash: error:")]


@dataclass(frozen=True)
class Project:
    """A project folder with its own Hub cache, sharing the store and the Hub."""

    folder: Path
    cache: Path
    home: Path
    store: Path
    hub: FakeHub

    @property
    def config_file(self) -> Path:
        return self.folder / "hubstash.toml"

    @property
    def lock_file(self) -> Path:
        return self.folder / "hubstash.lock"

    def hubstash(
        self,
        *args: str,
        endpoint: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Run:
        """Run the installed `hubstash` in the project folder, as a user would."""
        variables = hf_env(
            self.cache, endpoint or self.hub.endpoint, extra=env, hf_home=self.home
        )
        variables["PATH"] = os.pathsep.join([str(VENV_BIN), variables.get("PATH", "")])
        started = time.monotonic()
        done = subprocess.run(
            ["hubstash", *args],
            cwd=self.folder,
            env=variables,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Run(
            done.returncode, done.stdout, done.stderr, time.monotonic() - started
        )

    def locked(self) -> dict[str, LockedRepo]:
        return {r.repo.id: r for r in read_lock(self.lock_file).repos}

    def stored_blob(self, content: bytes) -> Path:
        digest = sha256_hex(content)
        return self.store / "blobs" / "sha256" / digest[:2] / digest

    def snapshot(self) -> dict[Path, bytes]:
        """Every file of the project folder and the store, to compare before/after."""
        roots = (self.folder, self.store)
        return {p: p.read_bytes() for r in roots for p in r.rglob("*") if p.is_file()}


ProjectFactory = Callable[[str], Project]


@pytest.fixture
def new_project(tmp_path: Path, fake_hub: FakeHub) -> ProjectFactory:
    """Projects on one machine each (own cache), sharing the Hub and the store."""
    fake_hub.add_commit("model", REPO, FILES)
    fake_hub.add_commit("model", OTHER_REPO, OTHER_FILES)
    store = tmp_path / "store"

    def make(name: str) -> Project:
        folder = tmp_path / name / "project"
        folder.mkdir(parents=True)
        (folder / "hubstash.toml").write_text(CONFIG.format(store=store))
        home = tmp_path / name / "home"
        return Project(folder, home / "hub", home, store, fake_hub)

    return make


@pytest.fixture
def project(new_project: ProjectFactory) -> Project:
    return new_project("mine")


def expected_lock_files(files: tuple[HubFile, ...]) -> dict[str, tuple[str, str, int]]:
    """Path to (blob name, SHA-256, size), as the Hub names each file."""
    return {
        f.path: (hub_etag(f.content, lfs=f.lfs), sha256_hex(f.content), len(f.content))
        for f in files
    }


def lock_files(repo: LockedRepo) -> dict[str, tuple[str, str, int]]:
    return {f.path: (f.blob, f.sha256, f.size) for f in repo.files}


def revision_requests(hub: FakeHub) -> int:
    return sum(REVISION_API in r.path for r in hub.requests)


# --------------------------------------------------------------------------------------
# Adding a repo


def test_add_downloads_pushes_configures_and_locks(project: Project) -> None:
    before = project.config_file.read_text()

    run = project.hubstash("add", REPO, env={"HF_TOKEN": FAKE_TOKEN})

    assert run.code == ExitCode.OK, run.err
    assert f"added {REPO}@main" in run.out
    assert "pushed 1 repo, 1 revision, 3 files" in run.out
    # The user's comments and layout are kept; the repo is appended.
    after = project.config_file.read_text()
    assert after == f'{before}\n[[repo]]\nid = "{REPO}"\nrevision = "main"\n'
    locked = project.locked()[REPO]
    assert locked.commit == project.hub.resolve("model", REPO, "main")
    assert lock_files(locked) == expected_lock_files(FILES)
    for hub_file in FILES:
        assert project.stored_blob(hub_file.content).read_bytes() == hub_file.content


def test_the_token_is_never_printed_or_written(project: Project) -> None:
    run = project.hubstash("add", REPO, env={"HF_TOKEN": FAKE_TOKEN})

    assert run.code == ExitCode.OK, run.err
    written = [p for p in project.home.rglob("*") if p.is_file()]
    written += project.snapshot()
    assert project.lock_file in written
    assert FAKE_TOKEN not in run.out + run.err
    assert not [p for p in written if FAKE_TOKEN.encode() in p.read_bytes()]


def test_include_patterns_limit_what_is_downloaded_pushed_and_locked(
    project: Project,
) -> None:
    run = project.hubstash("add", REPO, "--include", "*.json")

    assert run.code == ExitCode.OK, run.err
    (entry,) = load_config(project.config_file).repos
    assert entry.include == ("*.json",)
    locked = project.locked()[REPO]
    assert locked.include == ("*.json",)
    assert lock_files(locked) == expected_lock_files(FILES[:2])
    weights = FILES[2]
    assert not project.stored_blob(weights.content).exists()
    assert not [r for r in project.hub.requests if weights.path in r.path]


def test_a_repo_already_configured_gets_the_new_patterns(project: Project) -> None:
    configured = (
        f'\n[[repo]]\nid = "{REPO}"  # the small files first\n'
        'include = ["*.json"]  # no weights yet\n'
    )
    project.config_file.write_text(project.config_file.read_text() + configured)

    run = project.hubstash(
        "add", REPO, "--include", "*.json", "--include", "*.safetensors"
    )

    assert run.code == ExitCode.OK, run.err
    assert f"updated {REPO}@main" in run.out
    text = project.config_file.read_text()
    assert text.count("[[repo]]") == 1
    assert f'id = "{REPO}"  # the small files first\n' in text
    assert 'include = ["*.json", "*.safetensors"]  # no weights yet\n' in text
    assert lock_files(project.locked()[REPO]) == expected_lock_files(FILES)


def test_pyproject_tool_hubstash_is_edited_in_place(
    new_project: ProjectFactory,
) -> None:
    project = new_project("pyproject")
    project.config_file.unlink()
    pyproject = project.folder / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "app"  # ours\n\n'
        f'[tool.hubstash]\nstore = {{url = "{project.store}"}}\n'
        "[tool.ruff]\nline-length = 88\n"
    )

    run = project.hubstash("add", f"datasets/{REPO}@v1", "--no-download")

    assert run.code == ExitCode.OK, run.err
    assert pyproject.read_text() == (
        '[project]\nname = "app"  # ours\n\n'
        f'[tool.hubstash]\nstore = {{url = "{project.store}"}}\n\n'
        f'[[tool.hubstash.repo]]\nid = "{REPO}"\ntype = "dataset"\nrevision = "v1"\n\n'
        "[tool.ruff]\nline-length = 88\n"
    )
    assert not project.config_file.exists()


def test_without_a_configuration_hubstash_toml_is_created_here(
    new_project: ProjectFactory,
) -> None:
    project = new_project("fresh")
    project.config_file.unlink()

    run = project.hubstash("add", REPO, "--exclude", "*.safetensors", "--no-download")

    assert run.code == ExitCode.OK, run.err
    (entry,) = load_config(project.config_file).repos
    assert (str(entry.spec), entry.exclude) == (f"{REPO}@main", ("*.safetensors",))


def test_without_a_store_the_repo_is_downloaded_and_locked_from_the_cache(
    project: Project,
) -> None:
    project.config_file.write_text("# no store yet\n")

    run = project.hubstash("add", REPO)

    assert run.code == ExitCode.OK, run.err
    assert "no store configured, so nothing was pushed" in run.err
    assert f"resolved from {project.cache}" in run.out
    assert lock_files(project.locked()[REPO]) == expected_lock_files(FILES)
    assert not project.store.exists()


def test_a_configured_repo_found_nowhere_leaves_the_lock_stale_and_exits_4(
    project: Project,
) -> None:
    configured = f'\n[[repo]]\nid = "{OTHER_REPO}"\n'
    project.config_file.write_text(project.config_file.read_text() + configured)

    run = project.hubstash("add", REPO)

    assert run.code == ExitCode.INCOMPLETE
    assert "pushed 1 repo" in run.out
    assert f"hubstash.lock not updated: {OTHER_REPO} is not in the store" in run.err
    assert not project.lock_file.exists()
    assert len(load_config(project.config_file).repos) == 2


# --------------------------------------------------------------------------------------
# Without downloads


@pytest.mark.parametrize(
    ("flags", "env"),
    [(["--no-download"], {}), ([], {"HF_HUB_OFFLINE": "1"})],
    ids=["no-download", "HF_HUB_OFFLINE"],
)
def test_without_downloads_only_the_configuration_changes(
    project: Project, flags: list[str], env: dict[str, str]
) -> None:
    run = project.hubstash("add", REPO, *flags, env=env)

    assert run.code == ExitCode.OK, run.err
    assert project.hub.requests == []
    assert [str(r.spec) for r in load_config(project.config_file).repos] == [
        f"{REPO}@main"
    ]
    # Neither the cache nor the store has it, so there is nothing to lock.
    assert not project.lock_file.exists()
    assert "hubstash.lock not updated" in run.err
    assert not project.store.exists()


def test_without_downloads_the_lock_comes_from_the_store(
    new_project: ProjectFactory,
) -> None:
    teammate, me = new_project("teammate"), new_project("me")
    assert teammate.hubstash("add", REPO).code == ExitCode.OK
    requests = len(me.hub.requests)

    run = me.hubstash("add", REPO, "--no-download")

    assert run.code == ExitCode.OK, run.err
    assert len(me.hub.requests) == requests
    assert f"resolved from {me.store}" in run.out
    locked = me.locked()[REPO]
    assert locked.commit == me.hub.resolve("model", REPO, "main")
    assert lock_files(locked) == expected_lock_files(FILES)


# --------------------------------------------------------------------------------------
# Rate limits


def test_a_rate_limit_is_waited_out(project: Project) -> None:
    project.hub.fail_next(REVISION_API, 429, {"Retry-After": "1"})

    run = project.hubstash("add", REPO)

    assert run.code == ExitCode.OK, run.err
    assert revision_requests(project.hub) >= 2
    assert run.seconds >= 1.0
    assert "waited 1 s for rate limits" in run.out
    assert project.locked()[REPO].commit == project.hub.resolve("model", REPO, "main")


def test_a_rate_limit_longer_than_the_cap_is_not_waited_for(project: Project) -> None:
    before = project.snapshot()
    project.hub.fail_next(REVISION_API, 429, {"Retry-After": "3600"})

    run = project.hubstash("add", REPO)

    assert run.code == ExitCode.UNREACHABLE
    assert run.errors == [
        f"hubstash: error: the Hub rate-limits downloads of {REPO}@main for the next"
        " 3600 s (try again later)"
    ]
    assert revision_requests(project.hub) == 1
    assert project.snapshot() == before


def test_a_lasting_rate_limit_gives_up_after_a_bounded_number_of_tries(
    project: Project,
) -> None:
    before = project.snapshot()
    project.hub.fail_next(REVISION_API, 429, {"Retry-After": "0"}, times=100)

    run = project.hubstash("add", REPO)

    assert run.code == ExitCode.UNREACHABLE
    assert len(run.errors) == 1
    assert "429" in run.errors[0]
    assert revision_requests(project.hub) == HubRetry().attempts
    assert project.snapshot() == before


# --------------------------------------------------------------------------------------
# Failures: one line, the README's exit code, nothing changed


def test_an_interrupted_download_is_never_pushed(new_project: ProjectFactory) -> None:
    project = new_project("interrupted")
    assert project.hubstash("add", OTHER_REPO).code == ExitCode.OK
    before = project.snapshot()
    project.hub.cut_body("model.safetensors")

    run = project.hubstash("add", REPO)

    assert run.code == ExitCode.UNREACHABLE
    assert len(run.errors) == 1
    assert REPO in run.errors[0]
    # The lock, the configuration and the store are exactly as before.
    assert project.snapshot() == before
    assert not (project.store / "repos" / "models--acme--tiny").exists()
    assert not any(project.stored_blob(f.content).exists() for f in FILES)


def _gated(hub: FakeHub) -> None:
    hub.fail_next(REVISION_API, 403, {"X-Error-Code": "GatedRepo"})


def _nothing(hub: FakeHub) -> None:
    pass


@pytest.mark.parametrize(
    ("spec", "fault", "code", "named"),
    [
        ("acme/nothing", _nothing, ExitCode.INCOMPLETE, "acme/nothing: no such repo"),
        (f"{REPO}@v9", _nothing, ExitCode.INCOMPLETE, "no revision 'v9'"),
        (REPO, _gated, ExitCode.DENIED, f"{REPO} is gated"),
    ],
    ids=["unknown repo", "unknown revision", "gated repo"],
)
def test_hub_refusals_are_one_line_with_their_exit_code(
    project: Project,
    spec: str,
    fault: Callable[[FakeHub], None],
    code: ExitCode,
    named: str,
) -> None:
    before = project.snapshot()
    fault(project.hub)

    run = project.hubstash("add", spec)

    assert run.code == code
    assert len(run.errors) == 1
    assert named in run.errors[0]
    assert all(line.startswith("hubstash: ") for line in run.err.splitlines())
    assert project.snapshot() == before


def test_an_unreachable_hub_exits_6(project: Project) -> None:
    before = project.snapshot()

    run = project.hubstash("add", REPO, endpoint=DEAD_ENDPOINT)

    assert run.code == ExitCode.UNREACHABLE
    assert len(run.errors) == 1
    assert DEAD_ENDPOINT in run.errors[0]
    assert project.snapshot() == before


def test_without_huggingface_hub_the_error_says_what_to_install(
    project: Project, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow" / "huggingface_hub"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed')\n")

    run = project.hubstash("add", REPO, env={"PYTHONPATH": str(shadow.parent)})

    assert run.code == ExitCode.USAGE
    assert len(run.errors) == 1
    assert "pip install 'hubstash[hub]'" in run.errors[0]
    assert project.hub.requests == []


# --------------------------------------------------------------------------------------
# The FakeHub faults these tests rely on


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@pytest.fixture
def hub_connection(fake_hub: FakeHub) -> Iterator[Callable[[str, str], Answer]]:
    fake_hub.add_commit("model", REPO, FILES)
    host, port = fake_hub.endpoint.removeprefix("http://").split(":")
    connections: list[http.client.HTTPConnection] = []

    def ask(method: str, target: str) -> Answer:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connections.append(connection)
        connection.request(method, target)
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, headers, response.read())

    yield ask
    for connection in connections:
        connection.close()


def test_fail_next_answers_that_many_requests_then_serves_again(
    fake_hub: FakeHub, hub_connection: Callable[[str, str], Answer]
) -> None:
    fake_hub.fail_next("/revision/", 429, {"Retry-After": "7"}, times=2)
    target = f"{REVISION_API}main"

    answers = [hub_connection("GET", target) for _ in range(3)]

    assert [a.status for a in answers] == [429, 429, 200]
    assert [a.headers.get("retry-after") for a in answers] == ["7", "7", None]


def test_cut_body_breaks_every_download_but_no_head(
    fake_hub: FakeHub, hub_connection: Callable[[str, str], Answer]
) -> None:
    fake_hub.cut_body("model.safetensors")
    target = f"/{REPO}/resolve/main/model.safetensors"

    head = hub_connection("HEAD", target)

    assert head.status == 200
    for _ in range(2):
        with pytest.raises(http.client.IncompleteRead) as cut:
            hub_connection("GET", target)
        assert len(cut.value.partial) == len(FILES[2].content) // 2
