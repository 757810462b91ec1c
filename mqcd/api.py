"""The library entry points: ``mqcd.run`` (swarm dynamics), ``mqcd.exact`` (grid reference).

The data flow is one direction: deck -> validated config -> model + initial swarm -> time loop
(fields, electronic step, nuclear step, hops/decoherence, record) -> Result -> HDF5.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ._version import __version__
from .analysis.observables import Recorder, branching
from .ensemble.initial import initial_swarm
from .ensemble.swarm import Swarm
from .io.deck import Deck, DeckError, deck_model, read_deck
from .io.results import Result, check_writable, write_result
from .methods import build_method
from .parallel import SerialComm, get_comm


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


def run(deck, output=None, force=False, progress=False, comm=None) -> Result:
    """Run the swarm described by ``deck`` (path, TOML text, dict or Deck).

    Parameters
    ----------
    deck : str | Path | dict | Deck
        The input deck; validated before anything runs.
    output : str | Path, optional
        Write the result to this HDF5 file as well (refused if it exists, unless ``force``).
    progress : bool
        Show a tqdm progress bar (steps, trajectory-steps per second).

    Returns
    -------
    Result
        Time series (``time`` in a.u., populations, energies in hartree, ...) and final
        per-trajectory arrays; see docs/output.md.
    """
    deck = _as_deck(deck)
    if not deck.method:
        raise DeckError("[method] section is missing (name = one of the methods); "
                        "for the grid reference use mqcd.exact / `mqcd exact`")
    comm = comm or get_comm()
    if output is not None and comm.is_root:
        check_writable(output, force)
    model = deck_model(deck)
    method = build_method(deck, model)
    run_cfg = deck.run
    dt, ntraj = run_cfg["dt"], run_cfg["trajectories"]
    nsteps = _nsteps(run_cfg)
    stride = deck.output["stride"]
    radius = run_cfg["exit_radius"] or model.interaction_radius

    t0 = time.perf_counter()
    sw = build_swarm(deck, model, method, comm)
    rec = Recorder(method, comm, ntraj)
    rec.record(sw)
    bar = None
    if progress and comm.is_root:
        from tqdm import tqdm
        bar = tqdm(total=nsteps, unit="step", desc=f"{method.name}/{model.name}", leave=True,
                   smoothing=0.1, disable=None, mininterval=0.5)
    t_loop = time.perf_counter()
    stop_reason = "t_end"
    while sw.step < nsteps:
        method.step(sw, dt)
        if sw.step % stride == 0 or sw.step == nsteps:
            rec.record(sw)
            if bar is not None:
                bar.update(sw.step - bar.n)
                el = time.perf_counter() - t_loop
                bar.set_postfix_str(f"{sw.step * ntraj / max(el, 1e-9):.3g} traj-steps/s")
            if run_cfg["stop"] == "exit" and _exited(sw, radius, comm):
                stop_reason = "exit"
                break
    if rec.rows[-1]["time"] != sw.t:
        rec.record(sw)
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - t0

    res = Result(attrs={
        "mqcd_version": __version__, "method": method.name, "model": model.name,
        "deck": deck.text, "seed": run_cfg["seed"], "trajectories": ntraj,
        "nstates": model.nstates, "ndof": model.ndof, "dt": dt, "steps": sw.step,
        "stop_reason": stop_reason, "wall_time_s": wall, "ranks": comm.size,
        "scattering": bool(model.scattering),
    })
    rec.to_result(res)
    weights = method.state_weights(sw)
    if model.scattering:
        t, r = branching(sw.x[:, 0], weights, comm, ntraj)
        res.add("branching/transmission", t, "1")
        res.add("branching/reflection", r, "1")
    from .electronic.adiabatic import to_adiabatic
    _, V = sw.ensure_adiabatic()
    finals = {"final/position": (sw.x, "bohr"), "final/momentum": (sw.p, "a.u."),
              "final/rho_adiabatic": (to_adiabatic(sw.rho, V), "1"),
              "final/rho_diabatic": (sw.rho, "1"),
              "final/state_weights": (weights, "1"),
              "final/energy_drift": (method.potential_energy(sw) + sw.kinetic_energy() - sw.E0,
                                     "hartree")}
    finals.update(method.final_records(sw, comm))
    for name, (arr, unit) in finals.items():
        res.add(name, comm.gather_rows(arr), unit)
    if output is not None and comm.is_root:
        write_result(output, res, force=force)
    return res
