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

_ATTESTED = re.compile(rb"([0-9]{20}) ([0-9a-f]{8})\n?", re.ASCII)
_PLAIN = re.compile(rb"\s*([0-9]+)\s*", re.ASCII)


@dataclass(frozen=True)
class LatestHint:
    """A version the hint names; ``attested`` when its checksum holds (see above)."""

    version: int
    attested: bool


def _check(digits: bytes) -> bytes:
    return b"%08x" % zlib.crc32(b"fincat-latest " + digits)


def encode_hint(version: int) -> bytes:
    """The hint naming ``version``: always 30 bytes, for a rewrite in place."""
    digits = b"%020d" % version
    return digits + b" " + _check(digits) + b"\n"


def decode_hint(data: bytes) -> LatestHint | None:
    """The hint ``data`` holds; None if it names no version. A bare number (what
    stores written before the checksum hold) is a starting point, never proof."""
    attested = _ATTESTED.fullmatch(data)
    if attested is not None:
        digits, check = attested.groups()
        return LatestHint(int(digits), attested=check == _check(digits))
    plain = _PLAIN.fullmatch(data)
    return None if plain is None else LatestHint(int(plain.group(1)), attested=False)
