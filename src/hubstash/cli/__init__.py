"""The ``hubstash`` command: parses arguments, calls the library, prints results.

Nothing here decides what is pushed or restored; that is the library's job. This
package owns the exit codes (from ``ExitCode``), the one error handler, and where
output goes: data and summaries to stdout, progress, warnings and errors to stderr.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
from collections.abc import Sequence

from hubstash.cli import diagnose, locks, setup, transfers, upkeep
from hubstash.errors import ExitCode, HubstashError

logger = logging.getLogger("hubstash")

DESCRIPTION = """\
Keep Hugging Face Hub repos in your own store (a folder or S3) and restore them
into the Hub cache exactly: blobs, snapshot links, refs, every byte verified.

  hubstash push --store s3://bucket/hf       save what this machine's cache holds
  hubstash pull --store s3://bucket/hf       restore it anywhere
  hubstash verify                            is the local cache intact?
  hubstash add org/name                      add a repo to hubstash.toml (from the Hub)
  hubstash lock                              pin hubstash.toml's repos in hubstash.lock
  hubstash pull --locked                     restore exactly the lock (CI)

Exit codes: 0 done, 1 failed, 2 usage, 3 integrity (content does not match its
hash), 4 incomplete (something asked for is missing), 5 credentials or permission
denied, 6 store unreachable, 130 interrupted.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    _configure_logging(args.debug)
    try:
        code: int = args.run(args)
        return code
    except KeyboardInterrupt:
        print("hubstash: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except HubstashError as exc:
        logger.debug("failure", exc_info=True)
        return _fail(args, str(exc), exc.exit_code)
    except BrokenPipeError:
        # The reader went away (``hubstash ls | head``): nothing left to say.
        sys.stderr.close()
        return ExitCode.FAILURE
    except OSError as exc:
        logger.debug("failure", exc_info=True)
        return _fail(args, _describe_os_error(exc), _os_exit_code(exc))
    except Exception as exc:  # the one place that turns a bug into a clean exit
        logger.debug("unexpected failure", exc_info=True)
        print(
            f"hubstash: internal error: {exc!r} (rerun with --debug)", file=sys.stderr
        )
        return ExitCode.FAILURE


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    print(f"hubstash: error: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"error": message, "exit_code": int(code)}))
    return code


def _describe_os_error(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}:{where}"


def _os_exit_code(exc: OSError) -> ExitCode:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ExitCode.DENIED
    return ExitCode.FAILURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubstash",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    transfers.add_commands(commands)
    locks.add_commands(commands)
    setup.add_commands(commands)
    upkeep.add_commands(commands)
    diagnose.add_commands(commands)
    return parser


def _configure_logging(debug: bool) -> None:
    # Only hubstash's own logger: botocore's debug log would print signed headers.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hubstash: %(levelname)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False


def _version() -> str:
    from hubstash import __version__

    return f"hubstash {__version__}"
