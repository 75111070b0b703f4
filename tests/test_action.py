"""The GitHub Action (`action.yml`) and the example workflows.

The action's steps run here as a runner runs them: each step's `env:` is built from
the inputs and the outputs of earlier steps, its `run:` script goes to
`bash --noprofile --norc -eo pipefail`, and `GITHUB_ENV` and `GITHUB_OUTPUT` are files
read afterwards. Most runs pass `package: none`, which uses the
hubstash of this virtual environment instead of installing one; the install step itself
runs once, offline, with a stand-in wheel.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hubstash import open_store, push
from hubstash.config import load_config
from tests.support.caches import HandBuiltRepo, default_files, write_canonical_repo
from tests.support.hf_client import DEAD_ENDPOINT, load_offline

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
EXAMPLES = ROOT / "examples"
VENV_BIN = Path(sys.executable).parent
TIMEOUT_S = 120

OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
EXIT_USAGE = 2
EXIT_DENIED = 5
# An S3 store behind a dead local port: any request to it would fail at once.
S3_STORE = {"store": "s3://hubstash-ci/store", "package": "none"}
DEAD_S3 = {"AWS_ENDPOINT_URL": DEAD_ENDPOINT, "AWS_DEFAULT_REGION": "us-east-1"}

_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


# --------------------------------------------------------------------------------------
# A project as CI sees it, and the action run as a runner runs it


@dataclass(frozen=True)
class Project:
    """A checked-out repository with hubstash.toml and hubstash.lock, and its store.

    Attributes:
        workspace: the checkout (`GITHUB_WORKSPACE`), where steps start.
        store: the folder store that `hubstash.toml` names, already pushed.
        repo: the one repo of the lock, as written into the pushing machine's cache.
        home: `HOME` of every step: empty, so no user cache or AWS file is found.
    """

    workspace: Path
    store: Path
    repo: HandBuiltRepo
    home: Path

    @property
    def cache(self) -> Path:
        """A fresh Hub cache on the CI machine."""
        return self.home / "hf-cache"


@dataclass(frozen=True)
class ActionRun:
    """What one run of the action left.

    Attributes:
        exit_code: the exit status of the last step run (a failed step stops the run).
        outputs: the action's outputs, as `steps.<id>.outputs` of the workflow.
        github_env: the variables later steps of the job would get.
        log: stdout and stderr of the steps, for assertion messages.
    """

    exit_code: int
    outputs: Mapping[str, str]
    github_env: Mapping[str, str]
    log: str


def step_env(home: Path, **extra: str) -> dict[str, str]:
    """The runner's environment: local only, no credentials, the venv's hubstash."""
    return {
        "PATH": os.pathsep.join([str(VENV_BIN), os.environ["PATH"]]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_ENDPOINT": DEAD_ENDPOINT,
        **extra,
    }


def load_action() -> dict[str, Any]:
    action: dict[str, Any] = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    return action


def run_action(
    project: Project, inputs: Mapping[str, str], env: Mapping[str, str] | None = None
) -> ActionRun:
    """Run the action's steps in order, as a composite action runs on a runner."""
    action = load_action()
    values = _inputs_with_defaults(action, inputs)
    runner_env = _runner_env(project, env or {})

    steps: dict[str, dict[str, str]] = {}
    code, log = 0, ""
    for step in action["runs"]["steps"]:
        code, output, step_log = _run_step(step, values, steps, runner_env)
        steps[step["id"]] = output
        log += step_log
        if code != 0:
            break

    outputs = {
        name: _evaluate(str(spec["value"]), values, steps)
        for name, spec in action["outputs"].items()
    }
    github_env = _read_pairs(Path(runner_env["GITHUB_ENV"]))
    return ActionRun(code, outputs, github_env, log)


def _inputs_with_defaults(
    action: Mapping[str, Any], inputs: Mapping[str, str]
) -> dict[str, str]:
    unknown = set(inputs) - set(action["inputs"])
    assert not unknown, f"the action has no inputs {sorted(unknown)}"
    defaults = {
        name: str(spec.get("default", "")) for name, spec in action["inputs"].items()
    }
    return {**defaults, **inputs}


def _runner_env(project: Project, extra: Mapping[str, str]) -> dict[str, str]:
    """What every step gets from the runner: its files, folders and the job's env."""
    runner_temp = project.home / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    github_env = runner_temp / "github-env"
    github_env.touch()
    return step_env(
        project.home,
        **extra,
        GITHUB_ENV=str(github_env),
        GITHUB_PATH=str(runner_temp / "github-path"),
        GITHUB_WORKSPACE=str(project.workspace),
        RUNNER_TEMP=str(runner_temp),
    )


def _run_step(
    step: Mapping[str, Any],
    inputs: Mapping[str, str],
    steps: Mapping[str, Mapping[str, str]],
    runner_env: Mapping[str, str],
) -> tuple[int, dict[str, str], str]:
    runner_temp = Path(runner_env["RUNNER_TEMP"])
    script = runner_temp / f"{step['id']}.sh"
    script.write_text(step["run"], encoding="utf-8")
    output = runner_temp / f"{step['id']}.output"
    output.write_text("", encoding="utf-8")
    env = {
        **runner_env,
        **{k: _evaluate(str(v), inputs, steps) for k, v in step["env"].items()},
        "GITHUB_OUTPUT": str(output),
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=runner_env["GITHUB_WORKSPACE"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    log = f"--- step {step['id']}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.returncode, _read_pairs(output), log


def _evaluate(
    text: str, inputs: Mapping[str, str], steps: Mapping[str, Mapping[str, str]]
) -> str:
    """Substitute the `${{ }}` expressions the action may use; refuse any other."""

    def value(match: re.Match[str]) -> str:
        parts = match.group(1).split(".")
        if len(parts) == 2 and parts[0] == "inputs":
            return inputs[parts[1]]
        if len(parts) == 4 and parts[0] == "steps" and parts[2] == "outputs":
            return steps.get(parts[1], {}).get(parts[3], "")
        raise AssertionError(f"this runner cannot evaluate ${{{{ {match.group(1)} }}}}")

    return _EXPRESSION.sub(value, text)


def _read_pairs(path: Path) -> dict[str, str]:
    """A `GITHUB_ENV` or `GITHUB_OUTPUT` file written with single-line `name=value`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project whose store holds `acme/tiny`, locked, and an empty CI machine."""
    home = tmp_path / "home"
    home.mkdir()
    repo = write_canonical_repo(tmp_path / "pusher-cache", "acme/tiny", default_files())
    store = tmp_path / "store"
    assert push(open_store(str(store)), repo.cache_dir).exit_code == 0

    workspace = tmp_path / "workspace"
    workspace.mkdir()
    write_config(workspace, store, ["acme/tiny"])
    lock = [sys.executable, "-m", "hubstash.cli", "lock"]
    done = subprocess.run(
        [*lock, "--cache-dir", str(repo.cache_dir)],
        cwd=workspace,
        env=step_env(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return Project(workspace, store, repo, home)


def write_config(folder: Path, store: Path | str, repo_ids: list[str]) -> None:
    repos = "".join(f"\n[[repo]]\nid = {json.dumps(r)}\n" for r in repo_ids)
    text = f"[store]\nurl = {json.dumps(str(store))}\n{repos}"
    (folder / "hubstash.toml").write_text(text, encoding="utf-8")


def snapshot_file(cache: Path, repo: HandBuiltRepo, path: str) -> Path:
    return cache / repo.folder / "snapshots" / repo.commit / path


# --------------------------------------------------------------------------------------
# The files validate against GitHub's schemas


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    """Validate with a schema check-jsonschema ships; a proxy on a dead port makes
    any attempt to fetch a schema over the network fail instead of leaving the
    machine."""
    proxies = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    dead_proxy = dict.fromkeys(proxies, DEAD_ENDPOINT) | {
        "NO_PROXY": "",
        "no_proxy": "",
    }
    return subprocess.run(
        [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", schema, str(path)],
        env={**os.environ, **dead_proxy},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def test_the_action_is_a_valid_github_action() -> None:
    done = check_jsonschema("vendor.github-actions", ACTION)

    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("workflow", sorted(EXAMPLES.glob("*.yml")), ids=str)
def test_the_example_workflows_are_valid_github_workflows(workflow: Path) -> None:
    done = check_jsonschema("vendor.github-workflows", workflow)

    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_workflows_run_the_action_after_oidc_credentials() -> None:
    for workflow in sorted(EXAMPLES.glob("*.yml")):
        document = yaml.safe_load(workflow.read_text(encoding="utf-8"))
        (job,) = document["jobs"].values()
        uses = [step.get("uses", "").split("@")[0] for step in job["steps"]]
        credentials = uses.index("aws-actions/configure-aws-credentials")

        assert document["permissions"]["id-token"] == "write", workflow
        assert "role-to-assume" in job["steps"][credentials]["with"], workflow
        assert uses.index("<owner>/hubstash") > credentials, workflow


def test_the_example_configuration_names_a_store_a_model_and_a_dataset() -> None:
    config = load_config(EXAMPLES / "hubstash.toml")

    assert str(config.store["url"]).startswith("s3://")
    model, dataset = config.repos
    assert model.spec.repo.type == "model"
    assert model.include
    assert dataset.spec.repo.type == "dataset"


def test_no_input_reaches_a_script_except_through_env() -> None:
    steps = load_action()["runs"]["steps"]

    for step in steps:
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], f"step {step['id']} interpolates into run:"
    passed = {
        m
        for s in steps
        for v in s["env"].values()
        for m in re.findall(r"inputs\.([\w-]+)", str(v))
    }
    assert passed == set(load_action()["inputs"])


# --------------------------------------------------------------------------------------
# The action's steps, run locally


def test_a_locked_restore_fills_the_cache_and_switches_later_steps_offline(
    project: Project,
) -> None:
    run = run_action(
        project, {"package": "none", "cache-dir": str(project.cache), "jobs": "2"}
    )

    assert run.exit_code == 0, run.log
    assert run.outputs == {"complete": "true", "cache-dir": str(project.cache)}
    assert run.github_env == {**OFFLINE, "HF_HUB_CACHE": str(project.cache)}
    weights = project.repo.files["model.safetensors"].content
    restored = snapshot_file(project.cache, project.repo, "model.safetensors")
    assert restored.read_bytes() == weights
    # A later step, with the exported cache, loads it with the real client offline.
    exported = Path(run.github_env["HF_HUB_CACHE"])
    assert load_offline(exported, "model", "acme/tiny", "model.safetensors") == weights


def test_the_cache_may_come_from_hf_hub_cache_and_the_project_from_a_subfolder(
    project: Project,
) -> None:
    monorepo = project.workspace.parent / "monorepo"
    monorepo.mkdir()
    project.workspace.rename(monorepo / "ml")
    checkout = Project(monorepo, project.store, project.repo, project.home)

    run = run_action(
        checkout,
        {"package": "none", "working-directory": "ml"},
        env={"HF_HUB_CACHE": str(project.cache)},
    )

    assert run.exit_code == 0, run.log
    assert run.github_env["HF_HUB_CACHE"] == str(project.cache)
    assert snapshot_file(project.cache, project.repo, "config.json").is_file()


def test_a_missing_store_fails_the_step_even_with_if_available(
    project: Project,
) -> None:
    # if-available skips only when an S3 store has no credentials at all: a folder
    # that is not there is a real failure.
    project.store.rename(project.store.with_name("store-gone"))

    run = run_action(
        project,
        {"package": "none", "cache-dir": str(project.cache), "if-available": "true"},
    )

    assert run.exit_code != 0, run.log
    assert run.outputs["complete"] == "false"
    assert run.github_env == {}
    assert not snapshot_file(project.cache, project.repo, "config.json").exists()


def test_without_credentials_if_available_skips_and_reports_incomplete(
    project: Project,
) -> None:
    run = run_action(
        project,
        {**S3_STORE, "cache-dir": str(project.cache), "if-available": "true"},
        env=DEAD_S3,
    )

    assert run.exit_code == 0, run.log
    assert run.outputs == {"complete": "false", "cache-dir": ""}
    assert run.github_env == {}
    assert not project.cache.exists()
    assert "::notice title=hubstash::restore skipped" in run.log


def test_without_credentials_and_without_if_available_the_step_fails(
    project: Project,
) -> None:
    run = run_action(
        project, {**S3_STORE, "cache-dir": str(project.cache)}, env=DEAD_S3
    )

    assert run.exit_code == EXIT_DENIED, run.log
    assert run.outputs["complete"] == "false"
    assert run.github_env == {}


def test_a_complete_cache_needs_no_credentials_and_no_store(project: Project) -> None:
    # As when actions/cache restored the cache for a pull request from a fork.
    cache = project.repo.cache_dir

    run = run_action(
        project,
        {**S3_STORE, "cache-dir": str(cache), "if-available": "true"},
        env=DEAD_S3,
    )

    assert run.exit_code == 0, run.log
    assert run.outputs == {"complete": "true", "cache-dir": str(cache)}
    assert run.github_env == {**OFFLINE, "HF_HUB_CACHE": str(cache)}


@pytest.mark.parametrize(
    ("frozen", "exit_code", "complete"),
    [("true", EXIT_USAGE, "false"), ("false", 0, "true")],
)
def test_frozen_refuses_a_lock_behind_the_configuration(
    project: Project, frozen: str, exit_code: int, complete: str
) -> None:
    write_config(project.workspace, project.store, ["acme/tiny", "acme/new-model"])

    run = run_action(
        project,
        {"package": "none", "cache-dir": str(project.cache), "frozen": frozen},
    )

    assert run.exit_code == exit_code, run.log
    assert run.outputs["complete"] == complete


def test_a_switch_that_is_not_true_or_false_is_a_usage_error(project: Project) -> None:
    run = run_action(project, {"package": "none", "if-available": "yes"})

    assert run.exit_code == EXIT_USAGE, run.log
    assert "input if-available must be true or false" in run.log
    assert run.outputs["complete"] == "false"


def test_input_values_are_never_run_as_shell_code(project: Project) -> None:
    marker = project.workspace / "injected"

    run = run_action(
        project,
        {"package": "none", "store": f'$(touch {marker})"; touch {marker}; "'},
    )

    assert run.exit_code != 0, run.log
    assert not marker.exists()


# --------------------------------------------------------------------------------------
# The install step, offline: a stand-in wheel instead of hubstash from PyPI

# A `hubstash` that records how it was called and reports a complete restore.
_STAND_IN = """
import json, os, sys

def main():
    if sys.argv[1:] == ["--version"]:
        return print("hubstash stand-in 1.0")
    with open(os.environ["STAND_IN_ARGS"], "w") as f:
        json.dump(sys.argv[1:], f)
    with open(os.environ["GITHUB_ENV"], "a") as f:
        f.write("HF_HUB_CACHE=/stand-in\\n")
"""


def stand_in_wheel(folder: Path) -> Path:
    """A wheel that installs a `hubstash` command with no dependencies, offline."""
    dist = "hubstash_stand_in-1.0.dist-info"
    files = {
        "hubstash_stand_in.py": _STAND_IN.encode(),
        f"{dist}/METADATA": b"Metadata-Version: 2.1\nName: hubstash-stand-in\n"
        b"Version: 1.0\n",
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": b"[console_scripts]\n"
        b"hubstash = hubstash_stand_in:main\n",
    }
    record = [
        f"{name},sha256={_digest(data)},{len(data)}" for name, data in files.items()
    ]
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,", ""]).encode()
    wheel = folder / "hubstash_stand_in-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_the_install_step_puts_only_hubstash_on_path_and_the_pull_step_calls_it(
    project: Project, tmp_path: Path
) -> None:
    wheel = stand_in_wheel(tmp_path)
    calls = tmp_path / "stand-in-args.json"

    run = run_action(
        project,
        {"package": str(wheel), "cache-dir": "hf", "jobs": "3"},
        env={"PIP_NO_INDEX": "1", "STAND_IN_ARGS": str(calls)},
    )

    assert run.exit_code == 0, run.log
    (path_entry,) = (project.home / "runner-temp" / "github-path").read_text().split()
    assert [p.name for p in Path(path_entry).iterdir()] == ["hubstash"]
    assert json.loads(calls.read_text()) == [
        *["pull", "--locked", "--export-env", "--frozen"],
        *["--cache-dir", "hf", "--jobs", "3"],
    ]
    assert run.outputs == {"complete": "true", "cache-dir": "/stand-in"}
    assert run.github_env == {"HF_HUB_CACHE": "/stand-in"}
    assert "hubstash stand-in 1.0" in run.log
