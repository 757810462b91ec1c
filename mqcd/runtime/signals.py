"""SIGINT / SIGTERM during a run: finish the step, save, stop cleanly.

While a run is inside :class:`StopSignals`, the first SIGINT (Ctrl-C) or SIGTERM (``kill``, a batch
system's time limit) only sets a flag. The time loop looks at it after every step (under MPI at
the record points, where all ranks agree through one ``any`` reduction: ``mpiexec`` forwards the
signal to every rank, but not necessarily at the same step), writes a checkpoint (and, if asked, a
partial output) and raises :class:`RunInterrupted`; ``mqcd run`` exits with 128 + the signal number
(130 for SIGINT, 143 for SIGTERM) and ``mqcd run DECK --restart`` continues bit for bit.

A second SIGINT while the run is saving restores Python's default behaviour
(``KeyboardInterrupt``) for users who really want out at once. Handlers are installed only in the
main thread (``signal.signal`` is not allowed elsewhere) and the previous handlers are restored
when the run ends.
"""
from __future__ import annotations

import signal
import threading

import numpy as np

from ..parallel.comm import CollectiveError

HANDLED = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(CollectiveError, RuntimeError):
    """The run stopped on SIGINT/SIGTERM after saving its state (raised on every rank).

    ``signum`` is the signal number; the CLI exits with ``128 + signum``.
    """

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = int(signum)


class StopSignals:
    """Context manager: SIGINT/SIGTERM set ``received`` (the signal number) instead of killing."""

    def __init__(self):
        self.received = 0
        self._old = {}

    def _handler(self, signum, frame):
        if self.received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)   # a second Ctrl-C: out now

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in HANDLED:
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}

    def requested(self, comm, collective):
        """The signal number if the run should stop now, else 0.

        With ``collective`` (a point every rank reaches at the same step) the ranks agree with one
        reduction; otherwise, under MPI, only a serial run answers (ranks wait for the next
        collective point).
        """
        if comm.size == 1:
            return self.received
        if not collective:
            return 0
        return int(comm.max(np.array([self.received]))[0])

    @staticmethod
    def name(signum):
        try:
            return signal.Signals(signum).name
        except ValueError:
            return f"signal {signum}"
