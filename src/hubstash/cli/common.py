"""What every command shares: the store, cache and output options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hubstash import output
from hubstash.cache_location import resolve_cache_dir
from hubstash.config import Config, find_config
from hubstash.errors import UsageError
from hubstash.findings import Finding
from hubstash.progress import SILENT, Progress
from hubstash.settings import StoreFlags, s3_options, store_url
from hubstash.stores import Store, open_store
from hubstash.stores.s3options import MiB
from hubstash.transfer import DEFAULT_JOBS

REPO_HELP = (
    "repos as the Hub names them: org/name, or datasets/org/name, spaces/...,"
    " kernels/...; @REV limits to one branch, tag or commit (default: the repos of"
    " hubstash.toml, else all)"
)


def add_common(p: argparse.ArgumentParser, *, cache: bool = True) -> None:
    p.add_argument(
        "--store",
        metavar="URL",
        help="a folder, file://PATH or s3://bucket/prefix (default: $HUBSTASH_STORE,"
        " then hubstash.toml)",
    )
    if cache:
        p.add_argument(
            "--cache-dir",
            metavar="DIR",
            help="the Hub cache (default: found as huggingface_hub finds it); an"
            " HF_HOME means its hub/ folder",
        )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="hubstash.toml or pyproject.toml (default: $HUBSTASH_CONFIG, else the"
        " nearest one from the working folder up)",
    )
    p.add_argument(
        "--jobs",
        type=positive,
        default=DEFAULT_JOBS,
        metavar="N",
        help=f"concurrent transfers and hashes (default {DEFAULT_JOBS})",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--debug",
        action="store_true",
        help="show hubstash's log and tracebacks (never credentials)",
    )
    _add_s3(p)


def _add_s3(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("S3 stores (default: hubstash.toml's [store])")
    g.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="S3-compatible endpoint (default: $AWS_ENDPOINT_URL_S3 or"
        " $AWS_ENDPOINT_URL)",
    )
    g.add_argument("--region", help="the bucket's region")
    g.add_argument("--profile", help="a named AWS profile")
    g.add_argument(
        "--no-sign-request",
        action="store_true",
        default=None,
        help="anonymous requests, for public buckets",
    )
    g.add_argument(
        "--addressing-style",
        choices=("auto", "path", "virtual"),
        help="auto (default): path-style for custom endpoints, virtual for AWS",
    )
    g.add_argument("--ca-bundle", metavar="FILE", help="CA certificates for TLS")
    g.add_argument(
        "--sse",
        choices=("AES256", "aws:kms"),
        help="server-side encryption for buckets that demand it",
    )
    g.add_argument("--sse-kms-key-id", metavar="KEY", help="KMS key for --sse aws:kms")
    g.add_argument(
        "--part-size",
        type=positive,
        metavar="MIB",
        help="part size for large files (default 16 MiB)",
    )


def add_selection(p: argparse.ArgumentParser) -> None:
    add_patterns(p)
    p.add_argument(
        "--dry-run", action="store_true", help="say what would move, change nothing"
    )


def add_patterns(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="PATTERN",
        help="only files matching (huggingface_hub allow_patterns rules; repeatable)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="no files matching (repeatable)",
    )


def config(args: argparse.Namespace) -> Config:
    loaded: Config = find_config(args.config)
    return loaded


def flags(args: argparse.Namespace) -> StoreFlags:
    return StoreFlags(
        url=args.store,
        endpoint_url=args.endpoint_url,
        region=args.region,
        profile=args.profile,
        no_sign_request=args.no_sign_request,
        addressing_style=args.addressing_style,
        ca_bundle=args.ca_bundle,
        sse=args.sse,
        sse_kms_key_id=args.sse_kms_key_id,
        part_size=args.part_size * MiB if args.part_size else None,
        jobs=args.jobs,
    )


def has_store(args: argparse.Namespace) -> bool:
    return bool(store_url(flags(args), config(args)))


def open_configured_store(args: argparse.Namespace) -> Store:
    """The store the flags, environment or configuration name.

    Raises:
        UsageError: none of them names a store.
    """
    settings, project = flags(args), config(args)
    url = store_url(settings, project)
    if not url:
        raise UsageError(
            "no store given",
            hint="pass --store URL, set HUBSTASH_STORE, or name it in hubstash.toml",
        )
    return open_store(url, s3_options(settings, project))


def announce_cache(args: argparse.Namespace) -> None:
    location = resolve_cache_dir(args.cache_dir)
    print(f"hubstash: cache {location.path} ({location.reason})", file=sys.stderr)


def progress(args: argparse.Namespace) -> Progress:
    if args.json or not sys.stderr.isatty():
        return SILENT
    return output.BarProgress()


def report(
    args: argparse.Namespace,
    result: object,
    findings: Sequence[Finding],
    summary: str,
    code: int,
) -> int:
    for finding in findings:
        print(output.finding_line(finding), file=sys.stderr)
    print(output.to_json(result) if args.json else summary)
    return code


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value
