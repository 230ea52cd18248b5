"""Directory entries of a local store, made durable.

A name flushed in its directory (the file's fdatasync, then the directory's fsync)
is lost with that directory if the directory's own entry is: a series' first data
file goes into a directory made for it. POSIX asks for the parent's fsync too.

On ext4, XFS and btrfs the directory's own fsync already makes its entry durable:
ext4 commits the whole journal transaction that made it (and, without a journal,
flushes a new inode's parents), XFS forces its log up to the transaction that
created it, parent and all, and btrfs logs a new directory's new ancestors. The
parent's fsync then costs a device cache flush for nothing, a quarter of a
millisecond on every first write of a series here; so it is made only elsewhere
(NFS, overlay, FUSE, filesystems this module does not know).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: Filesystems whose fsync of a new directory also makes its entry durable.
ORDERING_FILESYSTEMS = frozenset(("ext4", "xfs", "btrfs"))
_MOUNTINFO = Path("/proc/self/mountinfo")
_OCTAL = re.compile(r"\\([0-7]{3})")


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ordered_by_journal(path: Path) -> bool:
    """Whether ``path`` (or, if it is not there yet, its nearest ancestor that is)
    lies on a filesystem of :data:`ORDERING_FILESYSTEMS`. False where that cannot
    be told (no /proc): the parents are flushed then."""
    try:
        # Mount points are raw bytes there, escaped only for whitespace and "\\".
        mountinfo = _MOUNTINFO.read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return False
    while not path.exists() and path != path.parent:
        path = path.parent
    return filesystem_of(path.resolve(), mountinfo) in ORDERING_FILESYSTEMS


def filesystem_of(path: Path, mountinfo: str) -> str | None:
    """The type of the filesystem mounted deepest above ``path`` (the last mounted,
    where several are stacked on one point), from the text of /proc/self/mountinfo
    (mount point 5th, type after the " - " separator)."""
    found, depth = None, -1
    for line in mountinfo.splitlines():
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 5 or not rest:
            continue
        # Spaces, tabs and backslashes in a mount point are written as octal escapes.
        point = Path(_OCTAL.sub(lambda m: chr(int(m.group(1), 8)), parts[4]))
        # ">=": of mounts stacked on one point, the last listed is the one seen.
        if (path == point or point in path.parents) and len(point.parts) >= depth:
            found, depth = rest.split()[0], len(point.parts)
    return found


class NewDirectories:
    """Directories a store made whose entries in their parents may not be on disk
    yet. Unless the filesystem orders them (see the module), each made directory's
    parent is flushed, deepest first, before a write into it counts as durable.
    Kept until flushed, so that a write that failed before the flush leaves it to
    the next write into that directory."""

    def __init__(self, ordered: bool) -> None:
        #: Whether the filesystem makes a new directory's entry durable with it.
        self.ordered = ordered
        self._made: set[Path] = set()

    def make(self, directory: Path) -> None:
        missing = []
        while not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for made in reversed(missing):
            # One another writer made a moment ago may not be flushed yet either.
            made.mkdir(exist_ok=True)
            if not self.ordered:
                self._made.add(made)

    def flush(self, directory: Path) -> None:
        """Flush the entries of ``directory`` and of its ancestors, while made here."""
        while directory in self._made:
            fsync_dir(directory.parent)
            self._made.discard(directory)
            directory = directory.parent
