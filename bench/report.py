"""Medians over repeats, the printed table and the JSON file."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

from bench.bucket import PrefixUsage
from bench.procs import Measured
from bench.treecheck import RestoreCheck, TreeStats

PHASES = ("cold upload", "no-op upload", "cold download", "no-op download")
REFERENCE_CLIENT = "hubstash"

# Server CPU at or above this share of the wall time means the server, not the
# client, set the pace (localbucket and moto each run in one Python process).
SERVER_BOUND_SHARE = 0.8

MB = 1_000_000
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True)
class PhaseResult:
    """One phase of one client in one repeat."""

    client: str
    phase: str
    repeat: int
    run: Measured
    bucket: PrefixUsage | None  # after upload phases
    restore: RestoreCheck | None  # after download phases


@dataclass(frozen=True)
class Summary:
    """The median of each figure over the repeats of one client and phase."""

    client: str
    phase: str
    runs: int
    wall_s: float
    cpu_s: float
    server_cpu_s: float
    peak_rss_mib: float
    listen_drops: int  # the most dropped connection attempts in one repeat
    bucket: PrefixUsage | None  # from the last repeat
    restore: RestoreCheck | None  # from the last repeat
    server_bound: bool  # the server's CPU time came close to the wall time


def summarize(results: Sequence[PhaseResult]) -> list[Summary]:
    """Medians per client and phase over the successful runs, in run order."""
    keys = dict.fromkeys((r.client, r.phase) for r in results if r.run.ok)
    return [_summary(client, phase, results) for client, phase in keys]


def _summary(client: str, phase: str, results: Sequence[PhaseResult]) -> Summary:
    runs = [r for r in results if (r.client, r.phase) == (client, phase) and r.run.ok]
    wall = statistics.median(r.run.wall_s for r in runs)
    server_cpu = statistics.median(r.run.server_cpu_s for r in runs)
    return Summary(
        client=client,
        phase=phase,
        runs=len(runs),
        wall_s=wall,
        cpu_s=statistics.median(r.run.cpu_s for r in runs),
        server_cpu_s=server_cpu,
        peak_rss_mib=statistics.median(r.run.peak_rss_mib for r in runs),
        listen_drops=max(r.run.listen_drops for r in runs),
        bucket=runs[-1].bucket,
        restore=runs[-1].restore,
        server_bound=server_cpu >= SERVER_BOUND_SHARE * wall,
    )


def render_table(summaries: Sequence[Summary]) -> str:
    """The main table: one row per client and phase."""
    reference = {s.phase: s.wall_s for s in summaries if s.client == REFERENCE_CLIENT}
    header = (
        f"{'client':<9}{'phase':<15}{'wall s':>8}{'vs hub':>9}{'cpu s':>8}"
        f"{'srv cpu s':>11}{'rss MiB':>9}{'drops':>7}{'bucket MB':>11}"
        f"{'restored MB':>13}  restore check"
    )
    rows = [_row(s, reference.get(s.phase)) for s in summaries]
    notes = _notes(summaries, reference)
    return "\n".join([header, "-" * len(header), *rows, *notes])


def _row(s: Summary, reference_wall: float | None) -> str:
    ratio = f"{s.wall_s / reference_wall:.2f}{TIMES}" if reference_wall else "—"
    bound = "*" if s.server_bound else " "
    bucket = f"{s.bucket.bytes / MB:.1f}" if s.bucket else ""
    restored = f"{s.restore.disk_bytes / MB:.1f}" if s.restore else ""
    check = s.restore.verdict if s.restore else ""
    drops = str(s.listen_drops) if s.listen_drops else ""
    return (
        f"{s.client:<9}{s.phase:<15}{s.wall_s:>8.2f}{ratio:>9}{s.cpu_s:>8.2f}"
        f"{s.server_cpu_s:>10.2f}{bound}{s.peak_rss_mib:>9.0f}{drops:>7}"
        f"{bucket:>11}{restored:>13}  {check}"
    )


def _notes(summaries: Sequence[Summary], reference: dict[str, float]) -> list[str]:
    notes = [""]
    if any(s.server_bound for s in summaries):
        notes.append(
            f"* server CPU ≥ {SERVER_BOUND_SHARE:.0%} of wall time: the server set "
            "the pace (server-bound)."
        )
    if any(s.listen_drops for s in summaries):
        notes.append(
            "drops: connection attempts the kernel dropped on a full listen queue "
            "(system-wide, worst repeat); a dropped attempt can leave the client "
            "waiting 1 s, 3 s, 7 s... for retransmits, using no CPU."
        )
    notes += _locked_notes(summaries)
    if not reference:
        notes.append("vs hub: no hubstash figures, so no ratios.")
    else:
        notes.append("vs hub: this client's wall time / hubstash's, same phase.")
    return notes


def _locked_notes(summaries: Sequence[Summary]) -> list[str]:
    """The locked no-op pull, hubstash's CI path, against the others' no-op pulls."""
    locked = [s for s in summaries if s.phase == "locked no-op"]
    if not locked:
        return []
    wall = locked[0].wall_s
    others = [
        s
        for s in summaries
        if s.phase == "no-op download" and s.client != REFERENCE_CLIENT
    ]
    ratios = ", ".join(f"{s.client} {s.wall_s / wall:.2f}{TIMES}" for s in others)
    return [
        f"locked no-op: hubstash pull --locked on a complete cache took {wall:.2f} s"
        f" wall; the others' no-op download / that: {ratios or 'no others ran'}."
    ]


def render_restore_details(summaries: Sequence[Summary]) -> str:
    """What each client's restore kept, after its cold download."""
    lines = [
        f"{'client':<9}{'links kept':>12}{'as copies':>11}{'missing':>9}"
        f"{'wrong':>7}{'extra':>7}{'mtimes kept':>13}{'modes kept':>12}"
    ]
    for s in summaries:
        if s.phase != "cold download" or s.restore is None:
            continue
        r = s.restore
        lines.append(
            f"{s.client:<9}{f'{r.links_kept}/{r.links_total}':>12}"
            f"{r.links_as_copies:>11}{r.missing:>9}{r.wrong_content:>7}{r.extra:>7}"
            f"{f'{r.mtimes_kept}/{r.files_total}':>13}"
            f"{f'{r.modes_kept}/{r.files_total}':>12}"
        )
        lines.extend(f"{'':<9}  {example}" for example in r.examples)
    return "\n".join(lines)


def render_cache_line(stats: TreeStats) -> str:
    return (
        f"cache: {stats.disk_bytes / MB:.1f} MB on disk, {stats.files} files "
        f"({stats.unique_bytes / MB:.1f} MB of distinct content), {stats.links} "
        f"snapshot links, {stats.followed_bytes / MB:.1f} MB with links followed"
    )


def write_json(folder: Path, name: str, payload: object) -> Path:
    """Write ``payload`` (dataclasses allowed) to ``folder/name``; returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(payload, indent=2, default=_plain) + "\n")
    return path


def _plain(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)
