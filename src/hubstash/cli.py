"""The ``hubstash`` command: parses arguments, calls the library, prints results.

Nothing here decides what is pushed or restored; that is the library's job. This
module owns the exit codes (from ``ExitCode``), the one error handler, and where
output goes: data and summaries to stdout, progress, warnings and errors to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from hubstash import output
from hubstash.cache_location import resolve_cache_dir
from hubstash.errors import ExitCode, HubstashError, UsageError
from hubstash.findings import Finding
from hubstash.inventory import list_store
from hubstash.progress import SILENT, Progress
from hubstash.pull import pull
from hubstash.push import push
from hubstash.stores import S3Options, Store, open_store
from hubstash.stores.s3options import DEFAULT_PART_SIZE, MiB
from hubstash.transfer import DEFAULT_JOBS
from hubstash.verify import verify

logger = logging.getLogger("hubstash")

DESCRIPTION = """\
Keep Hugging Face Hub repos in your own store (a folder or S3) and restore them
into the Hub cache exactly: blobs, snapshot links, refs, every byte verified.

  hubstash push --store s3://bucket/hf       save what this machine's cache holds
  hubstash pull --store s3://bucket/hf       restore it anywhere
  hubstash verify                            is the local cache intact?

Exit codes: 0 done, 1 failed, 2 usage, 3 integrity (content does not match its
hash), 4 incomplete (something asked for is missing), 5 credentials or permission
denied, 6 store unreachable, 130 interrupted.
"""

REPO_HELP = (
    "repos as the Hub names them: org/name, or datasets/org/name, spaces/...,"
    " kernels/...; @REV limits to one branch, tag or commit"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.debug)
    try:
        code: int = args.run(args)
        return code
    except KeyboardInterrupt:
        print("hubstash: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except HubstashError as exc:
        logger.debug("failure", exc_info=True)
        print(f"hubstash: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # the one place that turns a bug into a clean exit
        logger.debug("unexpected failure", exc_info=True)
        print(
            f"hubstash: internal error: {exc!r} (rerun with --debug)", file=sys.stderr
        )
        return ExitCode.FAILURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubstash",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    _add_push(commands)
    _add_pull(commands)
    _add_verify(commands)
    _add_ls(commands)
    return parser


def _add_push(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "push",
        help="save repos of the local cache into a store",
        description="Upload repos of the local Hub cache (all of it when none are"
        " named) to a store. Each distinct content is checked against its name and"
        " uploaded once; refs the store has are never moved unless --force-refs.",
    )
    p.add_argument("repos", nargs="*", metavar="REPO[@REV]", help=REPO_HELP)
    _add_common(p, store_required=True)
    _add_selection(p)
    p.add_argument(
        "--force-refs",
        action="store_true",
        help="move refs the store already has to the cache's commits",
    )
    p.set_defaults(run=_run_push)


def _add_pull(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "pull",
        help="restore repos from a store into the local cache",
        description="Restore repos (all of the store when none are named) into the"
        " local Hub cache, exactly as the Hub client writes it. Every byte is"
        " verified before it is renamed into place; what the cache has is skipped.",
    )
    p.add_argument("repos", nargs="*", metavar="REPO[@REV]", help=REPO_HELP)
    _add_common(p, store_required=True)
    _add_selection(p)
    p.add_argument(
        "--copy",
        action="store_true",
        default=None,
        help="write real files in snapshots/ instead of links (for filesystems"
        " without symlinks; also chosen by HF_HUB_DISABLE_SYMLINKS=1)",
    )
    p.set_defaults(run=_run_pull)


def _add_verify(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "verify",
        help="check the local cache (and compare it with a store)",
        description="Hash every blob of the local cache against its name, check every"
        " snapshot link and ref; with --store, also report what the store has that"
        " the cache lacks. Writes nothing.",
    )
    p.add_argument("repos", nargs="*", metavar="REPO[@REV]", help=REPO_HELP)
    _add_common(p, store_required=False)
    p.set_defaults(run=_run_verify)


def _add_ls(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "ls",
        help="list what a store holds",
        description="List the repos of a store: revisions, refs, files and sizes.",
    )
    p.add_argument("repos", nargs="*", metavar="REPO", help=REPO_HELP)
    _add_common(p, store_required=True, cache=False)
    p.set_defaults(run=_run_ls)


def _add_common(
    p: argparse.ArgumentParser, *, store_required: bool, cache: bool = True
) -> None:
    p.add_argument(
        "--store",
        metavar="URL",
        help="a folder, file://PATH or s3://bucket/prefix (default: $HUBSTASH_STORE)",
    )
    if cache:
        p.add_argument(
            "--cache-dir",
            metavar="DIR",
            help="the Hub cache (default: found as huggingface_hub finds it); an"
            " HF_HOME means its hub/ folder",
        )
    p.add_argument(
        "--jobs",
        type=_positive,
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
    p.set_defaults(store_required=store_required)


def _add_s3(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("S3 stores")
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
        help="anonymous requests, for public buckets",
    )
    g.add_argument(
        "--addressing-style",
        choices=("auto", "path", "virtual"),
        default="auto",
        help="auto: path-style for custom endpoints, virtual for AWS",
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
        type=_positive,
        default=DEFAULT_PART_SIZE // MiB,
        metavar="MIB",
        help=f"part size for large files (default {DEFAULT_PART_SIZE // MiB} MiB)",
    )


def _add_selection(p: argparse.ArgumentParser) -> None:
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
    p.add_argument(
        "--dry-run", action="store_true", help="say what would move, change nothing"
    )


def _run_push(args: argparse.Namespace) -> int:
    store = _open_store(args)
    _announce_cache(args)
    result = push(
        store,
        args.cache_dir,
        args.repos,
        include=args.include,
        exclude=args.exclude,
        dry_run=args.dry_run,
        force_refs=args.force_refs,
        jobs=args.jobs,
        progress=_progress(args),
    )
    return _report(
        args, result, result.findings, output.push_summary(result), result.exit_code
    )


def _run_pull(args: argparse.Namespace) -> int:
    store = _open_store(args)
    _announce_cache(args)
    result = pull(
        store,
        args.cache_dir,
        args.repos,
        include=args.include,
        exclude=args.exclude,
        copy=args.copy,
        dry_run=args.dry_run,
        jobs=args.jobs,
        progress=_progress(args),
    )
    return _report(
        args, result, result.findings, output.pull_summary(result), result.exit_code
    )


def _run_verify(args: argparse.Namespace) -> int:
    store = _open_store(args) if _store_url(args) else None
    _announce_cache(args)
    result = verify(
        args.cache_dir,
        args.repos,
        store=store,
        jobs=args.jobs,
        progress=_progress(args),
    )
    return _report(
        args, result, result.findings, output.verify_summary(result), result.exit_code
    )


def _run_ls(args: argparse.Namespace) -> int:
    repos = list_store(_open_store(args), args.repos, jobs=args.jobs)
    if args.json:
        print(output.to_json({"repos": list(repos)}))
    else:
        print("\n".join(output.inventory_lines(repos)) or "the store holds no repos")
    return ExitCode.OK


def _report(
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


def _store_url(args: argparse.Namespace) -> str:
    url: str = args.store or os.environ.get("HUBSTASH_STORE", "")
    return url


def _open_store(args: argparse.Namespace) -> Store:
    url = _store_url(args)
    if not url:
        raise UsageError(
            "no store given", hint="pass --store URL or set HUBSTASH_STORE"
        )
    return open_store(url, _s3_options(args))


def _s3_options(args: argparse.Namespace) -> S3Options:
    endpoint = (
        args.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )
    if args.sse_kms_key_id and args.sse != "aws:kms":
        raise UsageError("--sse-kms-key-id needs --sse aws:kms")
    return S3Options(
        endpoint_url=endpoint,
        region=args.region,
        profile=args.profile,
        no_sign_request=args.no_sign_request,
        addressing_style=args.addressing_style,
        ca_bundle=args.ca_bundle,
        sse=args.sse,
        sse_kms_key_id=args.sse_kms_key_id,
        part_size=args.part_size * MiB,
        jobs=args.jobs,
    )


def _announce_cache(args: argparse.Namespace) -> None:
    location = resolve_cache_dir(args.cache_dir)
    print(f"hubstash: cache {location.path} ({location.reason})", file=sys.stderr)


def _progress(args: argparse.Namespace) -> Progress:
    if args.json or not sys.stderr.isatty():
        return SILENT
    return output.BarProgress()


def _configure_logging(debug: bool) -> None:
    # Only hubstash's own logger: botocore's debug log would print signed headers.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hubstash: %(levelname)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _version() -> str:
    from hubstash import __version__

    return f"hubstash {__version__}"


if __name__ == "__main__":
    sys.exit(main())
