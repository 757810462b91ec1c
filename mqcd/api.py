"""The library entry points: ``mqcd.run`` (swarm dynamics), ``mqcd.exact`` (grid reference).

The data flow is one direction: deck -> validated config -> model + initial swarm -> time loop
(fields, electronic step, nuclear step, hops/decoherence, record) -> Result -> HDF5.
"""
from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import numpy as np

from ._version import __version__
from .analysis.observables import UNITS, Recorder, branching
from .ensemble.initial import initial_swarm
from .ensemble.swarm import Swarm
from .io.deck import Deck, DeckError, deck_model, read_deck
from .io.checkpoint import (Checkpoint, check_restart, checkpoint_path, read_checkpoint,
                            write_checkpoint)
from .io.results import Result, check_writable, write_result
from .methods import build_method
from .parallel import CollectiveError, block_counts, get_comm


def _as_deck(deck, **kw):
    return deck if isinstance(deck, Deck) else read_deck(deck, **kw)


def _nsteps(run):
    n = run["t_end"] / run["dt"]
    return int(math.ceil(n - 1e-9))


def _exited(sw, radius, comm):
    """True when every trajectory has |x_0| > radius and moves outward (along dof 0)."""
    x0, p0 = sw.x[:, 0], sw.p[:, 0]
    inside = np.any((np.abs(x0) <= radius) | (x0 * p0 < 0))
    return not comm.any(inside)


def build_swarm(deck, model, method, comm):
    """Initial swarm for this rank's block of trajectories."""
    start, stop = comm.local_range(deck.run["trajectories"])
    index = np.arange(start, stop)
    keys, x, p, rho = initial_swarm(deck, model, index)
    H, dH = model.allocate(index.size)
    model.evaluate_into(x, H, dH)
    sw = Swarm(x=x, p=p, rho=rho, masses=model.masses, keys=keys, index=index, H=H, dH=dH,
               H_prev=np.empty_like(H), active=np.full(index.size, deck.initial["state"], np.int64),
               dt=deck.run["dt"])
    method.setup(sw)
    return sw


# Per-trajectory Swarm fields (first axis = local trajectory) saved in checkpoints and restricted
# when trajectories are dropped; H, dH, H_prev are recomputed from x on restart.
SWARM_ROWS = ("index", "keys", "x", "p", "rho", "active", "F", "E0", "E", "V")
_RECOMPUTED = ("H", "dH", "H_prev")
NONFINITE_BITS = {"x": 1, "p": 2, "rho": 4}


class NonFiniteError(CollectiveError, RuntimeError):
    """A trajectory produced NaN/inf with ``[run] on_nonfinite = "stop"`` (raised on every rank)."""


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

    def __init__(self, deck, comm, ckpt):
        self.deck, self.comm, self.ckpt = deck, comm, ckpt
        self.model = deck_model(deck)
        self.method = build_method(deck, self.model, self.comm)
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
    def loop(self, bar=None):
        sw, t_loop = self.sw, time.perf_counter()
        while sw.step < self.nsteps and self.stop_reason != "exit":
            self.method.step(sw, self.dt)
            at_stride = sw.step % self.stride == 0
            if at_stride:
                self.stride_point()
            elif self.check_each_step:
                self.check_nonfinite()
            if bar is not None and (at_stride or self.check_each_step):
                bar.update(sw.step - bar.n)
                el = time.perf_counter() - t_loop
                rate = (sw.step - self.first_step) * self.n_alive / max(el, 1e-9)
                bar.set_postfix_str(f"{rate:.3g} traj-steps/s", refresh=False)
            if self.ckpt_every and sw.step % self.ckpt_every == 0:
                self.save("periodic")
        if self.ckpt_every and self.last_ckpt != sw.step:
            self.save("final")                     # lets a later restart extend t_end
        if not self.rec.rows or self.rec.rows[-1]["time"] != sw.t:
            self.check_and_record()                # end of run between two stride points
            self.check_exit()

    def stride_point(self):
        self.check_and_record()
        self.check_exit()

    def check_exit(self):
        if self.deck.run["stop"] == "exit" and _exited(self.sw, self.radius, self.comm):
            self.stop_reason = "exit"

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
            warnings.warn(f"dropped {what}; {self.n_alive} trajectories remain", RuntimeWarning,
                          stacklevel=2)

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
                                   "time": sw.t})
        comm.root_call(lambda: write_checkpoint(self.ckpt, ck))
        self.last_ckpt = sw.step

    # ------------------------------------------------------------------ result
    def result(self, wall, restarted):
        sw, comm, model, method = self.sw, self.comm, self.model, self.method
        run_cfg = self.deck.run
        ndrop = len(self.dropped["index"])
        attrs = {
            "mqcd_version": __version__, "method": method.name, "model": model.name,
            "deck": self.deck.text, "seed": run_cfg["seed"], "trajectories": self.ntraj,
            "nstates": model.nstates, "ndof": model.ndof, "dt": self.dt, "steps": sw.step,
            "stop_reason": self.stop_reason, "wall_time_s": wall, "ranks": comm.size,
            "scattering": bool(model.scattering), "dropped": ndrop,
        }
        if restarted:
            attrs["restarted_from_step"] = self.first_step
        res = Result(attrs=attrs)
        self.rec.to_result(res)
        res.add("diagnostics/dropped_index", np.array(self.dropped["index"], np.int64), "1")
        res.add("diagnostics/dropped_time", np.array(self.dropped["time"], np.float64),
                "a.u. of time")
        res.add("diagnostics/dropped_quantity", np.array(self.dropped["quantity"], np.int64),
                "bit mask: 1 x, 2 p, 4 rho")
        weights = method.state_weights(sw)
        if model.scattering:
            t, r = branching(sw.x[:, 0], weights, comm, self.n_alive)
            res.add("branching/transmission", t, "1")
            res.add("branching/reflection", r, "1")
        from .electronic.adiabatic import to_adiabatic
        _, V = sw.ensure_adiabatic()
        finals = {"final/position": (sw.x, "bohr"), "final/momentum": (sw.p, "a.u."),
                  "final/rho_adiabatic": (to_adiabatic(sw.rho, V), "1"),
                  "final/rho_diabatic": (sw.rho, "1"),
                  "final/state_weights": (weights, "1"),
                  "final/energy_drift": (method.potential_energy(sw) + sw.kinetic_energy()
                                         + method.energy_extra(sw) - sw.E0, "hartree")}
        finals.update(method.final_records(sw, comm))
        for name, (arr, unit) in finals.items():
            arr = comm.gather_rows(arr)
            if comm.is_root:
                res.add(name, arr, unit)
        return res


def _load_for_restart(path, deck, nsteps, output):
    ck = read_checkpoint(path)
    check_restart(ck, deck, path, nsteps)
    if output is not None:
        check_writable(output, force=True)         # the output directory must exist
    return ck


def run(deck, output=None, force=False, progress=False, comm=None, restart=False,
        checkpoint=None):
    """Run the swarm described by ``deck`` (path, TOML text, dict or Deck).

    Parameters
    ----------
    deck : str | Path | dict | Deck
        The input deck; validated before anything runs.
    output : str | Path, optional
        Write the result to this HDF5 file as well (refused if it exists, unless ``force`` or
        ``restart``).
    progress : bool
        Show a tqdm progress bar (steps, trajectory-steps per second), on MPI rank 0 only.
    comm : Comm, optional
        Communicator; default ``mqcd.parallel.get_comm()`` (MPI when started by mpirun/mpiexec).
    restart : bool
        Continue from the checkpoint instead of starting afresh. The deck may differ from the
        checkpointed one only in ``[run] t_end`` (to extend the run), ``[run] on_nonfinite``,
        ``[output] checkpoint_every`` and ``[output] file``; anything else is refused with a
        DeckError naming the change. The continued run gives bit-for-bit the result of an
        uninterrupted one. An existing output file is replaced.
    checkpoint : str | Path, optional
        Checkpoint file; default ``OUTPUT.ckpt`` next to ``output``, or, when ``output`` is None,
        next to the deck file's ``[output] file``; a deck given as a dict or TOML text with no
        ``output`` and no ``checkpoint`` writes no checkpoint (and cannot restart). Written every
        ``[output] checkpoint_every`` steps, at the end of the run when that is > 0, and when
        the run stops on non-finite numbers (``[run] on_nonfinite = "stop"``).

    Returns
    -------
    Result or None
        On rank 0 (and in serial runs): time series (``time`` in a.u., populations, energies in
        hartree, ...) and final per-trajectory arrays; see docs/output.md. On the other MPI
        ranks: None (rank 0 holds the whole result and writes the file).

    Raises
    ------
    NonFiniteError
        ``[run] on_nonfinite = "stop"`` and a trajectory's x, p or rho became NaN/inf; the
        message names the trajectories, quantities and time, and a checkpoint was written.
    """
    deck = _as_deck(deck)
    if not deck.method:
        raise DeckError("[method] section is missing (name = one of the methods); "
                        "for the grid reference use mqcd.exact / `mqcd exact`")
    comm = comm or get_comm()
    t0 = time.perf_counter()
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
    runner = _Runner(deck, comm, ckpt)         # deterministic: fails alike on every rank
    try:
        with comm.guard():
            return _run(runner, output, force, progress, comm, restart, t0)
    except Exception as exc:
        exc.mqcd_rank = comm.rank              # lets a front end print rank 0's message only
        raise


def _run(runner, output, force, progress, comm, restart, t0):
    deck, ckpt = runner.deck, runner.ckpt
    if restart:
        ck = comm.root_call(_load_for_restart, ckpt, deck, runner.nsteps, output, share=False)
        runner.restore(ck)
        del ck
    else:
        if output is not None:
            comm.root_call(check_writable, output, force)
        if comm.is_root and deck.output["checkpoint_every"] and ckpt is None:
            warnings.warn("[output] checkpoint_every is ignored: the deck is not a file and no "
                          "output= or checkpoint= path was given", RuntimeWarning, stacklevel=3)
        if comm.is_root and runner.ckpt_every and ckpt.exists():
            warnings.warn(f"starting afresh: the checkpoint {ckpt} of an earlier run will be "
                          "replaced (use --restart / restart=True to continue from it)",
                          RuntimeWarning, stacklevel=3)
        runner.start()
    bar = None
    if progress and comm.is_root:
        from tqdm import tqdm
        bar = tqdm(total=runner.nsteps, initial=runner.sw.step, unit="step", leave=True,
                   desc=f"{runner.method.name}/{runner.model.name}", smoothing=0.1,
                   disable=None, mininterval=0.5)
    try:
        runner.loop(bar)
    finally:
        if bar is not None:
            bar.close()
    res = runner.result(time.perf_counter() - t0, restart)
    if not comm.is_root:
        return None
    if output is not None:
        write_result(output, res, force=force or restart)
    return res
