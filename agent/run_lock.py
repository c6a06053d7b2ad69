"""One process at a time in a run folder: an exclusive lock held while a run, a chat turn or an
assignment writes there.

The lock is an advisory `flock` on `.clusteragent.lock` in the folder, so the operating system drops
it when its process dies (a killed run never leaves the folder locked). The file stays; it holds the
holder's pid, which the second process names in its error. Within one process the lock is re-entrant
(the CLI holds it around a run and its writing, and the run takes it again inside), so threads of one
process share it: a server that runs turns in threads serialises them itself.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from clusteragent.errors import ConfigError

LOCK_FILE = ".clusteragent.lock"

_held: dict[str, tuple[int, int]] = {}  # resolved folder -> (file descriptor, depth)
_guard = threading.RLock()


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _unlock(fd: int) -> None:
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
    except ImportError:
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


class RunLock:
    """`with RunLock(folder):` holds the folder's lock, or raises a one-line ConfigError naming the holder."""

    def __init__(self, folder: str | Path, what: str = "run"):
        self.folder = Path(folder)
        self.what = what

    def __enter__(self) -> RunLock:
        key = str(self.folder.resolve())
        with _guard:
            if key in _held:
                fd, depth = _held[key]
                _held[key] = (fd, depth + 1)
                return self
            if not self.folder.is_dir():
                raise ConfigError(f"{self.folder}: no such folder; give the --out folder of a `clusteragent run`.")
            path = self.folder / LOCK_FILE
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                raise ConfigError(f"{self.folder}: cannot write here ({e.strerror}); choose a folder you can write to.") \
                    from None
            if not _try_lock(fd):
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise ConfigError(f"{self.folder} is in use by another clusteragent process (pid {holder}); wait for "
                                  f"it to finish, or {self.what} in another folder.")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            _held[key] = (fd, 1)
        return self

    def __exit__(self, *exc) -> None:
        key = str(self.folder.resolve())
        with _guard:
            fd, depth = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1)
                return
            del _held[key]
            os.ftruncate(fd, 0)
            _unlock(fd)
            os.close(fd)
