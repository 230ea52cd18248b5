"""Empty files created ahead of use, with no name, for a local store's next creates.

Creating an inode can cost more than writing and flushing a small file: on the
test machine 0.64-0.69 ms of kernel CPU on some days, paid on the commit's path
when a manifest's temp file was created there (docs/architecture.md, "The local
commit", has the measurements). So a :class:`~catalog_store.storage.local.LocalStore`
keeps a few empty unnamed files (Linux ``O_TMPFILE``), made by one background
thread per process without any flush; a create writes its bytes into the oldest,
flushes them, and links it under its name through ``/proc/self/fd``. Nothing is
flushed ahead, so no commit waits for the thread's writes, and the files have no
names, so a crash or a failed write leaves nothing behind.

Where the kernel, the filesystem or ``/proc`` offers no unnamed files, or the
store's root is not writable, ``take`` answers None and the store writes a named
temp file as before. The files are made in the store's root, so they take its
group (set-group-id), default ACL and security label, not those of the directory
they are linked into."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import threading
import weakref
from pathlib import Path

log = logging.getLogger(__name__)

#: Unnamed files kept ready per store: a commit takes one for its manifest and,
#: when it writes objects, one for each of those.
SPARE_FILES = 4
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
# What open(O_TMPFILE) answers where the filesystem or kernel has no unnamed files,
# or the store's root is not writable (its subdirectories may be).
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.EACCES, errno.EPERM}


#: Every pool of this process, for a forked child to empty (_after_fork_in_child).
_pools: weakref.WeakSet[UnnamedFiles] = weakref.WeakSet()


def _close_all(fds: list[int]) -> None:
    while fds:
        with contextlib.suppress(OSError):
            os.close(fds.pop())


class UnnamedFiles:
    """Up to :data:`SPARE_FILES` empty unnamed files in ``directory``, refilled in the
    background; thread-safe. Each descriptor :meth:`take` returns is the caller's to
    write, link and close."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fds: list[int] = []
        self._lock = threading.Lock()
        self._usable = bool(_O_TMPFILE) and os.path.isdir("/proc/self/fd")
        self._refilling = False
        self._closed = False
        # A store dropped without close() still gives its descriptors back (no
        # thread can be using them then: the refill thread holds a pool it fills).
        weakref.finalize(self, _close_all, self._fds)
        _pools.add(self)

    def take(self) -> int | None:
        """An empty unnamed file's descriptor, or None when none is ready (the
        caller writes a named temp file); asks for more either way."""
        if not self._usable:
            return None
        with self._lock:
            fd = self._fds.pop(0) if self._fds else None
            refill = not (self._refilling or self._closed)
            self._refilling = self._refilling or refill
        if refill:
            try:
                _refiller().put(self)
            except RuntimeError:  # no thread to be had (a thread limit): try next time
                with self._lock:
                    self._refilling = False
        return fd

    def unusable(self) -> None:
        """Stop offering unnamed files: they could not be named here."""
        self._usable = False
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            _close_all(self._fds)

    def _forget_inherited(self) -> None:
        """In a forked child: these files are shared with the parent, and using one
        would write into the parent's next manifest. The lock may have been copied
        held by a thread the child does not have."""
        self._lock = threading.Lock()
        self._refilling = False
        _close_all(self._fds)

    def fill(self) -> None:
        """Create files until :data:`SPARE_FILES` are ready (the refill thread's job)."""
        try:
            while True:
                with self._lock:
                    if self._closed or len(self._fds) >= SPARE_FILES:
                        return
                try:
                    fd = os.open(self.directory, os.O_WRONLY | _O_TMPFILE, 0o644)
                except OSError as exc:
                    if exc.errno in _UNSUPPORTED:
                        self._usable = False
                    return  # the directory may not exist yet: the next take asks again
                with self._lock:
                    if self._closed:
                        os.close(fd)
                        return
                    self._fds.append(fd)
        finally:
            with self._lock:
                self._refilling = False


_refill_queue: queue.SimpleQueue[UnnamedFiles] | None = None
_refill_start = threading.Lock()


def _refiller() -> queue.SimpleQueue[UnnamedFiles]:
    """The queue of this process's one refill thread, started on first use."""
    global _refill_queue
    with _refill_start:
        if _refill_queue is None:
            requests: queue.SimpleQueue[UnnamedFiles] = queue.SimpleQueue()
            threading.Thread(
                target=_refill_forever, args=(requests,), name="fincat-unnamed-files", daemon=True
            ).start()
            _refill_queue = requests
        return _refill_queue


def _after_fork_in_child() -> None:
    # The child has no refill thread, and every pool's files are its parent's too.
    global _refill_queue, _refill_start
    _refill_queue, _refill_start = None, threading.Lock()
    for pool in list(_pools):
        pool._forget_inherited()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere no fork, and no unnamed files
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _refill_forever(requests: queue.SimpleQueue[UnnamedFiles]) -> None:
    while True:
        pool = requests.get()
        try:
            pool.fill()
        except Exception:  # one pool's surprise must not stop every pool's refills
            log.exception("making unnamed files in %s failed", pool.directory)


def name_unnamed(fd: int, path: Path) -> None:
    """Give the unnamed file ``fd`` the name ``path`` (FileExistsError if taken).

    ``linkat`` with ``AT_SYMLINK_FOLLOW`` on ``/proc/self/fd/N`` is the way an
    unprivileged process names an ``O_TMPFILE`` file; Python calls ``linkat`` only
    when given a directory descriptor, so the target's is passed for both paths.
    """
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.link(f"/proc/self/fd/{fd}", path.name, src_dir_fd=directory, dst_dir_fd=directory)
    finally:
        os.close(directory)
