"""init and policy: setting up a store and the permissions to use it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hubstash import output
from hubstash.cli import common
from hubstash.config import CONFIG_NAME, Config, find_config
from hubstash.errors import ExitCode, UsageError
from hubstash.policy import ROLES, policy_for_url, render
from hubstash.settings import StoreFlags, s3_options, store_url
from hubstash.setup_store import InitResult, init_store

_NEXT_STEPS = """\
Next:
  name the repos you need under [[repo]] in {config} (or: hubstash add org/name)
  hubstash push      # upload them from this machine's cache
  hubstash lock      # pin them to commits and hashes in hubstash.lock
  git add {config} hubstash.lock && git commit -m "hubstash: known-good set"
"""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_init(commands)
    _add_policy(commands)


def _add_init(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "init",
        help="set up a store and write hubstash.toml naming it",
        description="Make a store ready: with --create-bucket, create its S3 bucket"
        " (private, public access blocked); write its format marker; write"
        " hubstash.toml in the working folder unless a configuration exists; print"
        " the IAM policies to use it and the next commands. Credentials are never"
        " asked for or written anywhere.",
    )
    common.add_common(p, cache=False)
    p.add_argument(
        "--create-bucket",
        action="store_true",
        help="create the s3:// store's bucket (in --region) when it does not exist",
    )
    p.set_defaults(run=_run_init)


def _add_policy(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "policy",
        help="print a least-privilege IAM policy for the store",
        description="Print the IAM policy (JSON) that lets a role use the s3:// store"
        " and nothing beyond its prefix. read (CI): s3:GetObject, and s3:ListBucket"
        " limited to the prefix; write (push) adds s3:PutObject,"
        " s3:AbortMultipartUpload, s3:ListMultipartUploadParts, and s3:DeleteObject"
        " on the push records under pending/; admin (prune, gc) adds s3:DeleteObject"
        " on the whole store.",
    )
    p.add_argument(
        "--store",
        metavar="URL",
        help="s3://bucket/prefix (default: $HUBSTASH_STORE, then hubstash.toml)",
    )
    p.add_argument("--role", choices=ROLES, default="read", help="default: read")
    p.add_argument("--config", metavar="FILE", help="hubstash.toml or pyproject.toml")
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=_run_policy)


def _run_policy(args: argparse.Namespace) -> int:
    url = store_url(StoreFlags(url=args.store), find_config(args.config))
    if not url:
        raise UsageError(
            "no store given",
            hint="pass --store s3://bucket/prefix, set HUBSTASH_STORE, or name it in"
            " hubstash.toml",
        )
    sys.stdout.write(render(policy_for_url(url, args.role)))
    print(f"hubstash: {args.role} policy for {url}", file=sys.stderr)
    return ExitCode.OK


def _run_init(args: argparse.Namespace) -> int:
    project, config_path = _project(args)
    settings = common.flags(args)
    url = store_url(settings, project)
    if not url:
        raise UsageError("no store given", hint="pass --store URL")
    result = init_store(
        url,
        s3_options(settings, project),
        config_path=config_path,
        create_bucket=args.create_bucket,
    )
    _report_init(args, result)
    return ExitCode.OK


def _project(args: argparse.Namespace) -> tuple[Config, Path]:
    """The configuration that applies here, and the file ``init`` writes or keeps."""
    if args.config and not Path(args.config).exists():
        return Config(), Path(args.config)
    project = common.config(args)
    return project, project.path or Path.cwd() / CONFIG_NAME


def _report_init(args: argparse.Namespace, result: InitResult) -> None:
    if args.json:
        print(output.to_json(result))
        return
    for line in _notices(result):
        print(f"hubstash: {line}", file=sys.stderr)
    for role, document in result.policies.items():
        print(f"# IAM policy for the {role} role (hubstash policy --role {role}):")
        sys.stdout.write(render(document))
    if not result.policies:
        print("# No IAM policy: protect this store with the permissions of its files.")
    print(_NEXT_STEPS.format(config=result.config_path.name), end="")


def _notices(result: InitResult) -> list[str]:
    lines = []
    if result.bucket_created:
        lines.append(f"created the bucket of {result.store} ({_access(result)})")
    elif result.bucket_created is False:
        lines.append(f"the bucket of {result.store} exists: left as it is")
    verb = "is ready" if result.marker_written else "was already a hubstash store"
    lines.append(f"{result.store} {verb}")
    written = "wrote" if result.config_written else "kept the existing"
    lines.append(f"{written} {result.config_path}")
    return lines


def _access(result: InitResult) -> str:
    if result.public_access_blocked:
        return "private, public access blocked"
    return "public access NOT blocked: the service cannot; check it is private"
