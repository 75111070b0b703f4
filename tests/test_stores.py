"""The contract every store backend keeps, checked against a folder and S3 (moto)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hubstash.errors import NotFound
from hubstash.transfer import VerifyingSink
from tests.support.hashes import sha256_hex
from tests.support.stores import StoreUnderTest

MiB = 1024 * 1024


def test_small_objects_round_trip(store: StoreUnderTest) -> None:
    backend = store.open()

    backend.write("repos/models--a--b/refs/main", b"c" * 40)
    backend.write("repos/models--a--b/refs/main", b"d" * 40)

    assert backend.read("repos/models--a--b/refs/main") == b"d" * 40


def test_missing_object_is_not_found(store: StoreUnderTest) -> None:
    backend = store.open()

    with pytest.raises(NotFound):
        backend.read("repos/nothing")
    assert backend.read_optional("repos/nothing") is None


def test_listing_is_complete_and_scoped_to_the_prefix(store: StoreUnderTest) -> None:
    backend = store.open()
    keys = [f"repos/r/refs/b{i:03d}" for i in range(30)] + ["blobs/sha256/aa/x"]
    for key in keys:
        backend.write(key, key.encode())

    listed = {o.key: o.size for o in backend.listing("repos/")}

    assert listed == {k: len(k) for k in keys if k.startswith("repos/")}


# The largest size goes up in two parts (S3's smallest part is 5 MiB) and comes
# down in many ranged reads.
@pytest.mark.parametrize("size", [0, 1000, 5 * MiB + 17])
def test_upload_and_download_keep_every_byte(
    store: StoreUnderTest, tmp_path: Path, size: int
) -> None:
    backend = store.open()
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(size))
    progressed: list[int] = []

    backend.upload("blobs/sha256/xx/obj", source, size, progressed.append)
    with open(tmp_path / "copy.bin", "w+b") as f:
        sink = VerifyingSink(f, size, git_sha1=False)
        backend.download("blobs/sha256/xx/obj", sink, size, progressed.append)
        digests = sink.digests()

    assert digests.sha256 == sha256_hex(source.read_bytes())
    assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()
    assert sum(progressed) == 2 * size


def test_multipart_upload_leaves_one_whole_object(
    store: StoreUnderTest, tmp_path: Path
) -> None:
    backend = store.open()
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(5 * MiB + 5))

    backend.upload("blobs/sha256/yy/big", source, source.stat().st_size, lambda _: None)

    assert [o.size for o in backend.listing("blobs/")] == [5 * MiB + 5]
    assert b"".join(backend.read_stream("blobs/sha256/yy/big")) == source.read_bytes()


def test_folder_store_lists_no_temporary_files(tmp_path: Path) -> None:
    from hubstash.stores import FolderStore

    backend = FolderStore(tmp_path)
    (tmp_path / "repos").mkdir()
    (tmp_path / "repos" / ".hubstash-tmp-main.1234abcd").write_bytes(b"partial")
    backend.write("repos/main", b"whole")

    assert [o.key for o in backend.listing("repos/")] == ["repos/main"]
