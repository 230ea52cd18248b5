"""The retention floor: the oldest version kept once gc has expired history.

``_manifests/_floor`` records it. gc writes it before deleting the manifests below
it, never deletes the floor version's own manifest, and writes only a higher
number. Yet a plain overwrite can come back lower: a gc's floor write that
outlived its deadline (a request the store had received) may land after a later
gc raised the floor and deleted the manifests up to it, and object storage has no
conditional overwrite to refuse it. So the recorded floor is a lower bound: where
its manifest is gone, the floor is the lowest version above it whose manifest is
there, found here, and the next gc records it again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from catalog_store import keys
from catalog_store.errors import IntegrityError, ObjectNotFoundError
from catalog_store.storage.base import ObjectInfo


def parse_floor(data: bytes) -> int:
    """The floor ``_manifests/_floor`` holds; IntegrityError if it holds no number."""
    try:
        text = data.decode().strip()
        if not (text.isascii() and text.isdigit()):  # "-2", "+3", "1_0", "٣"
            raise ValueError(text)
        return int(text)
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError(
            f"{keys.RETENTION_FLOOR} is not a version number: write the oldest version "
            "kept into it (docs/storage-format.md, Retention floor)"
        ) from None


async def kept_from(
    recorded: int,
    exists: Callable[[int], Awaitable[bool]],
    newest: int | None,
    manifests: Callable[[], AsyncIterator[ObjectInfo]],
) -> int:
    """The oldest version kept, given the ``recorded`` floor: it, unless its manifest
    is gone; then the lowest version above it with a manifest, by bisection below
    ``newest`` (a version known to be there) or else from a listing. Versions from
    the floor on are numbered without gaps, so those present are one run. Where
    none is present, ``recorded`` (a damaged store, which reads report)."""
    if recorded == 0 or await exists(recorded):
        return recorded
    if newest is not None and newest > recorded and await exists(newest):
        absent, present = recorded, newest
        while present - absent > 1:
            middle = (absent + present) // 2
            if await exists(middle):
                present = middle
            else:
                absent = middle
        return present
    above = [
        version
        async for info in manifests()
        if (version := keys.manifest_version(info.key)) is not None and version > recorded
    ]
    return min(above, default=recorded)


async def read_recorded(get: Callable[[str], Awaitable[bytes]]) -> int:
    """The floor as ``_manifests/_floor`` records it (0 where there is none)."""
    try:
        return parse_floor(await get(keys.RETENTION_FLOOR))
    except ObjectNotFoundError:
        return 0
