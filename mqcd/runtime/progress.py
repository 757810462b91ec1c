"""Progress of a run and its messages, through the standard ``logging`` module (logger ``mqcd``).

Modes (``mqcd run --progress``, ``mqcd.run(progress=...)``):

* ``"bar"``: a tqdm bar on stderr (steps; with ``stop = "exit"`` its total and ETA follow the exit
  rule's estimate, not t_end);
* ``"log"``: one line every ``interval`` seconds (default 10) on logger ``mqcd.progress``: step,
  simulated time, trajectory-steps per second, ETA and the energy drift so far; this is what
  shows progress under ``mpiexec`` or in a batch job, where stderr is not a terminal;
* ``"auto"``: ``bar`` when stderr is a terminal, else ``log``;
* ``"none"``.

Only MPI rank 0 reports. The same lines go to ``mqcd run --log FILE`` (in bar mode too).

Warnings of a run are Python warnings of two categories, so that a front end can tell them
apart: :class:`DroppedTrajectoriesWarning` (one per check that dropped trajectories) and
:class:`RunProblemWarning` (the end-of-run report: energy drift beyond the tolerance, a swarm
that had not finished scattering, dropped trajectories in total). ``mqcd run`` routes both to
the ``mqcd`` logger; under ``--quiet`` only the end-of-run lines are printed.
"""
from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
import warnings

LOG = logging.getLogger("mqcd")
PROGRESS_LOG = logging.getLogger("mqcd.progress")
MODES = ("auto", "bar", "log", "none")
DEFAULT_INTERVAL = 10.0


class DroppedTrajectoriesWarning(RuntimeWarning):
    """Trajectories were dropped for non-finite values (``[run] on_nonfinite = "drop"``)."""


class RunProblemWarning(RuntimeWarning):
    """End-of-run report: something the user must know about the result."""


def resolve_mode(progress):
    """``True`` -> ``"auto"``, ``False``/``None`` -> ``"none"``; ``"auto"`` -> ``"bar"`` on a
    terminal, else ``"log"``."""
    if progress is True:
        progress = "auto"
    if not progress:
        return "none"
    if progress not in MODES:
        raise ValueError(f"progress = {progress!r}; allowed: {', '.join(map(repr, MODES))}")
    if progress == "auto":
        return "bar" if getattr(sys.stderr, "isatty", lambda: False)() else "log"
    return progress


def _clock(seconds):
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Reporter of one run (rank 0): a bar, periodic log lines, or nothing.

    Parameters
    ----------
    mode : {"bar", "log", "none"}
    nsteps : int
        Steps up to t_end.
    step : int
        Step the loop starts from (> 0 after a restart).
    dt : float
        Time step (a.u. of time), for the simulated time.
    desc : str
        ``method/model``.
    interval : float
        Seconds between log lines.
    tolerance : float
        ``[run] energy_tolerance`` (hartree), shown next to the drift.
    """

    def __init__(self, mode, nsteps, step, dt, desc, interval=DEFAULT_INTERVAL, tolerance=0.0):
        self.mode, self.nsteps, self.dt, self.desc = mode, nsteps, dt, desc
        self.first = self.last_step = step
        self.interval = float(interval)
        self.tolerance = tolerance
        self.t0 = self.t_last = time.monotonic()
        self.total = nsteps
        self.bar = None
        self._had_handler = None
        if mode != "none" and not LOG.hasHandlers():
            # a library call asked for progress but nobody configured logging: show it on stderr
            self._had_handler = logging.StreamHandler(sys.stderr)
            self._had_handler.setFormatter(logging.Formatter("mqcd: %(message)s"))
            LOG.addHandler(self._had_handler)
            LOG.setLevel(logging.INFO)
        if mode == "bar":
            from tqdm import tqdm
            self.bar = tqdm(total=nsteps, initial=step, unit="step", leave=True, desc=desc,
                            smoothing=0.1, disable=False, mininterval=0.5)
        if mode != "none":
            PROGRESS_LOG.info(f"{desc}: starting at step {step} of {nsteps} (t_end = "
                              f"{nsteps * dt:g} a.u.)")

    def update(self, step, n_alive, drift=None, total=None):
        """Report step ``step`` (``n_alive`` trajectories; ``drift``: energy drift so far in
        hartree; ``total``: estimated last step, e.g. from the exit rule)."""
        if self.mode == "none":
            return
        self.total = min(self.nsteps, total) if total else self.nsteps
        now = time.monotonic()
        rate = (step - self.first) * n_alive / max(now - self.t0, 1e-9)
        if self.bar is not None:
            if self.bar.total != self.total:
                self.bar.total = self.total
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str(f"{rate:.3g} traj-steps/s", refresh=False)
        if now - self.t_last >= self.interval:
            self.t_last = now
            PROGRESS_LOG.info(self.line(step, rate, n_alive, drift, now))
        self.last_step = step

    def line(self, step, rate, n_alive, drift, now):
        steps_per_s = (step - self.first) / max(now - self.t0, 1e-9)
        eta = (self.total - step) / steps_per_s if steps_per_s > 0 else None
        of = f"{self.total}" if self.total == self.nsteps else f"~{self.total} (exit rule)"
        txt = (f"{self.desc}: step {step}/{of} ({100.0 * step / max(self.total, 1):.0f}%), "
               f"t = {step * self.dt:g} a.u., {rate:.3g} traj-steps/s, ETA {_clock(eta)}")
        if drift is not None:
            txt += f", energy drift {drift:.2e} hartree"
            if self.tolerance:
                txt += f" (tolerance {self.tolerance:g})"
        return txt

    def close(self, step=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.mode != "none" and step is not None:
            el = time.monotonic() - self.t0
            PROGRESS_LOG.info(f"{self.desc}: stopped at step {step} (t = {step * self.dt:g} "
                              f"a.u.) after {el:.1f} s")
        if self._had_handler is not None:
            LOG.removeHandler(self._had_handler)
            self._had_handler = None


# ----------------------------------------------------------------------------- the CLI's logging
class _NotProgress(logging.Filter):
    def filter(self, record):
        return not record.name.startswith(PROGRESS_LOG.name)


class _Format(logging.Formatter):
    def format(self, record):
        msg = record.getMessage()
        return f"mqcd: warning: {msg}" if record.levelno >= logging.WARNING else f"mqcd: {msg}"


@contextlib.contextmanager
def cli_logging(mode, quiet=False, logfile=None, is_root=True, shown_drops=5):
    """Configure logger ``mqcd`` for one CLI command and route the run's warnings to it.

    stderr gets warnings (and, in ``log`` mode, the progress lines); ``logfile`` gets everything
    with time stamps. Under ``quiet`` per-event drop warnings are not printed (the end-of-run
    report still is); otherwise the first ``shown_drops`` are. Other ranks log nothing.
    """
    handlers = []
    if is_root:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(_Format())
        h.setLevel(logging.WARNING if quiet else logging.INFO)
        if mode != "log":
            h.addFilter(_NotProgress())
        handlers.append(h)
        if logfile:
            f = logging.FileHandler(logfile)
            f.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            handlers.append(f)
    old_level, old_prop = LOG.level, LOG.propagate
    for h in handlers:
        LOG.addHandler(h)
    if not handlers:
        LOG.addHandler(logging.NullHandler())
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    drops = [0]
    old_show = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DroppedTrajectoriesWarning):
            drops[0] += 1
            if quiet or drops[0] > shown_drops:
                if drops[0] == shown_drops + 1 and not quiet:
                    LOG.warning("further warnings about dropped trajectories are not shown; "
                                "the total is reported at the end")
                for h in handlers[1:]:                 # the log file keeps every line
                    h.handle(LOG.makeRecord(LOG.name, logging.WARNING, filename, lineno,
                                            str(message), None, None))
                return
        LOG.warning(str(message))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", DroppedTrajectoriesWarning)
            warnings.simplefilter("always", RunProblemWarning)
            warnings.showwarning = show
            yield
    finally:
        warnings.showwarning = old_show
        for h in LOG.handlers[:]:
            if h in handlers or isinstance(h, logging.NullHandler):
                LOG.removeHandler(h)
                if h in handlers:
                    h.close()
        LOG.setLevel(old_level)
        LOG.propagate = old_prop
