"""Import: a cache that `aws s3 sync` copied to S3 (or back to a folder) comes back
exactly, and the tokens that were copied beside it never reach the store.

The original is a genuine cache written by the real client, with fake tokens beside
it in `HF_HOME`; the copy is made by the real AWS CLI against moto on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hubstash import ExitCode, push
from hubstash.cli import main
from hubstash.errors import LocalFilesystemError, NotFound
from hubstash.importing import BLOB_COPY, ImportResult, LeftBehind, import_copy
from hubstash.manifest import Manifest
from hubstash.output import size
from hubstash.repos import RepoId
from hubstash.stores import FolderStore, S3Options, Store
from hubstash.storeview import StoreView
from tests.support.awscli import aws_s3_sync
from tests.support.caches import (
    GenuineCache,
    TokenFiles,
    TreeEntry,
    build_genuine_cache,
    default_files,
    make_partial_download,
    make_token_files,
    snapshot_tree,
    write_canonical_repo,
)
from tests.support.fake_hub import FakeHub, HubFile
from tests.support.hashes import sha256_hex
from tests.support.hf_client import FileDownload, load_offline, run_offline, scan
from tests.support.s3server import S3Server
from tests.support.stores import s3_credentials

HF_HOME_COPY = "cache/"  # aws s3 sync ~/.cache/huggingface s3://bucket/cache/
HUB_COPY = "hub-only/"  # aws s3 sync ~/.cache/huggingface/hub s3://bucket/hub-only/


@dataclass(frozen=True)
class Original:
    """An `HF_HOME` with a genuine cache and tokens, and its copies in a bucket."""

    hf_home: Path
    genuine: GenuineCache
    tokens: TokenFiles
    bucket: str

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Original:
    """Made once per module; tests only read the folder and the bucket."""
    hf_home = tmp_path_factory.mktemp("hf-home")
    with FakeHub() as hub:
        genuine = build_genuine_cache(hf_home / "hub", hub)
    tokens = make_token_files(hf_home)
    bucket = s3_server.new_bucket()
    scratch = tmp_path_factory.mktemp("aws-home")
    for source, prefix in ((hf_home, HF_HOME_COPY), (hf_home / "hub", HUB_COPY)):
        aws_s3_sync(s3_server.endpoint, str(source), f"s3://{bucket}/{prefix}", scratch)
    return Original(hf_home, genuine, tokens, bucket)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server, with the fake credentials in this process's environment."""
    s3_credentials(monkeypatch)
    return s3_server


def without_blob_times(tree: dict[str, TreeEntry]) -> dict[str, TreeEntry]:
    """`aws s3 sync` does not keep modification times; everything else must match."""
    return {path: entry._replace(mtime_ns=None) for path, entry in tree.items()}


def assert_restores_the_original(restored: Path, original: Original) -> None:
    cache = original.genuine.cache_dir
    assert without_blob_times(snapshot_tree(restored)) == without_blob_times(
        snapshot_tree(cache)
    )
    report = scan(restored)
    assert report.warnings == ()
    assert report.incomplete_files == ()
    calls = [
        FileDownload(repo.repo_id, path, repo.repo_type, ref)
        for repo in original.genuine.repos
        for ref, commit in repo.refs.items()
        for path in repo.revisions[commit].files
    ]
    outcomes = run_offline(restored, calls)
    assert [o.error for o in outcomes] == [None] * len(calls)
    main = (
        cache / "models--acme--tiny-model" / "snapshots" / original.genuine.model_main
    )
    loaded = load_offline(restored, "model", "acme/tiny-model", "config.json")
    assert loaded == (main / "config.json").read_bytes()


def assert_no_secret_in(objects: dict[str, bytes], secrets: tuple[str, ...]) -> None:
    for key, data in objects.items():
        for secret in secrets:
            assert secret not in key
            assert secret.encode() not in data, key


def folder_objects(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }


def distinct_content_bytes(cache: Path) -> int:
    """Bytes of the distinct file contents the cache's snapshots hold."""
    sizes = {
        sha256_hex(path.read_bytes()): path.stat().st_size
        for path in cache.glob("*/snapshots/*/**/*")
        if path.is_file()
    }
    return sum(sizes.values())


def test_an_aws_s3_sync_bucket_is_imported_and_pulls_back_as_the_original_cache(
    cli: Callable[..., Run], original: Original, s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    store = f"s3://{bucket}/hf"
    endpoint = ("--endpoint-url", s3.endpoint)
    source = s3.keys(original.bucket, HF_HOME_COPY)
    work = tmp_path / "work"
    work.mkdir()

    imported = cli(
        "import",
        original.url(HF_HOME_COPY),
        "--store",
        store,
        *endpoint,
        "--work-dir",
        str(work),
    )
    pulled = cli(
        "pull", "--store", store, *endpoint, "--cache-dir", str(tmp_path / "r" / "hub")
    )

    assert (imported.code, pulled.code) == (0, 0), imported.err + pulled.err
    assert_restores_the_original(tmp_path / "r" / "hub", original)
    before = size(sum(len(data) for data in source.values()))
    after = size(distinct_content_bytes(original.genuine.cache_dir))
    assert f"the source holds {before} in {len(source)} files" in imported.out
    assert f"the store holds {after} for it" in imported.out
    for token_file in ("token", "stored_tokens", "sandbox/pools/default/state.json"):
        assert f"{original.url(HF_HOME_COPY)}{token_file} " in imported.err
    assert_no_secret_in(s3.keys(bucket), original.tokens.secrets)
    for secret in original.tokens.secrets:
        assert secret not in imported.out + imported.err
    assert list(work.iterdir()) == []


def stored(store: Store) -> dict[str, object]:
    """What a store says about its repos, modification times aside."""
    view = StoreView(store)
    manifests: dict[tuple[RepoId, str], Manifest] = {}
    for repo, entry in view.index().items():
        for commit in entry.pieces:
            manifest = view.manifest(repo, commit)
            files = tuple(dataclasses.replace(f, mtime_ns=None) for f in manifest.files)
            manifests[(repo, commit)] = dataclasses.replace(manifest, files=files)
    refs = {
        o.key: store.read(o.key) for o in store.listing("repos/") if "/refs/" in o.key
    }
    blobs = {o.key for o in store.listing("blobs/")}
    return {"manifests": manifests, "refs": refs, "blobs": blobs}


@pytest.mark.parametrize("prefix", [HF_HOME_COPY, HUB_COPY])
def test_import_writes_what_a_push_of_the_original_cache_writes(
    original: Original, s3: S3Server, tmp_path: Path, prefix: str
) -> None:
    options = S3Options(endpoint_url=s3.endpoint)
    pushed = FolderStore(tmp_path / "pushed")
    imported = FolderStore(tmp_path / "imported")

    push(pushed, original.genuine.cache_dir)
    result = import_copy(imported, original.url(prefix), options=options)

    assert result.exit_code == ExitCode.OK, result.findings
    assert stored(imported) == stored(pushed)
    assert result.pushed.uploaded_files > 0


def test_blob_copies_of_snapshot_files_are_not_downloaded(
    original: Original, s3: S3Server, tmp_path: Path
) -> None:
    cache = original.genuine.cache_dir
    sha256_named = [p for p in cache.glob("*/blobs/*") if len(p.name) == 64]
    source = s3.keys(original.bucket, HUB_COPY)

    result = import_copy(
        FolderStore(tmp_path / "store"),
        original.url(HUB_COPY),
        options=S3Options(endpoint_url=s3.endpoint),
    )

    copies = LeftBehind(
        BLOB_COPY, len(sha256_named), sum(p.stat().st_size for p in sha256_named)
    )
    assert copies in result.left_behind
    assert result.source_bytes == sum(len(data) for data in source.values())
    assert result.downloaded_bytes <= result.source_bytes - copies.bytes


def copy_following_links(source: Path, destination: Path) -> None:
    """What `cp -rL` does: every link replaced by a copy of what it points to."""
    shutil.copytree(source, destination, symlinks=False)


@pytest.mark.parametrize("how", ["aws s3 sync down", "cp -rL"])
def test_a_folder_copy_is_imported_and_pulls_back_as_the_original_cache(
    cli: Callable[..., Run], original: Original, s3: S3Server, tmp_path: Path, how: str
) -> None:
    copy = tmp_path / "copy"
    if how == "cp -rL":
        copy_following_links(original.hf_home, copy)
    else:
        aws_s3_sync(s3.endpoint, original.url(HF_HOME_COPY), str(copy), tmp_path)
    store = tmp_path / "store"

    imported = cli("import", str(copy), "--store", str(store))
    pulled = cli(
        "pull", "--store", str(store), "--cache-dir", str(tmp_path / "r" / "hub")
    )

    assert (imported.code, pulled.code) == (0, 0), imported.err + pulled.err
    assert_restores_the_original(tmp_path / "r" / "hub", original)
    assert_no_secret_in(folder_objects(store), original.tokens.secrets)
    assert f"{copy}/token " in imported.err
    assert f"{copy}/stored_tokens " in imported.err
    for secret in original.tokens.secrets:
        assert secret not in imported.out + imported.err


def test_locks_partial_downloads_and_tokens_are_left_behind_and_counted(
    tmp_path: Path,
) -> None:
    hf_home = tmp_path / "hf-home"
    repo = write_canonical_repo(hf_home / "hub", "acme/tiny", default_files())
    partial = make_partial_download(hf_home / "hub")
    lock = (
        hf_home
        / "hub"
        / ".locks"
        / repo.folder
        / f"{repo.blob_name('config.json')}.lock"
    )
    lock.parent.mkdir(parents=True)
    lock.touch()
    (hf_home / "xet" / "logs").mkdir(parents=True)
    (hf_home / "xet" / "logs" / "xet.log").write_text("{}\n")
    tokens = make_token_files(hf_home)
    store = FolderStore(tmp_path / "store")

    result = import_copy(store, hf_home)

    kinds = {part.kind: part.files for part in result.left_behind}
    # Other: CACHEDIR.TAG and the hf_xet log.
    assert kinds == {"lock": 1, "partial": 1, "secret": 3, "other": 2}
    assert result.exit_code == ExitCode.OK
    leaked = {f.path for f in result.findings if f.kind == "leaked-token"}
    assert leaked == {"token", "stored_tokens", "sandbox/pools/default/state.json"}
    blobs = {o.key.rsplit("/", 1)[-1] for o in store.listing("blobs/")}
    assert sha256_hex(partial.incomplete.read_bytes()) not in blobs
    assert_no_secret_in(folder_objects(store.root), tokens.secrets)


def test_a_token_inside_a_repo_is_imported_as_repo_content_and_flagged(
    tmp_path: Path,
) -> None:
    secret = "hf_FAKE" + "x" * 34
    notes = HubFile("notes.txt", f"HF_TOKEN={secret}\n".encode())
    write_canonical_repo(tmp_path / "hub", "acme/leaky", [*default_files(), notes])

    result = import_copy(FolderStore(tmp_path / "store"), tmp_path / "hub")

    (finding,) = [f for f in result.findings if f.kind == "token-in-repo"]
    assert finding.repo == "acme/leaky"
    assert finding.path.startswith("models--acme--leaky/")
    assert secret not in finding.message
    assert result.exit_code == ExitCode.FAILURE


def test_an_s3_source_that_does_not_fit_in_the_work_folder_is_refused_first(
    original: Original,
    s3: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("hubstash.importing.free_bytes", lambda folder: 1024)
    store = FolderStore(tmp_path / "store")

    with pytest.raises(LocalFilesystemError, match="--work-dir"):
        import_copy(
            store,
            original.url(HF_HOME_COPY),
            options=S3Options(endpoint_url=s3.endpoint),
            work_dir=tmp_path,
        )

    assert sorted(os.listdir(tmp_path)) == []


def test_a_store_inside_the_source_is_refused(
    cli: Callable[..., Run], original: Original, s3: S3Server
) -> None:
    before = s3.keys(original.bucket)

    result = cli(
        "import",
        original.url(HF_HOME_COPY),
        "--store",
        original.url(HF_HOME_COPY + "hf"),
        "--endpoint-url",
        s3.endpoint,
    )

    assert result.code == ExitCode.USAGE
    assert "overlap" in result.err
    assert s3.keys(original.bucket) == before


def test_a_folder_without_cache_content_is_refused(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "notes.txt").write_text("not a cache\n")

    with pytest.raises(NotFound, match="holds no Hugging Face cache content"):
        import_copy(FolderStore(tmp_path / "store"), tmp_path / "src")

    assert not (tmp_path / "store").exists()


def test_the_result_says_what_the_source_and_store_hold(tmp_path: Path) -> None:
    write_canonical_repo(tmp_path / "hub", "acme/tiny", default_files())

    result: ImportResult = import_copy(FolderStore(tmp_path / "s"), tmp_path / "hub")

    files = [
        p for p in (tmp_path / "hub").rglob("*") if p.is_file() and not p.is_symlink()
    ]
    assert result.source_files == len(files)
    assert result.source_bytes == sum(p.stat().st_size for p in files)
    assert result.stored_bytes == distinct_content_bytes(tmp_path / "hub")
    assert result.downloaded_files == 0
