"""One writer per destination file: across tasks, Downloader instances and processes.

:func:`destination_lock` holds an :class:`asyncio.Lock` per (event loop, path), shared by every
:class:`~klingwatch.monitor.downloads.Downloader` in the process, so a second caller for the same
file waits and then finds it complete. Inside that, a ``.NAME.lock`` file beside the destination
is locked with :class:`filelock.FileLock` (``flock`` on POSIX, ``msvcrt`` on Windows: nothing
here imports ``fcntl``, so the command line starts on every platform), so a second *process* (a
``klingwatch download`` beside a running engine) skips the file instead of writing the same
``.part``. The operating system drops the lock when a process dies, so a crash never leaves a
lock that blocks the next run.

The lock file is removed while it is still held, just before release, so a download leaves
nothing behind. That order is what keeps the removal safe: a process that opened the old lock file
just before it was removed can only lock it after the release, when the file has no name any
more, and filelock (3.20.4 and later) refuses a lock on a file without a name; the next process
to open the name creates and locks a new one. (On NFS a removed file that is still open keeps a
``.nfsXXXX`` name, so two processes on two *machines* writing one folder are not kept apart; one
machine is.)
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from filelock import FileLock, Timeout

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
    async with _process_lock(dest):
        path = lock_path(dest)
        held = FileLock(path)
        try:
            held.acquire(blocking=False)  # one try: a busy file is skipped, not waited for
        except Timeout:
            raise FileBusy(f"{dest.name} is being downloaded by another process") from None
        try:
            yield
        finally:
            with contextlib.suppress(OSError):  # a folder turned read-only keeps a harmless file
                path.unlink()
            held.release()
