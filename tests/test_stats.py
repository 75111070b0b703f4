"""stats counts a store exactly: objects, bytes, deduplication, cost, a full pull."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from hubstash import ExitCode, layout, push
from hubstash.cli import main
from hubstash.manifest import FileEntry, Manifest, TreeListing
from hubstash.repos import RepoId
from hubstash.stats import store_stats
from hubstash.stores import Store
from tests.support.caches import default_files, write_canonical_repo
from tests.support.fake_hub import HubFile
from tests.support.hashes import pseudo_random_bytes, sha256_hex
from tests.support.stores import StoreUnderTest

MODEL = RepoId("model", "acme/a")
DATASET = RepoId("dataset", "acme/b")
C1, C2, C3 = "1" * 40, "2" * 40, "3" * 40
# Contents by role, with sizes that make every sum recognisable.
X = pseudo_random_bytes("x", 1000)  # config.json of both model revisions
Y = pseudo_random_bytes("y", 2000)  # weights of C1, and twice in the dataset
Z = pseudo_random_bytes("z", 4000)  # weights of C2
TREE = pseudo_random_bytes("tree", 300)  # tree listing of C1
LOOSE = pseudo_random_bytes("loose", 500)  # named by no manifest
PRICE = 100_000.0  # dollars per GB: makes a few KB cost whole cents


def _entry(path: str, content: bytes) -> FileEntry:
    return FileEntry(path, sha256_hex(content), len(content), sha256_hex(content))


@dataclass(frozen=True)
class KnownStore:
    """A store written object by object, so that every count is known."""

    written: dict[str, bytes]

    @property
    def stored_bytes(self) -> int:
        return sum(len(data) for data in self.written.values())


def _write_known_store(backend: Store) -> KnownStore:
    """Two repos, three revisions: C1 in two pieces with a tree listing, C2 sharing
    C1's config, the dataset holding C1's weights under two paths; one blob loose."""
    pieces = [
        Manifest(MODEL, C1, (_entry("config.json", X),)),
        Manifest(
            MODEL, C1, (_entry("w.bin", Y),), (), TreeListing(sha256_hex(TREE), 300)
        ),
        Manifest(MODEL, C2, (_entry("config.json", X), _entry("w.bin", Z))),
        Manifest(DATASET, C3, (_entry("data.bin", Y), _entry("copy/data.bin", Y))),
    ]
    written = {layout.FORMAT_KEY: layout.format_marker()}
    written |= {layout.blob_key(sha256_hex(c)): c for c in (X, Y, Z, TREE, LOOSE)}
    written |= {
        layout.manifest_key(m.repo, m.commit, m.piece_name()): m.to_json()
        for m in pieces
    }
    written[layout.ref_key(MODEL, "main")] = C1.encode()
    written[layout.ref_key(MODEL, "v2")] = C2.encode()
    for key, data in written.items():
        backend.write(key, data)
    return KnownStore(written)


def test_stats_counts_a_known_store_exactly(store: StoreUnderTest) -> None:
    known = _write_known_store(store.open())

    stats = store_stats(store.open(), price_per_gb=PRICE)

    assert len(known.written) == 12
    assert (stats.objects, stats.stored_bytes) == (12, known.stored_bytes)
    assert (stats.blobs, stats.blob_bytes) == (5, 1000 + 2000 + 4000 + 300 + 500)
    assert (stats.repos, stats.revisions) == (2, 3)
    # C1: X + Y; C2: X + Z; C3: Y twice.
    assert stats.logical_bytes == (1000 + 2000) + (1000 + 4000) + (2000 + 2000)
    assert stats.unique_bytes == 1000 + 2000 + 4000
    assert stats.saved_bytes == 12000 - 7000
    # A pull of everything reads X, Y, Z and the tree listing, each once.
    assert (stats.pull_blobs, stats.pull_bytes) == (4, 7300)
    assert (stats.unreferenced_blobs, stats.unreferenced_bytes) == (1, 500)
    assert stats.monthly_cost == pytest.approx(known.stored_bytes / 1e9 * PRICE)


def test_stats_prints_every_number_of_a_known_store(
    store: StoreUnderTest, capsys: pytest.CaptureFixture[str]
) -> None:
    known = _write_known_store(store.open())
    stored = known.stored_bytes
    cost = stored / 1e9 * PRICE

    code = main(["stats", *store.cli_args(), "--price-per-gb", "100000"])

    assert code == ExitCode.OK
    assert capsys.readouterr().out.splitlines() == [
        f"store          {store.open().url}",
        f"objects        12, {stored:,} bytes ({stored / 1024:.1f} KiB)",
        "blobs          5, 7,800 bytes (7.6 KiB)",
        "repos          2 repos, 3 revisions",
        "logical size   12,000 bytes (11.7 KiB): every revision's files, as a copy"
        " that follows links stores them",
        "deduplication  saves 5,000 bytes (4.9 KiB), 41.7% of the logical size:"
        " distinct contents are 7,000 bytes (6.8 KiB)",
        f"monthly cost   ${cost:.2f} at $100000 per GB",
        "full pull      4 blobs, 7,300 bytes (7.1 KiB)",
        "unreferenced   1 blob, 500 bytes (hubstash gc deletes them)",
    ]


def test_stats_json_carries_every_number(
    store: StoreUnderTest, capsys: pytest.CaptureFixture[str]
) -> None:
    known = _write_known_store(store.open())

    code = main(["stats", *store.cli_args(), "--json"])

    document = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK
    assert document == {
        "store": store.open().url,
        "objects": 12,
        "stored_bytes": known.stored_bytes,
        "blobs": 5,
        "blob_bytes": 7800,
        "repos": 2,
        "revisions": 3,
        "logical_bytes": 12000,
        "unique_bytes": 7000,
        "saved_bytes": 5000,
        "pull_blobs": 4,
        "pull_bytes": 7300,
        "unreferenced_blobs": 1,
        "unreferenced_bytes": 500,
        "price_per_gb": 0.023,
        "monthly_cost": pytest.approx(known.stored_bytes / 1e9 * 0.023),
    }


def test_stats_of_a_push_count_shared_content_once(
    store: StoreUnderTest, tmp_path: Path
) -> None:
    shared = HubFile("model.safetensors", pseudo_random_bytes("shared", 64 * 1024))
    write_canonical_repo(
        tmp_path / "hub", "acme/one", [*default_files("1")[:1], shared]
    )
    write_canonical_repo(tmp_path / "hub", "acme/two", [shared])
    push(store.open(), tmp_path / "hub")

    stats = store_stats(store.open())

    config = len(default_files("1")[0].content)
    assert stats.logical_bytes == config + 2 * len(shared.content)
    assert stats.saved_bytes == len(shared.content)
    assert stats.pull_bytes == stats.blob_bytes == config + len(shared.content)
    assert stats.unreferenced_blobs == 0


def test_stats_of_a_folder_that_is_no_store_is_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()

    code = main(["stats", "--store", str(tmp_path / "empty")])

    assert code == ExitCode.INCOMPLETE
    assert "not a hubstash store" in capsys.readouterr().err
