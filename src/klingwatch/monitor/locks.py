"""One writer per destination file: across tasks, Downloader instances and processes.

:func:`destination_lock` holds an :class:`asyncio.Lock` per (event loop, path), shared by every
:class:`~klingwatch.monitor.downloads.Downloader` in the process, so a second caller for the same
file waits and then finds it complete. Inside that, a ``.NAME.lock`` file is ``flock``-ed so a
second *process* (a ``klingwatch download`` beside a running engine) skips the file instead of
writing the same ``.part``. ``flock`` is released by the kernel if a process dies, so a crash
never leaves a lock that blocks the next run.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from klingwatch.errors import KlingwatchError

__all__ = ["FileBusy", "destination_lock", "lock_path"]

_LOCKS: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = weakref.WeakValueDictionary()


class FileBusy(KlingwatchError):
    """Another process is downloading this file right now."""


def lock_path(dest: Path) -> Path:
    """The lock file of ``dest``: a hidden ``.NAME.lock`` beside it."""
    return dest.with_name(f".{dest.name}.lock")


def _process_lock(dest: Path) -> asyncio.Lock:
    key = (id(asyncio.get_running_loop()), str(dest))
    lock = _LOCKS.get(key)
    if lock is None:
        lock = asyncio.Lock()
        _LOCKS[key] = lock
    return lock


@asynccontextmanager
async def destination_lock(dest: Path) -> AsyncIterator[None]:
    """Hold ``dest`` for writing: wait for writers in this process, skip other processes.

    The folder of ``dest`` must exist. Raises :class:`FileBusy` when another process holds it,
    and ``OSError`` when the lock file cannot be created (an unwritable folder).
    """
    lock = _process_lock(dest)
    async with lock:
        fd = _flock(lock_path(dest))
        try:
            yield
        finally:
            _release(lock_path(dest), fd)


def _flock(path: Path) -> int:
    # A lock file unlinked by its previous holder between our open() and flock() would lock
    # nothing: retry until the locked inode is the one the name points at.
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FileBusy(f"{path.name[1:-5]} is being downloaded by another process") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise FileBusy(f"{path.name[1:-5]} keeps being locked and released by another process")


def _release(path: Path, fd: int) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # a folder that became read-only keeps a harmless lock file
    finally:
        os.close(fd)
