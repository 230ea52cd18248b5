"""A store in a local directory.

Atomic create: write the bytes into a file with no name yet, fdatasync it, then
link it to the final name; the link fails if the name exists, which the kernel
decides atomically; then fsync the directory. The file is an unnamed one created
ahead of time where Linux offers them (:mod:`catalog_store.storage.unnamed`: a
fresh inode's flush costs far more), else a uniquely named temp file beside the
target, unlinked after the link. fsspec's ``pipe_file(mode="create")`` is
check-then-write and would let two writers win, so it is not used.

Immutable objects (:meth:`LocalStore.put_new`) go the same way, or, with no
unnamed file ready, are created at their final name (nothing reads them before a
manifest names them). Their keys are unique, so a file already there is the same
object's from an earlier try: left alone when whole, else replaced by a rename.
A directory made for an object has its own entry made durable too
(:mod:`catalog_store.storage.directories`).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import os
import stat
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from catalog_store.errors import (
    AlreadyExistsError,
    FormatError,
    ObjectNotFoundError,
    StorageError,
    StorageFullError,
    StoragePermissionError,
    StorageUnavailableError,
)
from catalog_store.storage.base import ObjectInfo, Store, caller_waits, check_key
from catalog_store.storage.directories import NewDirectories, fsync_dir, ordered_by_journal
from catalog_store.storage.unnamed import UnnamedFiles, name_unnamed
from catalog_store.tasks import outcome_seen

_TMP_SUFFIX = ".tmp"
#: Tries of a directory flush after a create made a name visible, and the pause
#: between them (seconds, growing): a transient error then must not end the create.
_FLUSH_ATTEMPTS = 3
_FLUSH_PAUSE = 0.01
_INLINE_READ_BYTES = 64 * 1024
_PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}
# EFBIG: past the process's file-size limit, as good as full for this writer.
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# EMFILE and ENFILE: out of file descriptors for now, which closing ones cures.
_TRANSIENT = {errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT, errno.EBUSY, errno.EMFILE, errno.ENFILE}
#: What linkat answers when an unnamed file cannot be named here at all.
_UNNAMEABLE = {errno.EXDEV, errno.ENOENT, errno.EPERM, errno.EINVAL, errno.EOPNOTSUPP}


@contextlib.contextmanager
def translate_os_errors(key: str) -> Iterator[None]:
    """Turn OSError into fincat's error tree; the one place that does it."""
    try:
        yield
    except FileNotFoundError:
        raise ObjectNotFoundError(key) from None
    except FileExistsError:
        raise AlreadyExistsError(f"object exists: {key}") from None
    except OSError as exc:
        if exc.errno in _FULL:
            raise StorageFullError(f"no space left writing {key}: {exc}") from exc
        if exc.errno in _PERMISSION:
            raise StoragePermissionError(f"not permitted on {key}: {exc}") from exc
        if exc.errno in _TRANSIENT:
            raise StorageUnavailableError(f"{key}: {exc}") from exc
        raise StorageError(f"{key}: {exc}") from exc


def _write_file(path: Path, data: bytes, flags: int, durable: bool, remove_on_error: bool) -> None:
    """Write ``data`` to the file ``path`` opened with ``flags`` (fdatasynced if
    ``durable``: data and size; its name is made durable by a directory fsync)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    try:
        _write_fd(fd, data, durable)
    except BaseException:
        os.close(fd)
        if remove_on_error:
            path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _write_fd(fd: int, data: bytes, durable: bool) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    if durable:
        os.fdatasync(fd)


def _write_temp(directory: Path, data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to a new temp file in ``directory`` (fsynced if ``durable``)."""
    tmp = directory / f".{uuid.uuid4().hex}{_TMP_SUFFIX}"
    _write_file(tmp, data, os.O_EXCL, durable, remove_on_error=True)
    return tmp


def _write_new(spares: UnnamedFiles, path: Path, data: bytes) -> None:
    """Write an immutable object durably: into an unnamed file linked to its name
    when one is ready, else created at its name. A failure leaves the file to gc:
    the try that failed may be one abandoned after a deadline, whose retry has
    since written the file whole and committed it.

    The key is unique to this object, so a file already there is this object's,
    from an earlier try: whole (that try landed; it is left alone) or partial (a
    try that failed or is still running; replaced by a rename, so that a reader
    never sees it cut short and a try still writing writes into the file replaced).
    """
    try:
        fd = spares.take()
        if fd is None or not _name_staged(spares, _stage_unnamed(fd, data), path):
            _write_file(path, data, os.O_EXCL, durable=True, remove_on_error=False)
    except FileExistsError:
        if path.read_bytes() != data:
            _replace_file(path, data, durable=True)
        else:  # whole, but the try that wrote it may not have flushed it yet
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)
    fsync_dir(path.parent)


def _replace_file(path: Path, data: bytes, durable: bool) -> None:
    """Put ``data`` under ``path`` by a rename over whatever is there; if
    ``durable``, flushed, and its name too: a manifest may reference it next."""
    tmp = _write_temp(path.parent, data, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


#: Bytes written and flushed, not yet under their name: an unnamed file's
#: descriptor or a temp file's path.
Staged = int | Path


def _stage(spares: UnnamedFiles, directory: Path, data: bytes) -> Staged:
    fd = spares.take()
    return _write_temp(directory, data) if fd is None else _stage_unnamed(fd, data)


def _stage_unnamed(fd: int, data: bytes) -> int:
    try:
        _write_fd(fd, data, durable=True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _name_staged(spares: UnnamedFiles, staged: Staged, path: Path) -> bool:
    """Put ``staged`` under ``path`` (FileExistsError if taken).
    False if an unnamed file could not be named on this filesystem (a subdirectory
    on another mount): nothing was created, and the caller writes it another way."""
    if isinstance(staged, Path):
        try:
            os.link(staged, path)
        finally:
            staged.unlink(missing_ok=True)
        return True
    try:
        name_unnamed(staged, path)
    except OSError as exc:
        # EXDEV: the directory is on another filesystem. The others: the kernel or
        # a sandbox will not name an unnamed file through /proc; the named way
        # then also reports a directory that is gone or not writable.
        if exc.errno not in _UNNAMEABLE:
            raise
        if exc.errno != errno.ENOENT or path.parent.is_dir():  # else: the directory went
            spares.unusable()
        return False
    finally:
        os.close(staged)
    return True


def _discard(staged: Staged) -> None:
    if isinstance(staged, Path):
        staged.unlink(missing_ok=True)
    else:
        os.close(staged)


def _rewrite_in_place(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        done = 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], done)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


class _Staging:
    """A create's bytes, written and flushed by a worker thread while the objects
    its manifest names are flushed. If the create is abandoned (they failed, or
    it was cancelled, or the event loop shut down), whichever comes second, the
    worker's finish or the abandoning, discards what was staged: an unnamed
    file's descriptor would otherwise stay open for the life of the process."""

    def __init__(self, spares: UnnamedFiles, directory: Path, data: bytes) -> None:
        self._spares, self._directory, self._data = spares, directory, data
        self._lock = threading.Lock()
        self._staged: Staged | None = None
        self._abandoned = False

    def run(self) -> None:
        staged = _stage(self._spares, self._directory, self._data)
        with self._lock:
            if not self._abandoned:
                self._staged = staged
                return
        _discard(staged)

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            staged, self._staged = self._staged, None
        if staged is not None:
            _discard(staged)

    def claim(self) -> Staged | None:
        """What was staged, now the caller's to name or discard; None if the create
        was abandoned first (it was cancelled before its worker took it)."""
        with self._lock:
            staged, self._staged = self._staged, None
        return staged


class LocalStore(Store):
    """Objects as files under ``root``; blocking I/O runs in worker threads."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = self.root.as_uri()
        self._spares = UnnamedFiles(self.root)
        self._new_directories = NewDirectories(ordered_by_journal(self.root))
        #: Whether the root was here (when the store was opened, or at a write): one
        #: that has gone since (the store moved, unmounted or deleted) is not made
        #: again by a write, which would write into an empty store.
        self._root_seen = self.root.is_dir()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _path_to_write(self, key: str, make_directory: bool = True) -> Path:
        """Where ``key`` is written, its directory made. Here, not in the worker
        thread that writes it: a worker that ran after the store's directory went
        (a hint write a call left behind) made it again, and wrote into the void."""
        path = self._path(key)
        if self.root.is_dir():
            self._root_seen = True
        elif self._root_seen:
            raise FormatError(f"{self.root}, the store's directory, is gone: writing {key}")
        if make_directory:
            with translate_os_errors(key):
                self._new_directories.make(path.parent)
        return path

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        with translate_os_errors(key):
            # A small file (manifest, shard, hint) is read at once: a thread hop
            # costs more than the read. Larger ones are read by a worker thread into
            # a buffer made here: memory a worker allocates comes from that
            # thread's own malloc arena, which grows and is seldom given back, so
            # a process reading many shards would swell past its cache bound.
            # O_NONBLOCK: a FIFO put in an object's place would block open() on this
            # thread for good; it has no effect on a regular file.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            with open(fd, "rb") as file:  # noqa: ASYNC230 - deliberate, see above
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise StorageError(f"{key}: not a regular file")
                size = st.st_size
                if size <= _INLINE_READ_BYTES:
                    return file.read()
                buffer = bytearray(size + 1)  # one more: a file that grew is read whole
                done = await asyncio.to_thread(file.readinto, buffer)
                if done <= size:
                    return bytes(memoryview(buffer)[:done])
            return await asyncio.to_thread(path.read_bytes)

    async def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        with translate_os_errors(key):
            st = os.stat(path)  # microseconds; the version probe calls it on every read
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    async def put(self, key: str, data: bytes, *, durable: bool = True) -> None:
        if not durable:
            # An advisory object is rewritten in place, on this thread: creating a
            # file costs far more than the write on some disks, and this runs after
            # every commit. A file already there needs no directory made.
            with translate_os_errors(key), contextlib.suppress(FileNotFoundError):
                _rewrite_in_place(self._path_to_write(key, make_directory=False), data)
                return
        path = self._path_to_write(key)
        with translate_os_errors(key):
            await asyncio.to_thread(self._replace, path, data, durable)

    def _replace(self, path: Path, data: bytes, durable: bool) -> None:
        _replace_file(path, data, durable)
        if durable:
            self._new_directories.flush(path.parent)

    async def put_new(self, key: str, data: bytes) -> None:
        path = self._path_to_write(key)
        with translate_os_errors(key):
            await asyncio.to_thread(self._write_immutable, path, data)

    def _write_immutable(self, path: Path, data: bytes) -> None:
        _write_new(self._spares, path, data)
        self._new_directories.flush(path.parent)

    async def put_if_absent(self, key: str, data: bytes) -> None:
        path = self._path_to_write(key)
        with translate_os_errors(key):
            if caller_waits.get():
                # A commit's one write, on the thread that waits for it: a small
                # file's two flushes, without the trip to a worker and back, which
                # measured 0.6-0.8 ms here. The store deadline cannot cut it short,
                # as it cannot the small reads done in place (see get).
                self._create(path, data)
            else:
                await asyncio.to_thread(self._create, path, data)

    async def put_if_absent_after(self, key: str, data: bytes, ready: Awaitable[None]) -> None:
        path = self._path_to_write(key)
        # The manifest's own bytes are flushed while ``ready`` flushes the objects it
        # names; only the link that makes it visible waits for both.
        staging = _Staging(self._spares, path.parent, data)
        written = asyncio.ensure_future(asyncio.to_thread(staging.run))
        try:
            await ready
            with translate_os_errors(key):
                await written
        except BaseException:
            staging.abandon()
            written.add_done_callback(outcome_seen)  # its error, if any, is ready's to report
            raise
        try:
            with translate_os_errors(key):
                await asyncio.to_thread(self._link_claimed, staging, path, data)
        except BaseException:
            # Cancelled while its worker was still queued: the worker, if it runs,
            # finds nothing to claim, and the file is closed here.
            staging.abandon()
            raise

    def _link_claimed(self, staging: _Staging, path: Path, data: bytes) -> None:
        staged = staging.claim()
        if staged is not None:
            self._link(staged, path, data)

    def _create(self, path: Path, data: bytes) -> None:
        self._link(_stage(self._spares, path.parent, data), path, data)

    def _link(self, staged: Staged, path: Path, data: bytes) -> None:
        if not _name_staged(self._spares, staged, path):
            _name_staged(self._spares, _write_temp(path.parent, data), path)
        for attempt in range(_FLUSH_ATTEMPTS):
            try:
                fsync_dir(path.parent)
                self._new_directories.flush(path.parent)
                return
            except OSError as exc:
                if attempt == _FLUSH_ATTEMPTS - 1:
                    # The object is visible already: an error now is no proof it
                    # was not created. Unavailable, so that a committer reads the
                    # key back to settle the outcome.
                    raise StorageUnavailableError(
                        f"{path.name} was created, then its directory could not be flushed: {exc}"
                    ) from exc
                time.sleep(_FLUSH_PAUSE * (attempt + 1))  # EMFILE, EINTR and the like pass

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        # Walk only the deepest directory the prefix names, not the whole root.
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        with translate_os_errors(prefix):
            infos = await asyncio.to_thread(self._walk, base, prefix)
        for info in infos:
            yield info

    def _walk(self, base: Path, prefix: str) -> builtins.list[ObjectInfo]:
        found: builtins.list[ObjectInfo] = []
        if not base.is_dir():
            return found
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(".") and name.endswith(_TMP_SUFFIX):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    st = full.stat()
                    found.append(
                        ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
                    )
        return found

    async def sweep_partial_writes(
        self, older_than: datetime, *, dry_run: bool = False
    ) -> builtins.list[ObjectInfo]:
        with translate_os_errors(""):
            return await asyncio.to_thread(self._sweep, older_than.timestamp(), dry_run)

    def _sweep(self, cutoff: float, dry_run: bool) -> builtins.list[ObjectInfo]:
        swept: builtins.list[ObjectInfo] = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if not (name.startswith(".") and name.endswith(_TMP_SUFFIX)):
                    continue
                full = Path(dirpath) / name
                with contextlib.suppress(FileNotFoundError):
                    st = full.stat()
                    if st.st_mtime > cutoff:
                        continue  # perhaps still being written
                    if not dry_run:
                        full.unlink()
                    key = full.relative_to(self.root).as_posix()
                    swept.append(
                        ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
                    )
        return swept

    async def close(self) -> None:
        self._spares.close()

    async def delete(self, key: str) -> None:
        path = self._path(key)
        with translate_os_errors(key):
            await asyncio.to_thread(path.unlink, missing_ok=True)
