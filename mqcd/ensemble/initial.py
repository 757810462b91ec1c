"""Initial conditions of the swarm: positions, momenta, electronic density matrices.

``wigner``: the Wigner distribution of a Gaussian wavepacket whose density |chi|^2 has standard
deviation ``width`` (bohr) per dof: x ~ N(x0, width^2), p ~ N(p0 + c (x - x0), (1/(2 width))^2)
(a.u.; c the chirp, bohr^-2), the minimum-uncertainty packet (hbar = 1) with the chirp's
position-momentum correlation.
``hydrodynamic``: fluid elements (MB, Lagrangian frame): positions distributed as the initial
density - in 1D the centroids of N equal-mass cells of the Gaussian (element I, global index, is
the cell between the quantiles I/N and (I + 1)/N, at x0 + width E[s | cell]; see
mqcd/fields/fluid.py), in D > 1 a scrambled Halton set (scipy.stats.qmc, seeded with the deck seed)
mapped through the inverse normal distribution per dof - and the local momentum of the packet,
p = dS/dx = p0 + c (x - x0) (no momentum spread: each element *is* a piece of the packet). Every
trajectory carries the same weight. Deterministic in the global index: independent of the number
of MPI ranks.
``fixed``: every trajectory at (x0, p0).
``wigner-thermal``, ``boltzmann``, ``gibbs``: thermal ensembles at ``[initial] temperature`` or
``kT`` (harmonic Wigner, classical canonical by MCMC, multi-surface canonical with weights
q_j = Z_j/Z): mqcd/ensemble/thermal.py.
The electronic state (mqcd/ensemble/electronic.py): by default the pure adiabatic state ``state``
at each trajectory's own position, rho = |state(x)><state(x)| (a projector, so no eigenvector
phase enters); ``basis = "diabatic"``, ``amplitudes`` or ``density_matrix`` give others.
"""
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.special
from scipy.stats import qmc

from . import thermal
from .electronic import initial_density
from .streams import STREAM_INITIAL, normals, trajectory_keys


def fluid_element_quantiles(indices, ntotal, D, seed=0):
    """Uniform numbers (n, D) in (0, 1) of the fluid elements with global ``indices`` (of
    ``ntotal``): the stratified midpoints (I + 1/2)/N in 1D, rows of a scrambled Halton set
    (seeded with ``seed``) in D > 1."""
    idx = np.asarray(indices, dtype=np.int64).ravel()
    if D == 1:
        return ((idx + 0.5) / ntotal)[:, None]
    if idx.size == 0:
        return np.empty((0, D))
    lo, hi = int(idx.min()), int(idx.max()) + 1
    gen = qmc.Halton(d=D, scramble=True, seed=np.random.default_rng(int(seed)))
    if lo:
        gen.fast_forward(lo)
    u = gen.random(hi - lo)[idx - lo]
    eps = 0.5 / ntotal
    return np.clip(u, eps, 1.0 - eps)


def sample_phase_space(initial, keys, indices=None, ntotal=None, seed=0):
    """Positions and momenta (n, D) for the trajectories with the given stream keys (and, for
    ``sampling = "hydrodynamic"``, global ``indices`` out of ``ntotal``)."""
    x0 = np.asarray(initial["position"], dtype=np.float64)
    p0 = np.asarray(initial["momentum"], dtype=np.float64)
    w = np.asarray(initial["width"], dtype=np.float64)
    c = np.asarray(initial.get("chirp") or np.zeros(x0.size), dtype=np.float64)
    n, D = keys.shape[0], x0.size
    kind = initial["sampling"]
    if kind == "fixed":
        return np.tile(x0, (n, 1)), np.tile(p0, (n, 1))
    if kind == "hydrodynamic":
        if indices is None or ntotal is None:
            raise ValueError("hydrodynamic sampling needs the global indices and the swarm size")
        if D == 1:
            # cell centroids of the equal-mass cells of the Gaussian (mqcd/fields/fluid.py)
            from ..fields.fluid import cell_labels
            s_elem, _ = cell_labels(np.full(ntotal, 1.0 / ntotal))
            x = x0 + w * s_elem[np.asarray(indices, dtype=np.int64)][:, None]
        else:
            x = x0 + w * scipy.special.ndtri(fluid_element_quantiles(indices, ntotal, D, seed))
        return x, p0 + c * (x - x0)
    g = normals(keys, STREAM_INITIAL, 2 * D, np.empty((n, 2 * D)))
    x = x0 + w * g[:, :D]
    p = p0 + c * (x - x0) + (0.5 / w) * g[:, D:]
    return x, p


@dataclass
class InitialConditions:
    """The initial swarm of this rank: stream keys, positions, momenta, density matrices, the
    active state of surface hopping, the statistical weights (None: equal) and the sampling
    report (diagnostics of the thermal samplers, :mod:`mqcd.ensemble.thermal`)."""
    keys: np.ndarray
    x: np.ndarray
    p: np.ndarray
    rho: np.ndarray
    active: np.ndarray
    weight: np.ndarray | None = None
    report: dict = field(default_factory=dict)


THERMAL = ("wigner-thermal", "boltzmann", "gibbs")


def initial_conditions(deck, model, indices):
    """:class:`InitialConditions` for the global trajectory ``indices``: phase space from
    ``[initial] sampling`` (the thermal kinds in :mod:`mqcd.ensemble.thermal`), the electronic
    state from ``basis``/``state``/``amplitudes``/``density_matrix``
    (:mod:`mqcd.ensemble.electronic`)."""
    ini, seed, ntot = deck.initial, deck.run["seed"], deck.run["trajectories"]
    keys = trajectory_keys(seed, indices)
    kind = ini["sampling"]
    state, weight, report = None, None, {}
    if kind in THERMAL:
        kT = thermal.kT_of(ini)
        report["kT"] = kT
        if kind == "wigner-thermal":
            x, p = thermal.wigner_thermal(model, ini, keys, kT)
        elif kind == "boltzmann":
            x, p, rep = thermal.boltzmann(model, ini, keys, indices, kT, seed, ntot)
            report.update(rep)
        else:
            x, p, state, weight, ens = thermal.gibbs(model, ini, keys, indices, kT, seed, ntot)
            report["gibbs"] = ens
    else:
        x, p = sample_phase_space(ini, keys, indices, ntot, seed)
    H, dH = model.allocate(len(indices))
    model.evaluate_into(x, H, dH)
    rho, active = initial_density(model, ini, H, keys, state)
    if np.any(np.asarray(indices) == 0):           # once per run: the rank holding trajectory 0
        for msg in sampling_warnings(report):
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return InitialConditions(keys, x, p, rho, active, weight, report)


def sampling_report(deck, model):
    """The sampling report of :func:`initial_conditions` without drawing any trajectory (a
    restarted run recomputes it, deterministically, for its output)."""
    ic = initial_conditions(deck, model, np.zeros(0, np.int64)) if \
        deck.initial["sampling"] in THERMAL else None
    return ic.report if ic is not None else {}


def initial_swarm(deck, model, indices):
    """(keys, x, p, rho) for the global trajectory ``indices`` (see :func:`initial_conditions`)."""
    ic = initial_conditions(deck, model, indices)
    return ic.keys, ic.x, ic.p, ic.rho


#: thresholds of the MCMC checks reported as warnings (docs/initial.md)
ESS_FRACTION_WARN = 0.2
RHAT_WARN = 1.05


def sampling_records(report):
    """Datasets ``{name: (array, unit, dims)}`` describing the thermal sampling of the run (the
    same on every rank): ``initial/kT``; for boltzmann the MCMC diagnostics; for gibbs the
    surfaces, q_j and their standard errors, the trajectory counts and weights, and per-surface
    diagnostics (one entry per MCMC chain set: ``mcmc_set`` axis)."""
    out = {}
    if "kT" in report:
        out["initial/kT"] = (np.float64(report["kT"]), "hartree", ())
    keys = ("ess", "samples", "tau_steps", "rhat", "acceptance", "step", "burn_in", "thinning",
            "chains")

    def diag(infos):
        for k in keys:
            out[f"initial/mcmc/{k}"] = (np.array([i[k] for i in infos]), "1", ("mcmc_set",))
    if "boltzmann" in report:
        diag([report["boltzmann"]])
    if "gibbs" in report:
        ens = report["gibbs"]
        g = ("gibbs_surface",)
        out["initial/gibbs_states"] = (np.asarray(ens.states, np.int64), "1", g)
        out["initial/gibbs_q"] = (ens.q, "1", g)
        out["initial/gibbs_q_se"] = (ens.q_se, "1", g)
        out["initial/gibbs_counts"] = (np.asarray(ens.counts, np.int64), "1", g)
        out["initial/gibbs_weights"] = (ens.weights, "1", g)
        diag(ens.diagnostics)
    return out


def sampling_warnings(report):
    """Messages for MCMC diagnostics past their thresholds (low effective sample size, R-hat)."""
    infos = [report["boltzmann"]] if "boltzmann" in report else (
        report["gibbs"].diagnostics if "gibbs" in report else [])
    msgs = []
    for k, i in enumerate(infos):
        where = f"MCMC of surface {k}" if len(infos) > 1 else "MCMC"
        if i["ess"] < ESS_FRACTION_WARN * i["samples"]:
            msgs.append(f"{where}: effective sample size {i['ess']:.0f} of {i['samples']} kept "
                        f"samples (autocorrelation time {i['tau_steps']:.1f} steps, thinning "
                        f"{i['thinning']}): increase [initial] mcmc_thinning")
        if i["rhat"] > RHAT_WARN:
            msgs.append(f"{where}: split R-hat {i['rhat']:.3f} > {RHAT_WARN} (chains not mixed): "
                        "increase [initial] mcmc_burn_in")
    return msgs
