"""Exclusive locks on a run's output (and its checkpoint), held for the whole run.

A run of ``out.h5`` takes an exclusive ``flock`` on the lock file ``out.h5.lock`` before it checks
or writes anything, and keeps it until it ends. A second run of the same output (same deck
started twice, or two decks naming the same file) finds the lock taken and refuses before it
computes anything, naming the pid, host and start time of the holder. The kernel releases a
``flock`` when its process dies, so a run killed with ``kill -9`` leaves no stale lock: the lock
file may remain, but the next run takes the lock at once (``--restart`` after a crash works).

The lock file holds one line, ``pid host start-time``, for the message. Linux flock works on local
file systems and, since Linux 2.6.12, on NFS (emulated with POSIX byte-range locks).
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:          # pragma: no cover - not POSIX: no locking (documented)
    fcntl = None

LOCK_SUFFIX = ".lock"


class LockedError(RuntimeError):
    """The output is in use by another mqcd run (the message names its pid and host)."""


def lock_path(target) -> Path:
    """The lock file of the output (or checkpoint) ``target``: ``target.lock``."""
    return Path(str(target) + LOCK_SUFFIX)


class RunLock:
    """Exclusive locks on several targets; ``release()`` (or ``with``) frees them all."""

    def __init__(self, targets, what="run"):
        self.paths = []
        self._fds = []
        try:
            for t in dict.fromkeys(Path(t) for t in targets):     # unique, in order
                self._take(t, what)
        except BaseException:
            self.release()
            raise

    def _take(self, target, what):
        path = lock_path(target)
        if fcntl is None:
            return
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise OSError(exc.errno, f"cannot create the lock file {path} for the output "
                              f"{target} ({exc.strerror}): is the folder writable?") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 256).decode("utf-8", "replace").split()
                os.close(fd)
                who = (f"pid {holder[0]} on host {holder[1]}, started {' '.join(holder[2:])}"
                       if len(holder) >= 3 else "another process")
                raise LockedError(f"{target} is in use by another mqcd {what} ({who}; lock file "
                                  f"{path}). Wait for it to finish, stop it, or give this run "
                                  "another output (-o / [output] file)") from None
            # the holder before us may have unlinked the file after we opened it: make sure the
            # lock is on the file that is at `path` now, otherwise try again
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {stamp}\n".encode(), 0)
        self.paths.append(path)
        self._fds.append(fd)

    def release(self):
        """Remove the lock files and free the locks (idempotent)."""
        for path, fd in zip(self.paths, self._fds):
            try:
                os.unlink(path)          # while still holding the lock: see _take
            except OSError:
                pass
            os.close(fd)
        self.paths, self._fds = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
