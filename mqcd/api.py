"""The library entry points: ``mqcd.run`` (swarm dynamics), ``mqcd.exact`` (grid reference).

The data flow is one direction: deck -> validated config -> model + initial swarm -> time loop
(fields, electronic step, nuclear step, hops/decoherence, record) -> Result -> HDF5.
"""
from __future__ import annotations

import math
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ._version import __version__
from .analysis.observables import UNITS, Recorder, branching
from .analysis.summary import run_problems
from .ensemble.initial import initial_conditions, sampling_records, sampling_report
from .ensemble.swarm import Swarm
from .io.atomic import probe_folder
from .io.deck import Deck, DeckError, deck_model, read_deck
from .io.checkpoint import (Checkpoint, check_restart, checkpoint_path, read_checkpoint,
                            write_checkpoint)
from .io.results import Result, check_writable, write_result
from .methods import build_method
from .models import ModelError, model_fingerprint, user_frame
from .models.check import check_at
from .models.stiffness import VERLET_LIMIT, sample_rows, stiffest_frequency, time_step_message
from .parallel import CollectiveError, block_counts, get_comm, mark_collective
from .runtime import (DroppedTrajectoriesWarning, Progress, RunInterrupted, RunLock,
                      RunProblemWarning, StopSignals, resolve_mode)
from .runtime.progress import DEFAULT_INTERVAL
from .runtime.resources import (ResourceError, ranks_on_this_node, refuse_if_disk_full,
                                refuse_if_too_big, swarm_disk, swarm_memory)


def _as_deck(deck, **kw):
    return deck if isinstance(deck, Deck) else read_deck(deck, **kw)


def _nsteps(run):
    n = run["t_end"] / run["dt"]
    return int(math.ceil(n - 1e-9))


def _exit_status(sw, radius, comm, count=False):
    """``(inside, t_left)``: whether any trajectory (``count``: how many) still has
    |x_0| <= radius or moves inward along dof 0 (the exit rule is met when none does), and the
    time (a.u.) the slowest of them needs to leave at its present speed (through the region when
    it moves inward), the estimate of the progress report. One reduction."""
    x0, p0 = sw.x[:, 0], sw.p[:, 0]
    inward = x0 * p0 < 0
    inside = (np.abs(x0) <= radius) | inward
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(inside, np.where(inward, np.abs(x0) + radius, radius - np.abs(x0))
                     / (np.abs(p0) / sw.masses[0]), 0.0)
    t_left = float(t.max()) if t.size else 0.0
    if count:
        return int(comm.sum(np.array([np.count_nonzero(inside)], np.int64))[0]), t_left
    out = comm.max(np.array([1.0 if inside.any() else 0.0, t_left]))
    return bool(out[0] > 0), float(out[1])


def _first_message(comm, msg, width=4000):
    """The first non-empty ``msg`` over the ranks (in rank order), on every rank (collective)."""
    if comm.size == 1:
        return msg
    buf = np.zeros((1, width), np.uint8)
    b = msg.encode("utf-8")[:width]
    buf[0, :len(b)] = np.frombuffer(b, np.uint8)
    rows = comm.gather_rows(buf)
    first = ""
    if comm.is_root:
        for r in rows:
            if r.any():
                first = bytes(r).rstrip(b"\0").decode("utf-8", "replace")
                break
    return comm.bcast(first)


def _model_error(model, exc, when):
    """A ModelError naming the user model file, the line and the call, for an exception that
    came from the user's model file; None for other exceptions (re-raised unchanged)."""
    path = getattr(model, "source_path", None)
    if path is None or isinstance(exc, ModelError):
        return None
    where = user_frame(exc, path)
    if where is None and "first evaluation" not in when:
        return None
    at = f" (line {where[0]} of {path}: `{where[1]}`)" if where else f" (model file {path})"
    return ModelError(f"the model {type(model).__name__} raised {type(exc).__name__}: {exc}{at}, "
                      f"{when}")


def _preflight(model, x, comm, when, require_finite=True):
    """The cheap part of `mqcd check-model` (shapes, dtype, finite values, hermiticity) at the
    positions ``x`` of this rank; a ModelError on every rank if any rank fails."""
    msg = "; ".join(check_at(model, x, require_finite=require_finite)) if x.shape[0] else ""
    msg = _first_message(comm, msg)
    if msg:
        src = getattr(model, "source_path", None)
        raise mark_collective(ModelError(
            f"the model {model.name}" + (f" ({src})" if src else "") + f" fails its check {when}: "
            f"{msg}. Nothing was computed; `mqcd check-model DECK` runs the full check"))


def _check_time_step(model, x, index, deck, comm):
    """A DeckError on every rank, before any step, when ``[run] dt`` is beyond the velocity-Verlet
    stability limit ``2 / omega_max`` of the model at the initial positions (mqcd/models/
    stiffness.py); the sampled trajectories are fixed by global index, so the verdict does not
    depend on the rank count. ``[run] on_unstable_step`` = 'warn' warns (root rank) instead,
    'off' skips the check."""
    policy = deck.run["on_unstable_step"]
    if policy == "off":
        return
    rows = sample_rows(index, deck.run["trajectories"], model.ndof)
    try:
        omega = stiffest_frequency(model, x[rows]) if rows.size else 0.0
    except Exception:            # a model that fails 1e-4 bohr off the checked points, or NaN
        omega = 0.0              # curvatures: no verdict (the energy check still runs)
    omega = omega if np.isfinite(omega) else 0.0
    omega = float(comm.max(np.array([omega]))[0])
    msg = time_step_message(omega, float(deck.run["dt"]))
    if msg:
        _unstable_step(msg, policy, comm)


def _unstable_step(msg, policy, comm):
    """``[run] on_unstable_step``: 'stop' raises the DeckError ``msg`` on every rank, 'warn'
    warns once (root rank) and the run goes on."""
    if policy == "stop":
        raise mark_collective(DeckError(msg + "; nothing was computed ([run] on_unstable_step = "
                                        "\"warn\" runs it anyway)"))
    if comm.is_root:
        warnings.warn(msg + "; running anyway ([run] on_unstable_step = \"warn\")",
                      RunProblemWarning, stacklevel=3)


def build_swarm(deck, model, method, comm):
    """Initial swarm for this rank's block of trajectories (the model is checked at the initial
    positions first: shapes, dtype, finite values, hermiticity)."""
    start, stop = comm.local_range(deck.run["trajectories"])
    index = np.arange(start, stop)
    try:
        ic = initial_conditions(deck, model, index)
        keys, x, p, rho = ic.keys, ic.x, ic.p, ic.rho
    except Exception as exc:
        err = _model_error(model, exc, f"at its first evaluation (t = 0, initial positions of "
                           f"trajectories {start}..{stop - 1})")
        if err is None:
            raise
        raise err from exc
    # with on_nonfinite = "drop" the user accepts trajectories that start where H is not finite:
    # they are dropped at t = 0 like any other; the rest of the check still applies
    _preflight(model, x, comm, "at the initial positions (t = 0)",
               require_finite=deck.run["on_nonfinite"] == "stop")
    _check_time_step(model, x, index, deck, comm)
    H, dH = model.allocate(index.size)
    model.evaluate_into(x, H, dH)
    sw = Swarm(x=x, p=p, rho=rho, masses=model.masses, keys=keys, index=index, H=H, dH=dH,
               H_prev=np.empty_like(H), active=ic.active, dt=deck.run["dt"], weight=ic.weight)
    sw.info = ic.report
    method.setup(sw)
    _check_bohm_step(method, deck, comm)
    return sw


def _check_bohm_step(method, deck, comm):
    """qhd with kernel fields: the same verdict as :func:`_check_time_step` for the quantum
    force's fastest fluid-element mode at the first field estimate (``omega_Q dt >= 2``,
    :func:`mqcd.models.stiffness.bohm_frequency`); later steps are reported at the end."""
    wdt = getattr(method, "bohm_max", None)
    policy = deck.run["on_unstable_step"]
    if wdt is None or policy == "off" or wdt < VERLET_LIMIT:
        return
    dt = float(deck.run["dt"])
    msg = (f"[run] dt = {dt:.4g} a.u. is beyond the stability limit of the qhd quantum force at "
           f"the initial density bandwidths: its fastest fluid-element (Bohm) mode, omega_Q = "
           f"(2/e)/(M h^2) = {wdt / dt:.4g} hartree, needs dt < 2/omega_Q = {2 * dt / wdt:.4g} a.u. "
           f"(short density ripples grow otherwise and elements are thrown out; the limit "
           f"tightens as N grows or a packet is squeezed). Use dt <= {0.5 * dt / wdt:.3g} a.u. "
           f"(omega_Q dt <= 0.5, room for the bandwidth to shrink by 2 as packets are squeezed)")
    _unstable_step(msg, policy, comm)


# Per-trajectory Swarm fields (first axis = local trajectory) saved in checkpoints and restricted
# when trajectories are dropped; H, dH, H_prev are recomputed from x on restart.
SWARM_ROWS = ("index", "keys", "x", "p", "rho", "active", "F", "E0", "E", "V", "weight")
_RECOMPUTED = ("H", "dH", "H_prev")
NONFINITE_BITS = {"x": 1, "p": 2, "rho": 4}


class NonFiniteError(CollectiveError, RuntimeError):
    """A trajectory produced NaN/inf with ``[run] on_nonfinite = "stop"`` (raised on every rank)."""


class EnergyDriftError(CollectiveError, RuntimeError):
    """The energy drift passed ``[run] energy_tolerance`` with ``on_energy_drift = "stop"``
    (raised on every rank, after the checkpoint was written)."""


class OutputWriteError(CollectiveError, RuntimeError):
    """The output file could not be written at the end; the message says where the results
    were kept instead (the checkpoint, or a fallback file) and how to finish."""


def _quantities(mask):
    return ", ".join(q for q, b in NONFINITE_BITS.items() if int(mask) & b)


def _all_finite(sw):
    """Cheap swarm-wide test: a NaN or inf anywhere makes the sum non-finite."""
    return all(np.isfinite(getattr(sw, q).sum()) for q in NONFINITE_BITS)


def nonfinite_rows(sw):
    """Bit mask per local trajectory: 1 if x, 2 if p, 4 if rho holds a NaN or inf (0 = finite)."""
    n = sw.ntraj
    code = np.zeros(n, np.int64)
    for name, bit in NONFINITE_BITS.items():
        a = getattr(sw, name)
        a = a.reshape(n, int(np.prod(a.shape[1:])))
        code |= np.where(np.isfinite(a).all(axis=1), 0, bit)
    return code


class _Runner:
    """One swarm run on this rank: fresh start or restore, the time loop, checks, checkpoints."""

    def __init__(self, deck, comm, ckpt, partial_output=None):
        self.deck, self.comm, self.ckpt = deck, comm, ckpt
        self.partial_output = partial_output       # where to write the output if the run halts
        self.model = deck_model(deck)
        self.method = build_method(deck, self.model, self.comm)
        # a method may run its swarm on a model of its own (friction-langevin: the one-state
        # mean-force surface of mqcd/friction/langevin.py)
        self.model = getattr(self.method, "swarm_model", None) or self.model
        self.conservation = getattr(self.method, "energy_conservation", "trajectory")
        r = deck.run
        self.dt, self.ntraj = r["dt"], r["trajectories"]
        self.nsteps = _nsteps(r)
        self.stride = deck.output["stride"]
        self.ckpt_every = deck.output["checkpoint_every"] if ckpt is not None else 0
        self.radius = r["exit_radius"] or self.model.interaction_radius
        # coupled methods (fields over the whole swarm) can ask for the check after every step,
        # so one failed trajectory cannot spread NaN through the fields before it is caught
        self.check_each_step = bool(getattr(self.method, "nonfinite_check_every_step", False))
        self.n_alive = self.ntraj
        self.dropped = {"index": [], "time": [], "quantity": []}
        self.stop_reason = "t_end"
        self.last_ckpt = -1
        self.first_step = 0
        self.rec = Recorder(self.method, comm, self.ntraj)
        self.rec.extra["diagnostics/dropped"] = "1"
        self.signals = None                        # StopSignals while inside run()
        self.may_save = ckpt is not None           # False: an earlier run's checkpoint is kept
        self.exit_eta = None                       # exit rule: time the slowest needs to leave
        self.t0, self.restarted = time.perf_counter(), False

    # ------------------------------------------------------------------ start
    def start(self):
        self.sw = build_swarm(self.deck, self.model, self.method, self.comm)
        self.check_and_record()

    def restore(self, ck):
        """Continue from checkpoint ``ck`` (read on rank 0; None on the other ranks)."""
        comm, model = self.comm, self.model
        meta = comm.bcast(None if not comm.is_root else {
            "step": ck.step, "attrs": ck.attrs, "records": ck.records, "units": ck.units,
            "dropped": ck.dropped, "names": sorted(ck.arrays), "n": ck.ntraj})
        counts = block_counts(meta["n"], comm.size)
        loc = {name: comm.scatter_rows(ck.arrays[name] if comm.is_root else None, counts)
               for name in meta["names"]}
        attrs = meta["attrs"]
        x = loc["swarm/x"]
        _preflight(model, x, comm, f"at the checkpoint's positions (t = {meta['step'] * self.dt:g})",
                   require_finite=False)         # non-finite rows are the run's own business
        H, dH = model.allocate(x.shape[0])
        model.evaluate_into(x, H, dH)
        sw = Swarm(x=x, p=loc["swarm/p"], rho=loc["swarm/rho"], masses=model.masses,
                   keys=loc["swarm/keys"], index=loc["swarm/index"], H=H, dH=dH,
                   H_prev=np.empty_like(H), active=loc["swarm/active"], dt=self.dt)
        sw.step = meta["step"]
        sw.counters = {k.split("/", 1)[1]: v for k, v in loc.items() if k.startswith("counters/")}
        E, V = loc.get("swarm/E"), loc.get("swarm/V")
        sw.E, sw.V = (None if E is None else E.copy()), (None if V is None else V.copy())
        sw.adiabatic_step = int(attrs["adiabatic_step"])
        sw.E0 = loc.get("swarm/E0")
        sw.weight = loc.get("swarm/weight")
        sw.info = sampling_report(self.deck, model)
        self.method.setup(sw)                      # scratch arrays; F, P are overwritten below
        sw.F = loc["swarm/F"]
        sw.E, sw.V, sw.adiabatic_step = E, V, int(attrs["adiabatic_step"])
        self.method.load_state_dict({k.split("/", 1)[1]: v for k, v in loc.items()
                                     if k.startswith("method/")})
        self.sw = sw
        recs = meta["records"]
        nrec = len(next(iter(recs.values()))) if recs else 0
        self.rec.rows = [{k: v[i] for k, v in recs.items()} for i in range(nrec)]
        self.rec.extra.update(meta["units"])
        self.n_alive = meta["n"]
        dr = meta["dropped"]
        self.dropped = {k: list(np.asarray(dr.get(k, []))) for k in self.dropped}
        self.stop_reason = "exit" if attrs.get("exited") else "t_end"
        self.last_ckpt = self.first_step = sw.step
        if not attrs.get("post_step_done", True) and sw.step % self.stride == 0:
            self.stride_point()                    # the checks of the step the run stopped at

    # ------------------------------------------------------------------ the loop
    def loop(self, progress=None):
        """Step until t_end (or the exit rule); ``progress``: a :class:`mqcd.runtime.Progress`
        (rank 0) or None."""
        sw = self.sw
        while sw.step < self.nsteps and self.stop_reason != "exit":
            step0 = sw.step
            try:
                self.method.step(sw, self.dt)
            except Exception as exc:
                err = _model_error(self.model, exc, self._where(step0 + 1))
                if err is None:
                    raise
                raise err from exc
            at_stride = sw.step % self.stride == 0
            if at_stride:
                self.stride_point()
            elif self.check_each_step:
                self.check_nonfinite()
            if progress is not None and (at_stride or self.check_each_step):
                progress.update(sw.step, self.n_alive, self.drift_now(), self.estimated_end())
            if self.ckpt_every and sw.step % self.ckpt_every == 0:
                self.save("periodic")
            if self.signals is not None:
                signum = self.signals.requested(self.comm, at_stride or self.check_each_step)
                if signum:
                    self.halt_on_signal(signum)
        if self.ckpt_every and self.last_ckpt != sw.step:
            self.save("final")                     # lets a later restart extend t_end
        if not self.rec.rows or self.rec.rows[-1]["time"] != sw.t:
            self.check_and_record()                # end of run between two stride points
            self.check_exit()
            self.check_energy()

    def _where(self, step):
        sw = self.sw
        block = (f"trajectories {int(sw.index[0])}..{int(sw.index[-1])}" if sw.ntraj else
                 "no trajectories")
        rank = f" on MPI rank {self.comm.rank}" if self.comm.size > 1 else ""
        return f"in step {step} (t = {step * self.dt:g} a.u.; {block}{rank})"

    def stride_point(self):
        self.check_and_record()
        self.check_exit()
        self.check_energy()

    def check_exit(self):
        if self.deck.run["stop"] == "exit":
            inside, self.exit_eta = _exit_status(self.sw, self.radius, self.comm)
            if not inside:
                self.stop_reason = "exit"

    def estimated_end(self):
        """Estimated last step under the exit rule (None: t_end, or unknown)."""
        if self.exit_eta is None or not math.isfinite(self.exit_eta):
            return None
        return self.sw.step + int(math.ceil(self.exit_eta / self.dt))

    # ------------------------------------------------------------------ energy drift
    def energy_measure(self, row):
        """The drift the tolerance applies to (hartree): mean |E_i(t) - E_i(0)| for methods that
        conserve each trajectory's energy, |<E>(t) - <E>(0)| for those that conserve the total."""
        if self.conservation == "ensemble":
            return abs(float(row.get("energy/ensemble_drift", 0.0)))
        return float(row.get("energy/drift_mean", 0.0))

    def drift_now(self):
        return self.energy_measure(self.rec.rows[-1]) if self.rec.rows else None

    def energy_report(self):
        """Result attributes: conservation kind, tolerance, largest drift, first time past it."""
        tol = float(self.deck.run["energy_tolerance"])
        vals = [self.energy_measure(r) for r in self.rec.rows]
        first = next((float(r["time"]) for r, v in zip(self.rec.rows, vals) if not v <= tol),
                     -1.0) if tol > 0 else -1.0
        worst = float(np.max(vals)) if vals else 0.0
        return {"energy_conservation": self.conservation, "energy_tolerance": tol,
                "energy_drift": worst, "energy_drift_exceeded_at": first}

    def check_energy(self):
        run = self.deck.run
        tol = run["energy_tolerance"]
        if tol <= 0 or run["on_energy_drift"] != "stop" or not self.rec.rows:
            return
        val = self.energy_measure(self.rec.rows[-1])
        if val <= tol:
            return
        what = ("mean |E_i(t) - E_i(0)| over trajectories" if self.conservation == "trajectory"
                else "|<E>(t) - <E>(0)| of the swarm")
        self.halt("energy_drift", EnergyDriftError,
                  f"energy drift {val:.3e} hartree ({what}) exceeds [run] energy_tolerance = "
                  f"{tol:g} hartree at t = {self.sw.t:g} a.u. (step {self.sw.step}): reduce dt, "
                  "check the model (mqcd check-model DECK), or raise the tolerance / set [run] "
                  "on_energy_drift = \"warn\" and continue with --restart")

    # ------------------------------------------------------------------ stopping early
    def halt_on_signal(self, signum):
        name = StopSignals.name(signum)
        self.halt(f"signal {name}", RunInterrupted,
                  f"interrupted by {name} at t = {self.sw.t:g} a.u. (step {self.sw.step} of "
                  f"{self.nsteps})", signum=signum)

    def halt(self, reason, error, message, **kw):
        """Stop the run now (collective): checkpoint, partial output if asked, then raise
        ``error(message + what was saved)`` on every rank."""
        sw, notes = self.sw, []
        if self.ckpt is not None and self.may_save:
            try:
                if self.last_ckpt != sw.step:
                    self.save(reason)
                notes.append(f"the state is saved in {self.ckpt}; `mqcd run DECK --restart` "
                             "(mqcd.run(..., restart=True)) continues bit for bit")
            except OSError as exc:
                notes.append(f"the checkpoint could not be written ({exc})")
        elif self.ckpt is not None:
            notes.append(f"no checkpoint written: {self.ckpt} of an earlier run was left alone")
        else:
            notes.append("no checkpoint written (no output file was given)")
        if self.partial_output is not None:
            try:
                self.write_partial(reason)
                notes.append(f"the output so far is in {self.partial_output} (attribute "
                             "partial = true)")
            except Exception as exc:             # noqa: BLE001 - report, the state is saved
                notes.append(f"the partial output could not be written ({exc})")
        raise error(f"{message}; " + "; ".join(notes), **kw)

    def write_partial(self, reason):
        """Write the output of the run so far, marked ``partial`` (collective)."""
        sw = self.sw
        if not self.rec.rows or self.rec.rows[-1]["time"] != sw.t:
            self.rec.n = self.n_alive
            self.rec.record(sw)
            self.rec.rows[-1]["diagnostics/dropped"] = len(self.dropped["index"])
        res = self.result(time.perf_counter() - self.t0, self.restarted)
        if self.comm.is_root:
            res.attrs.update(partial=True, stop_reason=reason)
        self.comm.root_call(lambda: write_result(self.partial_output, res, force=True))

    def check_and_record(self):
        self.check_nonfinite()
        self.rec.n = self.n_alive                  # ensemble means over surviving trajectories
        self.rec.record(self.sw)
        self.rec.rows[-1]["diagnostics/dropped"] = len(self.dropped["index"])

    # ------------------------------------------------------------------ non-finite numbers
    def check_nonfinite(self):
        sw, comm = self.sw, self.comm
        code = np.zeros(0, np.int64)
        bad = np.zeros(0, np.int64)
        if sw.ntraj and not _all_finite(sw):
            code = nonfinite_rows(sw)
            bad = np.nonzero(code)[0]
        if not comm.any(bad.size > 0):
            return
        idx = comm.allgather_rows(sw.index[bad].astype(np.int64))
        codes = comm.allgather_rows(code[bad])
        t = sw.t
        listing = "; ".join(f"#{i} ({_quantities(c)})" for i, c in zip(idx[:10], codes[:10]))
        listing += f"; ... ({idx.size - 10} more)" if idx.size > 10 else ""
        what = (f"non-finite values (NaN/inf) at t = {t:g} a.u. (step {sw.step}; checked every "
                f"{self.stride} steps) in {idx.size} trajector{'y' if idx.size == 1 else 'ies'} "
                f"(global index, quantity): {listing}")
        if self.deck.run["on_nonfinite"] == "stop":
            if self.ckpt is not None:
                self.save("nonfinite", post_step_done=False)
                saved = (f"The run stopped and saved its state to {self.ckpt}. Set [run] "
                         "on_nonfinite = \"drop\" to remove such trajectories (`mqcd run DECK "
                         "--restart` then continues from the checkpoint)")
            else:
                saved = ("The run stopped (no checkpoint: no output file was given). Set [run] "
                         "on_nonfinite = \"drop\" to remove such trajectories")
            raise NonFiniteError(f"{what}. {saved}, or reduce dt / check the model "
                                 "(mqcd check-model DECK)")
        keep = np.ones(sw.ntraj, np.bool_)
        keep[bad] = False
        self.select(keep)
        self.dropped["index"] += idx.tolist()
        self.dropped["time"] += [t] * idx.size
        self.dropped["quantity"] += codes.tolist()
        self.n_alive -= idx.size
        if self.n_alive == 0:
            raise NonFiniteError(f"{what}; every trajectory has now been dropped, nothing is left "
                                 "to propagate")
        if comm.is_root:
            warnings.warn(f"dropped {what}; {self.n_alive} trajectories remain",
                          DroppedTrajectoriesWarning, stacklevel=2)

    def select(self, keep):
        """Keep only the local trajectories where ``keep`` is True (swarm and method state)."""
        sw = self.sw
        for name in SWARM_ROWS + _RECOMPUTED:
            v = getattr(sw, name)
            if v is not None:
                setattr(sw, name, np.ascontiguousarray(v[keep]))
        sw.counters = {k: v[keep] for k, v in sw.counters.items()}
        state = self.method.state_dict()
        if state:
            self.method.load_state_dict({k: np.ascontiguousarray(v[keep])
                                         for k, v in state.items()})

    # ------------------------------------------------------------------ checkpoints
    def save(self, reason, post_step_done=True):
        """Gather the state on rank 0 and write the checkpoint atomically (collective)."""
        sw, comm = self.sw, self.comm
        arrays = {f"swarm/{n}": getattr(sw, n) for n in SWARM_ROWS if getattr(sw, n) is not None}
        arrays.update({f"counters/{k}": v for k, v in sw.counters.items()})
        arrays.update({f"method/{k}": v for k, v in self.method.state_dict().items()})
        full = {k: comm.gather_rows(np.asarray(arrays[k])) for k in sorted(arrays)}
        if comm.is_root:
            rows = self.rec.rows
            if rows and sw.step % self.stride and rows[-1]["time"] == sw.t:
                rows = rows[:-1]                   # an end-of-run row, not on the stride grid
            records = {k: np.array([r[k] for r in rows]) for k in (rows[0] if rows else {})}
            units = {k: UNITS.get(k, self.rec.extra.get(k, "")) for k in records}
            ck = Checkpoint(step=sw.step, deck_text=self.deck.text, deck_dict=self.deck.as_dict(),
                            arrays=full, records=records, units=units,
                            dropped={"index": np.array(self.dropped["index"], np.int64),
                                     "time": np.array(self.dropped["time"], np.float64),
                                     "quantity": np.array(self.dropped["quantity"], np.int64)},
                            attrs={"mqcd_version": __version__, "method": self.method.name,
                                   "model": self.model.name, "trajectories": self.ntraj,
                                   "alive": self.n_alive, "ranks": comm.size,
                                   "adiabatic_step": sw.adiabatic_step,
                                   "post_step_done": post_step_done,
                                   "exited": self.stop_reason == "exit", "reason": reason,
                                   "time": sw.t, **model_fingerprint(self.model)})
        comm.root_call(lambda: write_checkpoint(self.ckpt, ck))
        self.last_ckpt = sw.step

    # ------------------------------------------------------------------ result
    def finish_output(self, output, res, force):
        """Write the output (rank 0; collective). If that fails, keep the results (the checkpoint,
        else a file in the temporary or home folder) and raise OutputWriteError saying where."""
        comm, sw = self.comm, self.sw
        err = comm.root_call(_try_write, output, res, force)
        if not err:
            return
        notes = []
        if self.ckpt is not None and self.may_save:
            try:
                if self.last_ckpt != sw.step:
                    self.save("rescue")
                raise OutputWriteError(
                    f"could not write the output {output} ({err}); the results are not lost: the "
                    f"final state is kept in the checkpoint {self.ckpt}. Once {output} can be "
                    "written, `mqcd run DECK --restart` (mqcd.run(..., restart=True)) writes it "
                    "from there without computing again")
            except OSError as exc:
                notes.append(f"the checkpoint {self.ckpt} could not be written either ({exc})")
        path = comm.root_call(_rescue_write, output, res)
        notes.append(f"the results were written to {path} instead: move it to {output}" if path
                     else "the results could not be written anywhere else either (temporary and "
                     "home folders tried): free some space and run again")
        raise OutputWriteError(f"could not write the output {output} ({err}); " + "; ".join(notes))

    def result(self, wall, restarted):
        sw, comm, model, method = self.sw, self.comm, self.model, self.method
        run_cfg = self.deck.run
        ndrop = len(self.dropped["index"])
        attrs = {
            "mqcd_version": __version__, "method": method.name, "model": model.name,
            "deck": self.deck.text, "seed": run_cfg["seed"], "trajectories": self.ntraj,
            "nstates": model.nstates, "ndof": model.ndof, "dt": self.dt, "steps": sw.step,
            "stop_reason": self.stop_reason, "wall_time_s": wall, "ranks": comm.size,
            "scattering": bool(model.scattering), "dropped": ndrop, **self.energy_report(),
            "stop_rule": run_cfg["stop"], "alive": self.n_alive,
        }
        if restarted:
            attrs["restarted_from_step"] = self.first_step
        est = getattr(method, "estimator", None)
        if est is not None and getattr(est, "all_pairs_steps", 0):
            attrs["fields_all_pairs_steps"] = int(est.all_pairs_steps)
            attrs["fields_all_pairs_reason"] = str(est.all_pairs_reason)
        if getattr(method, "bohm_max", None) is not None:
            attrs["bohm_stiffness_max"] = float(method.bohm_max)
            at = getattr(method, "bohm_unstable_at", None)
            attrs["bohm_unstable_at"] = -1.0 if at is None else float(at)
        if model.scattering:
            attrs["inside_at_end"], _ = _exit_status(sw, self.radius, comm, count=True)
            attrs["exit_radius"] = float(self.radius)
        res = Result(attrs=attrs)
        self.rec.to_result(res)
        res.add("diagnostics/dropped_index", np.array(self.dropped["index"], np.int64), "1")
        res.add("diagnostics/dropped_time", np.array(self.dropped["time"], np.float64),
                "atomic_unit_of_time")
        res.add("diagnostics/dropped_quantity", np.array(self.dropped["quantity"], np.int64),
                "1")     # bit mask: 1 x, 2 p, 4 rho
        weights = method.state_weights(sw)
        if model.scattering:
            t, r = branching(sw.x[:, 0], weights, comm, self.n_alive, sw.weight)
            res.add("branching/transmission", t, "1")
            res.add("branching/reflection", r, "1")
        from .electronic.adiabatic import to_adiabatic
        _, V = sw.ensure_adiabatic()
        finals = {"final/trajectory": (sw.index, "1"),      # coordinate: global index = stream
                  "final/position": (sw.x, "bohr"),
                  "final/momentum": (sw.p, UNITS["nuclear/momentum_mean"]),
                  "final/rho_adiabatic": (to_adiabatic(sw.rho, V), "1"),
                  "final/rho_diabatic": (sw.rho, "1"),
                  "final/state_weights": (weights, "1"),
                  "final/energy_drift": (method.potential_energy(sw) + sw.kinetic_energy()
                                         + method.energy_extra(sw) - sw.E0, "hartree")}
        if sw.weight is not None:
            finals["final/weight"] = (sw.weight, "1")
        finals.update(method.final_records(sw, comm))
        for name, (arr, unit, dims) in sampling_records(getattr(sw, "info", {})).items():
            res.add(name, arr, unit, dims)   # the same on every rank (computed redundantly)
        for name, (arr, unit) in finals.items():
            arr = comm.gather_rows(arr)
            if comm.is_root:
                res.add(name, arr, unit)
        return res


def _load_for_restart(path, deck, nsteps, output, fingerprint):
    ck = read_checkpoint(path)                     # verifies the checksums
    check_restart(ck, deck, path, nsteps, fingerprint)
    if output is not None:
        check_writable(output, force=True)         # the output directory must exist, writable
    return ck


def _check_fresh(runner, output, force):
    """Rank 0, before a fresh run computes: the output and the checkpoint may be written, and an
    earlier run's checkpoint is not replaced without ``force``."""
    ckpt = runner.ckpt
    if output is not None:
        check_writable(output, force)
    if ckpt is not None and ckpt.exists():
        if not force and (runner.ckpt_every or output is not None):
            raise FileExistsError(f"checkpoint {ckpt} of an earlier run exists: continue that run "
                                  "with --restart (restart=True), or use --force (force=True) to "
                                  "start afresh and replace it")
        if runner.ckpt_every:
            warnings.warn(f"starting afresh: the checkpoint {ckpt} of an earlier run will be "
                          "replaced (use --restart / restart=True to continue from it)",
                          RuntimeWarning, stacklevel=4)
        return bool(force or runner.ckpt_every)    # False: leave the earlier checkpoint alone
    if ckpt is not None and runner.ckpt_every:
        probe_folder(ckpt, "checkpoint")
    return True


def _check_resources(runner, output, comm, restart):
    """Refuse now a run that cannot fit in memory (every rank, its node) or on disk (rank 0)."""
    deck, model = runner.deck, runner.model
    n = runner.ntraj
    start, stop = comm.local_range(n)
    nrec = runner.nsteps // runner.stride + 2 if deck.run["stop"] == "time" else 0
    parts = swarm_memory(model, n, stop - start, nrec=nrec, method=runner.method,
                         checkpoints=bool(runner.ckpt_every) or restart, root=comm.is_root)
    ranks = ranks_on_this_node(comm)
    if parts["records"] > parts["swarm"] + parts["final"]:
        key = (f"[run] t_end = {deck.run['t_end']:g} with dt = {deck.run['dt']:g} and [output] "
               f"stride = {runner.stride} ({nrec} records)")
        hint = "record less often (a larger [output] stride) or shorten t_end"
    else:
        key = f"[run] trajectories = {n}"
        hint = ("reduce [run] trajectories, or spread the swarm over more nodes with mpiexec "
                "(each rank holds its share)")
    msg = ""
    try:
        refuse_if_too_big(parts, key, hint, ranks=ranks)
        if comm.is_root and output is not None:
            out_b, ck_b = swarm_disk(model, n, nrec)
            what = f"the output {output}" + (" and its checkpoint" if runner.ckpt_every else "")
            refuse_if_disk_full(Path(output).parent, out_b + (ck_b if runner.ckpt_every else 0),
                                what)
    except ResourceError as exc:
        msg = str(exc)
    msg = _first_message(comm, msg)
    if msg:
        raise mark_collective(ResourceError(msg))


def _lock_targets(runner, output):
    targets = [Path(output)] if output is not None else []
    ckpt = runner.ckpt
    if ckpt is not None and (output is None or ckpt != checkpoint_path(output)):
        base = Path(str(ckpt)[:-len(".ckpt")]) if str(ckpt).endswith(".ckpt") else ckpt
        if runner.ckpt_every or output is not None:
            targets.append(base)
    return targets


def _try_write(output, res, force):
    """Write the output on rank 0; '' on success, else the reason (never raises)."""
    try:
        write_result(output, res, force=force)
        return ""
    except Exception as exc:                       # noqa: BLE001 - kept, reported below
        return f"{type(exc).__name__}: {exc}"


def _rescue_write(output, res):
    """Write the result somewhere else after the output failed: the system's temporary folder,
    then the home folder. Returns the path written, or ''."""
    name = f"{Path(output).name}.rescued-{int(time.time())}.h5"
    for folder in (Path(tempfile.gettempdir()), Path.home()):
        try:
            return str(write_result(folder / name, res, force=False))
        except Exception:                          # noqa: BLE001 - try the next folder
            continue
    return ""


def run(deck, output=None, force=False, progress=False, comm=None, restart=False,
        checkpoint=None, partial_output=False, progress_interval=DEFAULT_INTERVAL):
    """Run the swarm described by ``deck`` (path, TOML text, dict or Deck).

    Parameters
    ----------
    deck : str | Path | dict | Deck
        The input deck; validated before anything runs.
    output : str | Path, optional
        Write the result to this HDF5 file as well (refused if it exists, unless ``force`` or
        ``restart``). The file is locked for the whole run (``OUTPUT.lock``): a second run of the
        same output refuses before computing, naming the holder's pid.
    force : bool
        Replace an existing output file and an earlier run's checkpoint.
    progress : bool or {"auto", "bar", "log", "none"}
        Progress on MPI rank 0: a tqdm bar, or a line every ``progress_interval`` seconds on
        logger ``mqcd.progress`` (step, time, trajectory-steps/s, ETA, energy drift); True means
        "auto" (a bar on a terminal, lines otherwise). See :mod:`mqcd.runtime.progress`.
    comm : Comm, optional
        Communicator; default ``mqcd.parallel.get_comm()`` (MPI when started by mpirun/mpiexec).
    restart : bool
        Continue from the checkpoint instead of starting afresh. The deck may differ from the
        checkpointed one only in ``[run] t_end`` (to extend the run), ``[run] on_nonfinite``,
        ``energy_tolerance``, ``on_energy_drift``, ``[output] checkpoint_every`` and ``[output]
        file``; anything else is refused with a DeckError naming the change, and so is a
        checkpoint whose checksums do not match or whose user model file changed. The continued
        run gives bit-for-bit the result of an uninterrupted one. An existing output file is
        replaced.
    checkpoint : str | Path, optional
        Checkpoint file; default ``OUTPUT.ckpt`` next to ``output``, or, when ``output`` is None,
        next to the deck file's ``[output] file``; a deck given as a dict or TOML text with no
        ``output`` and no ``checkpoint`` writes no checkpoint (and cannot restart). Written every
        ``[output] checkpoint_every`` steps, at the end of the run when that is > 0, and when
        the run stops early (non-finite numbers with ``on_nonfinite = "stop"``, an energy drift
        with ``on_energy_drift = "stop"``, SIGINT/SIGTERM).
    partial_output : bool
        When the run stops early on a signal or on the energy drift, also write ``output`` with
        the results so far, marked by the attribute ``partial = True``.
    progress_interval : float
        Seconds between progress lines.

    Returns
    -------
    Result or None
        On rank 0 (and in serial runs): time series (``time`` in a.u., populations, energies in
        hartree, ...) and final per-trajectory arrays; see docs/output.md. On the other MPI
        ranks: None (rank 0 holds the whole result and writes the file).

    Raises
    ------
    DeckError
        Invalid deck, refused restart, or a run that cannot fit in memory / on disk
        (:class:`mqcd.runtime.ResourceError`, with the estimate and the key).
    ModelError
        The model fails its check at the initial positions, or raised while evaluated (the
        message names the file, line, step and trajectories).
    LockedError
        Another run holds the output.
    NonFiniteError, EnergyDriftError, RunInterrupted
        The run stopped early (non-finite numbers, energy drift with ``"stop"``, SIGINT or
        SIGTERM); the message says what was saved and how to continue.
    OutputWriteError
        The output could not be written at the end; the message says where the results are.
    """
    deck = _as_deck(deck)
    if not deck.method:
        raise DeckError("[method] section is missing (name = one of the methods); "
                        "for the grid reference use mqcd.exact / `mqcd exact`")
    mode = resolve_mode(progress)
    comm = comm or get_comm()
    if checkpoint is not None:
        ckpt = Path(checkpoint)
    elif output is not None:
        ckpt = checkpoint_path(output)
    elif deck.path is not None:
        ckpt = checkpoint_path(deck.output_path())
    else:
        ckpt = None                              # library run of a dict/text deck: no files
        if restart:
            raise DeckError("restart=True needs the output file (or checkpoint=) of the run to "
                            "continue: its checkpoint is OUTPUT.ckpt")
    runner = _Runner(deck, comm, ckpt,             # deterministic: fails alike on every rank
                     partial_output=Path(output) if (partial_output and output is not None)
                     else None)
    try:
        with comm.guard():
            return _run(runner, output, force, mode, comm, restart, progress_interval)
    except Exception as exc:
        exc.mqcd_rank = comm.rank              # lets a front end print rank 0's message only
        raise


def _run(runner, output, force, mode, comm, restart, interval):
    deck, ckpt = runner.deck, runner.ckpt
    runner.restarted = restart
    targets = _lock_targets(runner, output)
    lock = comm.root_call(RunLock, targets, share=False) if targets else None
    try:
        if not restart:
            runner.may_save = comm.root_call(_check_fresh, runner, output, force)
        _check_resources(runner, output, comm, restart)
        with StopSignals() as signals:
            runner.signals = signals
            if restart:
                ck = comm.root_call(_load_for_restart, ckpt, deck, runner.nsteps, output,
                                    model_fingerprint(runner.model), share=False)
                runner.restore(ck)
                del ck
            else:
                if comm.is_root and deck.output["checkpoint_every"] and ckpt is None:
                    warnings.warn("[output] checkpoint_every is ignored: the deck is not a file and "
                                  "no output= or checkpoint= path was given", RuntimeWarning,
                                  stacklevel=3)
                runner.start()
            progress = None
            if comm.is_root and mode != "none":
                progress = Progress(mode, runner.nsteps, runner.sw.step, runner.dt,
                                    f"{runner.method.name}/{runner.model.name}", interval,
                                    deck.run["energy_tolerance"])
            try:
                runner.loop(progress)
            finally:
                if progress is not None:
                    progress.close(runner.sw.step)
            res = runner.result(time.perf_counter() - runner.t0, restart)
            if output is not None:
                runner.finish_output(output, res, force or restart)
        if comm.is_root:
            for msg in run_problems(res.attrs):
                warnings.warn(msg, RunProblemWarning, stacklevel=3)
        return res if comm.is_root else None
    finally:
        if lock is not None:
            lock.release()


def run_exact_file(deck, output=None, force=False, progress=None):
    """Run the exact grid reference of ``deck`` and write it to ``output`` (``mqcd exact``).

    Before computing: the memory the grid needs is checked against what is available (refused
    with the estimate and the keys that set it), the output is locked (``OUTPUT.lock``) and
    probed for writing. A write failure at the end keeps the result in a fallback file and says
    where.

    Parameters
    ----------
    deck : str | Path | dict | Deck
        The deck (validated with ``for_exact=True``).
    output : str | Path, optional
        Output HDF5 file; default ``[output] file``, or the deck name (+ ``_exact``) with .h5.
    force : bool
        Replace an existing output file.
    progress : callable, optional
        ``progress(t, t_end)`` after every output time (a.u. of time).

    Returns
    -------
    (Result, Path)
        The result and the file written.
    """
    from .exact import exact_plan, run_exact
    from .io.deck import exact_initial_problem
    from .runtime.resources import exact_memory
    deck = _as_deck(deck, for_exact=True)
    problem = exact_initial_problem(deck.initial)
    if problem:
        raise DeckError(problem)
    if output is None:
        stem_exact = deck.path is not None and deck.path.stem.endswith("exact")
        output = deck.output_path("" if deck.output["file"] or stem_exact else "_exact")
    out = Path(output)
    plan, _, _ = exact_plan(deck)
    run_cfg = deck.run
    nrec = (int(run_cfg["t_end"] / (deck.output["stride"] * run_cfg["dt"])) + 2
            if run_cfg["stop"] == "time" else 0)
    need = exact_memory(plan, deck_model(deck), deck.exact.get("store_density", True), nrec)
    pts = " x ".join(str(n) for n in plan.npoints)
    refuse_if_too_big(need, f"the exact grid of {pts} points ([exact] points / dx / box)",
                      "use fewer points (a larger [exact] dx or fewer [exact] points, a smaller box)"
                      + (", or store_density = false" if need["density"] else ""))
    with RunLock([out], what="exact run"):
        check_writable(out, force)
        res = run_exact(deck, progress=progress)
        try:
            write_result(out, res, force=force)
        except OSError as exc:
            path = _rescue_write(out, res)
            raise OutputWriteError(f"could not write the output {out} ({exc}); "
                                   + (f"the results were written to {path} instead: move it to "
                                      f"{out}" if path else "the results could not be written "
                                      "anywhere else either")) from None
    return res, out
