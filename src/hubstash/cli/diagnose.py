"""doctor and import: finding out what is wrong, and adopting old sync copies."""

from __future__ import annotations

import argparse

from hubstash import output
from hubstash.cli import common
from hubstash.doctor import DoctorResult, Status, doctor
from hubstash.importing import ImportResult, import_copy
from hubstash.settings import s3_options

_INDENT = " " * 18


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_doctor(commands)
    _add_import(commands)


def _add_doctor(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "doctor",
        help="explain what is wrong: cache folder, store, permissions, leaked tokens",
        description="Check, one line each with the next step: which cache folder is"
        " used and why, the offline variables, the configuration, the store (its"
        " endpoint, credentials, format, and which permissions work), and every"
        " object of the store for leaked Hugging Face tokens (named by key, never"
        " shown). Reads only, unless --check-write. Exit code: 0 when nothing"
        " failed, else the code of the most basic failure.",
    )
    common.add_common(p)
    p.add_argument(
        "--check-write",
        action="store_true",
        help="also write and read back one small object, doctor/write-check (the"
        " same key every time, so checks never add objects)",
    )
    p.set_defaults(run=_run_doctor)


def _add_import(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "import",
        help="adopt a copy of a Hugging Face cache made by aws s3 sync",
        description="Import a copy of ~/.cache/huggingface (or of its hub/ folder)"
        " made by aws s3 sync or cp -rL, from s3://bucket/prefix/ or a folder, into"
        " the store: each distinct content once, checked against its blob name,"
        " manifests and refs rebuilt as a push of the original cache would. Locks,"
        " partial downloads, hf_xet caches and tokens are left behind; every token"
        " file is named, never copied, never shown.",
    )
    p.add_argument(
        "source",
        metavar="SRC",
        help="s3://bucket/prefix/ or a folder: a copy of ~/.cache/huggingface or of"
        " its hub/ folder",
    )
    common.add_common(p, cache=False)
    p.add_argument(
        "--work-dir",
        metavar="DIR",
        help="where an S3 source is downloaded before it is imported (default: the"
        " system's temporary folder); removed afterwards",
    )
    p.set_defaults(run=_run_import)


def _run_doctor(args: argparse.Namespace) -> int:
    result = doctor(
        common.flags(args),
        args.cache_dir,
        config_file=args.config,
        check_write=args.check_write,
    )
    print(output.to_json(result) if args.json else "\n".join(doctor_lines(result)))
    return result.exit_code


def doctor_lines(result: DoctorResult) -> list[str]:
    """One line per check; the next step under warnings and failures."""
    lines = []
    for check in result.checks:
        lines.append(f"{check.status.name:<5} {check.name:<12} {check.message}")
        if check.name == "secrets":
            lines += [f"{_INDENT}{leak.key} {leak.reason}" for leak in result.leaks]
        if check.hint and check.status in (Status.WARN, Status.FAIL):
            lines.append(f"{_INDENT}next: {check.hint}")
    failed = sum(c.status is Status.FAIL for c in result.checks)
    verdict = "nothing failed" if not failed else output.plural(failed, "failure")
    lines.append(f"doctor: {verdict} (exit {int(result.exit_code)})")
    return lines


def _run_import(args: argparse.Namespace) -> int:
    store = common.open_configured_store(args)
    options = s3_options(common.flags(args), common.config(args))
    result = import_copy(
        store,
        args.source,
        options=options,
        work_dir=args.work_dir,
        jobs=args.jobs,
        progress=common.progress(args),
    )
    summary = import_summary(result)
    return common.report(args, result, result.findings, summary, result.exit_code)


def import_summary(result: ImportResult) -> str:
    pushed = result.pushed
    what = (
        f"{output.plural(pushed.repos, 'repo')},"
        f" {output.plural(pushed.revisions, 'revision')},"
        f" {output.plural(pushed.files, 'file')}"
    )
    left = ", ".join(
        f"{output.plural(part.files, part.kind + ' file')} ({output.size(part.bytes)})"
        for part in result.left_behind
    )
    return (
        f"imported {what} from {result.source}: the source holds"
        f" {output.size(result.source_bytes)} in"
        f" {output.plural(result.source_files, 'file')}, the store holds"
        f" {output.size(result.stored_bytes)} for it (uploaded"
        f" {output.plural(pushed.uploaded_files, 'blob')},"
        f" {output.size(pushed.uploaded_bytes)});"
        f" left behind: {left or 'nothing'} [{result.seconds:.1f} s]"
    )
