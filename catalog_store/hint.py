"""The "latest" hint (``_manifests/_latest``): its bytes, and what they prove.

Readers start their search for the newest version from the hint, so a stale or
lost hint costs a few probes and nothing else. A committer writes it only after
its manifest has landed, so a hint that reads back whole also proves that the
version it names was committed once: with no manifest there, newer than every
manifest in the store, the newest commits were deleted (by hand, by a partial
restore), and ``verify`` says so.

The hint is rewritten in place on a local disk, without a flush. So it has a fixed
width, and a checksum: a rewrite read half-done, or half-written at a crash, is a
hint that proves nothing (readers still start from the number, if any), never a
version that was not committed ("9" over "10" read "90" while the file was being
cut to length).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

_ATTESTED = re.compile(rb"([0-9]{20})\n([ \t]{32})", re.ASCII)
_PLAIN = re.compile(rb"\s*([0-9]+)\s*", re.ASCII)
_BITS = 32


@dataclass(frozen=True)
class LatestHint:
    """A version the hint names; ``attested`` when its checksum holds (see above)."""

    version: int
    attested: bool

    def proves_lost_after(self, version: int) -> bool:
        """Whether it proves commits after ``version``, the newest manifest a store
        holds, whose manifests are gone: it names a later one and reads whole."""
        return self.attested and self.version > version


def _check(digits: bytes) -> bytes:
    """The checksum of the digits as 32 spaces (0) and tabs (1), most significant
    bit first: whitespace, so that what reads a hint as ``int(text.strip())`` (every
    earlier fincat) reads the version, and never falls back to probing every one."""
    crc = zlib.crc32(b"fincat-latest " + digits)
    return bytes(9 if crc >> (_BITS - 1 - bit) & 1 else 32 for bit in range(_BITS))


def encode_hint(version: int) -> bytes:
    """The hint naming ``version``: always 53 bytes, for a rewrite in place."""
    digits = b"%020d" % version
    return digits + b"\n" + _check(digits)


def decode_hint(data: bytes) -> LatestHint | None:
    """The hint ``data`` holds; None if it names no version. A bare number (what
    stores written before the checksum hold) is a starting point, never proof."""
    attested = _ATTESTED.fullmatch(data)
    if attested is not None:
        digits, check = attested.groups()
        return LatestHint(int(digits), attested=check == _check(digits))
    plain = _PLAIN.fullmatch(data)
    return None if plain is None else LatestHint(int(plain.group(1)), attested=False)
