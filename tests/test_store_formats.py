"""Stores in formats other than the one this fincat writes: what it reads of them,
and that what it cannot read is refused as a format, never taken for damage, which
repair would "mend" by restoring an older version and gc then make final."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from catalog_store import Catalog
from catalog_store.cli._app import EXIT_ERROR
from catalog_store.errors import FormatError
from catalog_store.keys import checksum, manifest_key
from catalog_store.records import ShardRecords, decode_manifest, encode_manifest
from tests.cli.helpers import cli, fails
from tests.test_maintenance import assert_whole, data_files, three_versions_of_gdp


def reseal(data: bytes) -> bytes:
    """A manifest's bytes with its checksum made to hold again, as its writer seals it."""
    body = data[: data.rindex(b'"checksum":"')] + b'"checksum":""}'
    return body[:-2] + checksum(body).encode() + b'"}'


@pytest.mark.parametrize("other", ["fincat-manifest/5", "fincat-manifest/1"])
def test_a_manifest_in_a_format_this_fincat_does_not_read_is_refused_not_repaired(
    tmp_path: Path, other: str
) -> None:
    """A newer fincat's commit (after a rollback of the image) or an older one's: read
    as damage, repair restored the version below it and gc deleted what it named."""
    root = tmp_path / "store"
    files = three_versions_of_gdp(root)
    newest = root / manifest_key(3)
    written = newest.read_bytes()
    form = decode_manifest(written, "newest").format
    newest.write_bytes(reseal(written.replace(form.encode(), other.encode())))
    with pytest.raises(FormatError, match=f"{other}.*does not read"):
        Catalog.open(str(root))
    for command in (["verify"], ["repair"], ["gc", "--grace-hours", "0"]):
        stderr = fails(cli("--root", str(root), *command), EXIT_ERROR, "does not read")
        assert "damage" not in stderr, stderr
    assert data_files(root) == files
    newest.write_bytes(written)
    assert_whole(root, files)


def test_a_format_digit_damaged_in_place_is_damage_not_another_format(tmp_path: Path) -> None:
    """A flipped bit in the format's digit, the seal left as it was: damage, which
    repair mends; taken for another fincat's format, it stopped verify and repair."""
    root = tmp_path / "store"
    files = three_versions_of_gdp(root)
    newest = root / manifest_key(3)
    written = newest.read_bytes()
    form = decode_manifest(written, "newest").format
    newest.write_bytes(written.replace(form.encode(), b"fincat-manifest/1"))
    cat = Catalog.open(str(root))
    assert [p.kind for p in cat.verify().problems] == ["bad_manifest"]
    assert cat.repair().healthy_version == 2
    cat.close()
    assert set(files) <= set(data_files(root))


def swap_the_shard(root: Path, encode: Callable[[list[msgspec.Raw]], bytes]) -> None:
    """Put the records of the newest version's one metadata shard, as ``encode``
    writes them, in a shard of their own, and the newest manifest's seal on it."""
    newest = root / manifest_key(3)
    manifest = decode_manifest(newest.read_bytes(), "newest")
    shards = list(manifest.shards)
    (index,) = [i for i, ref in enumerate(shards) if ref is not None]
    ref = shards[index]
    assert ref is not None
    _ids, raws = ShardRecords.decode((root / ref.path).read_bytes(), ref.path).encoded()
    data = encode(raws)
    path = ref.path.replace(".msgpack", "-swapped.msgpack")
    (root / path).write_bytes(data)
    shards[index] = msgspec.structs.replace(ref, path=path, size=len(data), sha256=checksum(data))
    newest.write_bytes(encode_manifest(msgspec.structs.replace(manifest, shards=shards)))


def test_a_shard_in_the_first_encoding_of_format_2_is_read(tmp_path: Path) -> None:
    """Format 2's first builds wrote a shard as its records alone, each naming its id;
    read as damage, repair rolled such a store back to empty and gc deleted its files."""
    root = tmp_path / "store"
    files = three_versions_of_gdp(root)
    swap_the_shard(root, msgspec.msgpack.encode)
    assert_whole(root, files)
    cat = Catalog.open(str(root))
    cat.write("GDP", ([dt.date(2000, 4, 1)], [2.0]))  # a new shard, in today's encoding
    assert cat.read("GDP")["value"].to_pylist() == [1.5, 2.0]
    assert cat.verify().ok
    cat.close()


def test_a_shard_whose_bytes_are_whole_but_unreadable_is_a_format_error(tmp_path: Path) -> None:
    root = tmp_path / "store"
    files = three_versions_of_gdp(root)
    swap_the_shard(root, lambda _raws: msgspec.msgpack.encode({"a later": "encoding"}))
    cat = Catalog.open(str(root))
    for call in (lambda: cat.get("GDP"), cat.verify, cat.repair):
        with pytest.raises(FormatError, match="checksum holds"):
            call()
    cat.close()
    assert data_files(root) == files
