"""IAM policies from ``hubstash policy``, and denials that name what is missing (O1).

Two judges. moto's S3 server with IAM enforced runs every real request of a pull or
a push under the generated policy, but checks only actions and resources; the
``s3:prefix`` conditions that keep listings inside the store are checked by a tiny
evaluator of Allow statements, fed the requests hubstash really sends.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from hubstash import AccessDenied, ExitCode, list_store, pull, push
from hubstash.cli import main
from hubstash.errors import UsageError
from hubstash.policy import policy_for_url, store_policy
from hubstash.stores import S3Options, Store, open_store
from tests.support.caches import HandBuiltRepo, default_files, write_canonical_repo
from tests.support.fake_hub import HubFile
from tests.support.iam_server import IamS3Server, Keys, iam_enforcing_s3_server
from tests.support.s3_error_server import ACCESS_DENIED, s3_error_server
from tests.support.s3server import S3Server
from tests.support.stores import s3_credentials

MiB = 1024 * 1024
PREFIX = "team/hf"


# --------------------------------------------------------------------------------------
# The documents


def test_the_read_policy_lists_the_prefix_and_reads_its_objects_only() -> None:
    policy = store_policy("acme-ml", PREFIX, "read")

    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListStorePrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::acme-ml",
                "Condition": {"StringLike": {"s3:prefix": ["team/hf/", "team/hf/*"]}},
            },
            {
                "Sid": "ReadStoreObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": "arn:aws:s3:::acme-ml/team/hf/*",
            },
        ],
    }


STORE_OBJECTS = "arn:aws:s3:::acme-ml/team/hf/*"


def test_write_adds_what_push_needs_and_admin_adds_delete() -> None:
    def grants(role: Any) -> set[tuple[str, str]]:
        document = store_policy("acme-ml", PREFIX, role)
        return {
            (action, s["Resource"])
            for s in document["Statement"]
            for action in _as_list(s["Action"])
        }

    read, write, admin = grants("read"), grants("write"), grants("admin")

    assert read == {
        ("s3:ListBucket", "arn:aws:s3:::acme-ml"),
        ("s3:GetObject", STORE_OBJECTS),
    }
    assert write - read == {
        ("s3:PutObject", STORE_OBJECTS),
        ("s3:AbortMultipartUpload", STORE_OBJECTS),
        ("s3:ListMultipartUploadParts", STORE_OBJECTS),
        # A push deletes the record of its own progress, and nothing else.
        ("s3:DeleteObject", "arn:aws:s3:::acme-ml/team/hf/pending/*"),
    }
    assert admin - write == {("s3:DeleteObject", STORE_OBJECTS)}


def test_no_statement_reaches_beyond_the_store() -> None:
    for role in ("read", "write", "admin"):
        document = store_policy("acme-ml", PREFIX, role)
        for statement in document["Statement"]:
            resource = statement["Resource"]
            assert resource == "arn:aws:s3:::acme-ml" or resource.startswith(
                "arn:aws:s3:::acme-ml/team/hf/"
            )


def test_a_store_at_the_bucket_root_gets_the_whole_bucket() -> None:
    document = policy_for_url("s3://acme-ml", "read")

    assert [s["Resource"] for s in document["Statement"]] == [
        "arn:aws:s3:::acme-ml",
        "arn:aws:s3:::acme-ml/*",
    ]
    assert "Condition" not in document["Statement"][0]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("/mnt/store", "for s3:// stores"),
        ("s3://acme-ml/team/*", "wildcard"),
        ("s3://acme-ml/${aws:username}", "wildcard or variable"),
    ],
)
def test_policies_are_refused_where_iam_cannot_express_the_store(
    url: str, words: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(words)):
        policy_for_url(url)


def test_the_policy_command_prints_the_json_of_a_role(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBSTASH_CONFIG", raising=False)

    code = main(["policy", "--store", "s3://acme-ml/team/hf", "--role", "admin"])

    out = capsys.readouterr().out
    assert code == ExitCode.OK
    assert json.loads(out) == store_policy("acme-ml", PREFIX, "admin")


# --------------------------------------------------------------------------------------
# Conditions: a tiny evaluator of Allow statements


@dataclass(frozen=True)
class Request:
    """What IAM judges: the action, the resource, and a listing's ``s3:prefix``."""

    action: str
    resource: str
    prefix: str | None = None


def allows(policy: dict[str, Any], request: Request) -> bool:
    """Whether any Allow statement matches; the policies hold no Deny."""
    return any(_matches(s, request) for s in policy["Statement"])


def _matches(statement: dict[str, Any], request: Request) -> bool:
    assert statement["Effect"] == "Allow"
    return (
        _like(statement["Action"], request.action)
        and _like(statement["Resource"], request.resource)
        and _conditions_hold(statement.get("Condition", {}), request)
    )


def _conditions_hold(condition: dict[str, Any], request: Request) -> bool:
    for operator, tests in condition.items():
        assert operator == "StringLike", f"this evaluator knows no {operator}"
        for key, patterns in tests.items():
            assert key == "s3:prefix", f"this evaluator knows no {key}"
            # A key the request does not carry fails the condition, as in IAM.
            if request.prefix is None or not _like(patterns, request.prefix):
                return False
    return True


def _like(patterns: str | list[str], value: str) -> bool:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one character."""

    def regex(pattern: str) -> str:
        return "".join(
            ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern
        )

    return any(re.fullmatch(regex(p), value) for p in _as_list(patterns))


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


READ = store_policy("acme-ml", PREFIX, "read")
WRITE = store_policy("acme-ml", PREFIX, "write")
ADMIN = store_policy("acme-ml", PREFIX, "admin")


@pytest.mark.parametrize(
    ("request_", "allowed"),
    [
        (Request("s3:ListBucket", "arn:aws:s3:::acme-ml", "team/hf/"), True),
        (Request("s3:ListBucket", "arn:aws:s3:::acme-ml", "team/hf/repos/"), True),
        (
            Request("s3:ListBucket", "arn:aws:s3:::acme-ml", "team/hf/blobs/sha256/"),
            True,
        ),
        (Request("s3:ListBucket", "arn:aws:s3:::acme-ml", None), False),
        (Request("s3:ListBucket", "arn:aws:s3:::acme-ml", ""), False),
        (Request("s3:ListBucket", "arn:aws:s3:::acme-ml", "team/"), False),
        (Request("s3:ListBucket", "arn:aws:s3:::acme-ml", "team/hf"), False),
        (Request("s3:ListBucket", "arn:aws:s3:::acme-ml", "team/hf-old/"), False),
        (Request("s3:ListBucket", "arn:aws:s3:::other", "team/hf/"), False),
        (Request("s3:GetObject", "arn:aws:s3:::acme-ml/team/hf/blobs/x"), True),
        (Request("s3:GetObject", "arn:aws:s3:::acme-ml/team/hf-old/token"), False),
        (Request("s3:GetObject", "arn:aws:s3:::acme-ml/token"), False),
        (Request("s3:PutObject", "arn:aws:s3:::acme-ml/team/hf/blobs/x"), False),
        (Request("s3:DeleteObject", "arn:aws:s3:::acme-ml/team/hf/blobs/x"), False),
    ],
)
def test_the_read_policy_lists_inside_the_prefix_only(
    request_: Request, allowed: bool
) -> None:
    assert allows(READ, request_) is allowed


@pytest.mark.parametrize(
    ("key", "by_write", "by_admin"),
    [
        ("team/hf/pending/1a2b.json", True, True),
        ("team/hf/blobs/sha256/ab/ab12", False, True),
        ("team/hf/hubstash-store.json", False, True),
        ("team/hf-old/pending/1a2b.json", False, False),
        ("pending/1a2b.json", False, False),
    ],
)
def test_write_deletes_its_push_records_only_and_admin_the_whole_store(
    key: str, by_write: bool, by_admin: bool
) -> None:
    delete = Request("s3:DeleteObject", f"arn:aws:s3:::acme-ml/{key}")

    assert (allows(WRITE, delete), allows(ADMIN, delete)) == (by_write, by_admin)


# The IAM action that authorizes each S3 operation hubstash may call. An operation
# missing here fails the test below: a new call needs a look at the policies.
IAM_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
}


class RequestLog:
    """Every S3 operation a store's client sends, as the IAM request it is."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.operations: set[str] = set()
        self._lock = threading.Lock()

    def watch(self, store: Store) -> Store:
        client = store.client  # type: ignore[attr-defined]
        client.meta.events.register("before-parameter-build.s3", self._record)
        return store

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        action, bucket = IAM_ACTIONS[model.name], f"arn:aws:s3:::{params['Bucket']}"
        if action == "s3:ListBucket":
            requests = [Request(action, bucket, params.get("Prefix"))]
        else:
            # IAM judges a batch delete key by key.
            batch = params.get("Delete", {}).get("Objects", [])
            keys = [o["Key"] for o in batch] or [params["Key"]]
            requests = [Request(action, f"{bucket}/{key}") for key in keys]
        with self._lock:
            self.requests += requests
            self.operations.add(model.name)


def test_every_request_of_a_pull_and_a_push_is_allowed_with_its_conditions(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_credentials(monkeypatch)
    bucket = s3_server.new_bucket()
    url = f"s3://{bucket}/{PREFIX}"
    options = S3Options(endpoint_url=s3_server.endpoint, part_size=5 * MiB, jobs=2)
    cache = tmp_path / "hub"
    write_canonical_repo(cache, "acme/tiny", default_files())
    write_canonical_repo(cache, "acme/big", [_big_file()])
    pushes, pulls = RequestLog(), RequestLog()

    pushed = push(pushes.watch(open_store(url, options)), cache)
    pulled = pull(pulls.watch(open_store(url, options)), tmp_path / "restored")
    list_store(pulls.watch(open_store(url, options)))

    write = store_policy(bucket, PREFIX, "write")
    read = store_policy(bucket, PREFIX, "read")
    elsewhere = store_policy(bucket, f"{PREFIX}-old", "admin")
    assert (pushed.exit_code, pulled.exit_code) == (ExitCode.OK, ExitCode.OK)
    assert {"ListObjectsV2", "PutObject", "UploadPart"} <= pushes.operations
    assert {"ListObjectsV2", "GetObject"} <= pulls.operations
    assert [r for r in pushes.requests if not allows(write, r)] == []
    assert [r for r in pulls.requests if not allows(read, r)] == []
    assert [r for r in pushes.requests + pulls.requests if allows(elsewhere, r)] == []


# --------------------------------------------------------------------------------------
# Enforced by moto's IAM


@pytest.fixture(scope="module")
def iam_s3() -> Iterator[IamS3Server]:
    with iam_enforcing_s3_server() as server:
        yield server


@dataclass(frozen=True)
class SharedStore:
    """A store the admin pushed ``acme/tiny`` to, and how to reach it."""

    server: IamS3Server
    bucket: str
    url: str
    options: S3Options
    repo: HandBuiltRepo

    def user(self, role: Any) -> Keys:
        return self.server.user_with_policy(store_policy(self.bucket, PREFIX, role))

    def open(self) -> Store:
        return open_store(self.url, self.options)

    def s3_as(self, keys: Keys) -> Any:
        return self.server.client("s3", keys)


@pytest.fixture
def shared(
    iam_s3: IamS3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> SharedStore:
    bucket = iam_s3.new_bucket()
    options = S3Options(endpoint_url=iam_s3.endpoint, part_size=5 * MiB, jobs=2)
    url = f"s3://{bucket}/{PREFIX}"
    repo = write_canonical_repo(tmp_path / "admin-hub", "acme/tiny", default_files())
    iam_s3.admin.use(monkeypatch)
    assert push(open_store(url, options), repo.cache_dir).exit_code == ExitCode.OK
    return SharedStore(iam_s3, bucket, url, options, repo)


def test_moto_lets_the_read_role_pull_and_denies_it_push_and_delete(
    shared: SharedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = shared.user("read")
    new_repo = write_canonical_repo(tmp_path / "hub", "acme/new", default_files("n"))
    before = shared.server.keys_in(shared.bucket)
    reader.use(monkeypatch)

    pulled = pull(shared.open(), tmp_path / "restored")
    listed = list_store(shared.open())
    with pytest.raises(AccessDenied, match="s3:PutObject"):
        push(shared.open(), new_repo.cache_dir)
    deleted = _error_code(
        lambda: shared.s3_as(reader).delete_object(
            Bucket=shared.bucket, Key=f"{PREFIX}/hubstash-store.json"
        )
    )

    assert pulled.exit_code == ExitCode.OK, pulled.findings
    assert pulled.files == len(shared.repo.files)
    assert [r.repo.id for r in listed] == ["acme/tiny"]
    assert deleted == "AccessDenied"
    assert shared.server.keys_in(shared.bucket) == before


def test_moto_lets_the_write_role_push_in_parts_and_denies_it_delete(
    shared: SharedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = shared.user("write")
    big = write_canonical_repo(tmp_path / "hub", "acme/big", [_big_file()])
    s3 = shared.s3_as(writer)
    writer.use(monkeypatch)

    pushed = push(shared.open(), big.cache_dir)
    pulled = pull(shared.open(), tmp_path / "restored", ["acme/big"])
    upload = s3.create_multipart_upload(Bucket=shared.bucket, Key=f"{PREFIX}/x")
    ids = {
        "Bucket": shared.bucket,
        "Key": f"{PREFIX}/x",
        "UploadId": upload["UploadId"],
    }
    listed_parts = _error_code(lambda: s3.list_parts(**ids))
    aborted = _error_code(lambda: s3.abort_multipart_upload(**ids))
    # moto judges a batch delete against the bucket, not key by key as S3 does, so
    # the push's own cleanup of pending/ is tried here with single deletes.
    deletes = {
        key: _error_code(partial(s3.delete_object, Bucket=shared.bucket, Key=key))
        for key in (f"{PREFIX}/pending/x.json", f"{PREFIX}/hubstash-store.json")
    }

    assert pushed.exit_code == ExitCode.OK, pushed.findings
    assert pushed.uploaded_files == 1
    assert pulled.exit_code == ExitCode.OK, pulled.findings
    assert (listed_parts, aborted) == ("", "")
    assert deletes == {
        f"{PREFIX}/pending/x.json": "",
        f"{PREFIX}/hubstash-store.json": "AccessDenied",
    }


def test_moto_denies_every_role_outside_the_prefix(shared: SharedStore) -> None:
    admin = shared.s3_as(shared.user("admin"))
    outside = f"{PREFIX}-old/token"
    shared.s3_as(shared.server.admin).put_object(
        Bucket=shared.bucket, Key=outside, Body=b"hf_FAKE"
    )

    inside = _error_code(
        lambda: admin.delete_object(
            Bucket=shared.bucket, Key=f"{PREFIX}/hubstash-store.json"
        )
    )
    attempts = {
        "get": _error_code(lambda: admin.get_object(Bucket=shared.bucket, Key=outside)),
        "put": _error_code(
            lambda: admin.put_object(Bucket=shared.bucket, Key=outside, Body=b"x")
        ),
        "delete": _error_code(
            lambda: admin.delete_object(Bucket=shared.bucket, Key=outside)
        ),
    }

    assert inside == ""
    assert attempts == dict.fromkeys(attempts, "AccessDenied")


# --------------------------------------------------------------------------------------
# O1: without s3:ListBucket, a denial must say so, and never pass for "absent"


def _no_list_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"arn:aws:s3:::{bucket}/{PREFIX}/*",
            }
        ],
    }


def test_o1_without_list_bucket_pull_and_push_name_the_missing_permission(
    shared: SharedStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user = shared.server.user_with_policy(_no_list_policy(shared.bucket))
    new_repo = write_canonical_repo(tmp_path / "hub", "acme/new", default_files("n"))
    before = shared.server.keys_in(shared.bucket)
    user.use(monkeypatch)
    store_args = ["--store", shared.url, "--endpoint-url", shared.server.endpoint]

    pull_code = main(["pull", *store_args, "--cache-dir", str(tmp_path / "restored")])
    pull_err = capsys.readouterr().err
    push_code = main(["push", *store_args, "--cache-dir", str(new_repo.cache_dir)])
    push_err = capsys.readouterr().err

    assert (pull_code, push_code) == (ExitCode.DENIED, ExitCode.DENIED)
    assert "access denied: s3:ListBucket" in pull_err
    assert "access denied: s3:ListBucket" in push_err
    assert shared.server.keys_in(shared.bucket) == before


@pytest.mark.parametrize("command", ["pull", "push"])
def test_o1_a_403_for_a_key_that_may_be_missing_names_list_bucket_and_writes_nothing(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Real S3 answers 403 for a missing key when ListBucket is not granted; moto
    # answers 404, so a server that denies everything stands in for it.
    s3_credentials(monkeypatch)
    cache = tmp_path / "hub"
    write_canonical_repo(cache, "acme/tiny", default_files())

    with s3_error_server(ACCESS_DENIED) as server:
        code = main(
            [command, "--store", "s3://bucket/team/hf", "--endpoint-url",
             server.endpoint, "--cache-dir", str(cache)]
        )  # fmt: skip

    err = capsys.readouterr().err
    assert code == ExitCode.DENIED
    assert "s3:ListBucket" in err
    assert "hubstash-store.json" in err
    assert [r for r in server.requests if not r.startswith("GET ")] == []


# --------------------------------------------------------------------------------------
# Helpers


def _big_file() -> HubFile:
    """Over one 5 MiB part: uploaded in parts, downloaded in ranges."""
    return HubFile("model.safetensors", os.urandom(6 * MiB), lfs=True)


def _error_code(call: Callable[[], object]) -> str:
    """The S3 error code a boto3 call fails with, or "" when it succeeds."""
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return ""
