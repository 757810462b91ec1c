"""The published CTMQC ingredients as switchable parts of mqcd's route (b) (docs/theory/fields.md,
section "Route (b) and CTMQC").

Route (b) (mqcd/electronic/coherence.py) gives each trajectory ``d_j rho = i [F_j, rho]`` from
its accumulated adiabatic forces ``f_nj = -int d_j E_n dt`` (bohr^-1). In the adiabatic basis,
with ``P_nm = |rho_nm|^2``, ``Df_nm = f_n - f_m`` and a (pair-)osmotic velocity ``u_nm``
(bohr per a.u. of time, ``u_nm = u_mn``), the quantum-coupling correction of ``ehrenfest-qc`` is

    G_nm = i (u_nm . Df_nm) rho_nm                       (Hermitian, hartree)
    (-i [G, rho])_nn = 2 sum_m (u_nm . Df_nm) P_nm       (population rate, 1/a.u. time)
    F_k = sum_nm P_nm (u_nm . Df_nm) Df_nm,k              (force, hartree/bohr)

which for ``u_nm = u = -(1/2) xi d ln n`` is exactly ``u . grad rho`` and ``2 u . g`` of MB Table II
(``g_kj = (1/2) sum_nm P_nm Df_nm,k Df_nm,j`` for a pure state). ``G`` is built from the
adiabatic projectors, so it is independent of eigenvector phases (no NAC sign alignment).

Parts (``[method]`` keys of ``ehrenfest-qc`` and ``fssh-coupled`` on the trajectory route):

* ``quantum_momentum = "osmotic"`` (mqcd): ``u_nm = u - c`` with the swarm-constant shift of the
  population constraint (ladder.py, ``_population_shift``);
  ``"pair-centre"`` (CTMQC: Min, Agostini & Gross, PRL 115, 073001 (2015); Agostini, Min,
  Abedi & Gross, JCTC 12, 2127 (2016)): the quantum momentum of the sum of Gaussians is linear
  in x, ``Q = -(1/2) d ln n = alpha_I (x_I - R0_I)``, and each pair (n, m) gets one centre
  ``R0_nm,j = sum_I alpha_Ij x_Ij Df_nm,Ij P_nm,I / sum_I alpha_Ij Df_nm,Ij P_nm,I`` so that the
  swarm-summed n <-> m transfer of the correction vanishes in every dof (no net transfer without
  couplings); ``u_nm = alpha (x - R0_nm) / M``. Where the denominator vanishes (no coherence
  anywhere) the trajectory's own ``u`` is used.
* ``force_reset = "population"`` (what the published codes do): a trajectory's accumulated forces
  are set to zero once one adiabatic population exceeds ``1 - reset_threshold`` (the
  trajectory has decohered; its phase memory is discarded, so a later coupling region starts
  afresh), and a state whose population is below ``reset_threshold`` gets the population-weighted
  mean force of the others (it no longer contributes a phase difference). ``"never"`` (mqcd's
  original): ``f`` is the whole history, which is what the semiclassical phase gradient is.
* ``qc_force = "energy"`` (the idea of CTMQC-E, Villaseco Arribas & Maitra, JCP 158, 161105
  (2023): redefine the accumulated force in the coupled-trajectory *force* so that energy is
  conserved): the force is the one along the momentum whose power cancels the electronic energy
  change of the correction on every trajectory, ``F = -(sum_nm P_nm (u_nm.Df_nm)(E_n - E_m))
  M v / (M v.v)``, i.e. ``Df_nm`` in the force replaced by ``-(E_n - E_m) M v / (M v.v)`` (the
  momentum difference of two surfaces at equal energy). Near turning points the nuclei cannot pay
  for an electronic energy change, so there the correction (G and F together) is scaled by
  ``T / (T + qc_energy_floor)``: the correction then conserves each trajectory's energy exactly at
  every T in continuous time; what the time step leaves is removed after every step by rescaling
  the momentum along itself (``restore_energy``). ``"gradient"``: ``2 u . g`` (MB Table II).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..electronic.adiabatic import to_adiabatic, to_diabatic
from ..io.schema import Key, non_negative, positive

CTMQC_KEYS = {
    "quantum_momentum": Key("str", "auto", "route (b): osmotic velocity of the quantum "
                            "coupling: 'osmotic' (u = -(1/2) xi d ln n with the population "
                            "constraint) or 'pair-centre' (CTMQC's pair-specific quantum-momentum "
                            "centres, Agostini et al. JCTC 12, 2127 (2016)); 'auto': "
                            "ehrenfest-qc pair-centre, fssh-coupled osmotic; "
                            "docs/theory/fields.md", choices=("auto", "osmotic", "pair-centre")),
    "qmom_slope": Key("str", "mode", "quantum_momentum = 'pair-centre': slope alpha of the "
                      "linear quantum momentum alpha (x - R0): 'mode' (1/(2 s^2) with s the "
                      "spread of the trajectory's mode, field_method = 'modes', or of the swarm: "
                      "each packet as one Gaussian) or 'kernel' (CTMQC's sum of Gaussians, "
                      "(1/2) sum K/h^2 / sum K; needs field_method = 'modes' or one fixed "
                      "bandwidth)", choices=("mode", "kernel")),
    "force_reset": Key("str", "auto", "route (b): reset of the accumulated adiabatic forces: "
                       "'never' or 'population' (zero once a population exceeds 1 - "
                       "reset_threshold, as the published CTMQC codes); 'auto': ehrenfest-qc "
                       "population, fssh-coupled never", choices=("auto", "never", "population")),
    "reset_threshold": Key("float", 0.01, "force_reset = 'population': the populations' "
                           "threshold", check=lambda v: None if 0 < v < 0.5 else
                           "must be in (0, 0.5)"),
    "accumulated_force": Key("str", "history", "route (b): the per-state momenta f_n whose "
                             "differences are the coherence phase gradient: 'history' (f_n = "
                             "-int d E_n dt, CTMQC) or 'energy-shell' (the trajectory's momentum "
                             "rescaled to the kinetic energy on surface n at the same total "
                             "energy; no memory); docs/theory/fields.md",
                             choices=("history", "energy-shell")),
    "qc_force": Key("str", "auto", "route (b): force of the quantum coupling: 'gradient' "
                    "(2 u.g, MB Table II) or 'energy' (CTMQC-E idea: the force along the "
                    "momentum that conserves each trajectory's energy); 'auto': ehrenfest-qc "
                    "energy, otherwise gradient", choices=("auto", "gradient", "energy")),
    "qmom_distance": Key("float", 10.0, "quantum_momentum = 'pair-centre': a trajectory farther "
                         "than this many of its widths s = (2 alpha)^(-1/2) from a pair's centre "
                         "R0 (in any dof) uses its own osmotic velocity for that pair instead "
                         "(where the centre's denominator nearly cancels, R0 wanders hundreds of "
                         "bohr away and the transfer rate spikes); 0: no limit; "
                         "docs/theory/fields.md", check=non_negative),
    "qmom_far": Key("str", "osmotic", "qmom_distance > 0: what a trajectory beyond the distance "
                    "gets for that pair: 'osmotic' (its own osmotic velocity u) or 'zero' (no "
                    "quantum momentum for the pair, the centre put at the trajectory as the "
                    "published codes do)", choices=("osmotic", "zero")),
    "qc_step_fraction": Key("float", 0.0, "qc_force = 'energy': if > 0, the correction of a "
                            "trajectory is scaled so that one step raises (qc_step_limit) its "
                            "electronic energy by at most this fraction of its kinetic energy "
                            "(then every "
                            "trajectory's energy can be restored by the momentum rescaling: at 0.25 "
                            "it was to round-off on the branching cases, at 0.5-1 to 1e-4-1e-2 "
                            "hartree, docs/validation_ladder.md; 0: no limit, energy restored "
                            "where the kinetic energy suffices); docs/theory/fields.md",
                            check=non_negative),
    "qc_step_limit": Key("str", "uphill", "qc_step_fraction > 0: which steps it limits: "
                         "'uphill' (only those that raise the electronic energy, i.e. take it "
                         "from the nuclei; energy handed to the nuclei can always be paid) or "
                         "'both' (every step, whatever the sign)", choices=("uphill", "both")),
    "qc_energy_floor": Key("float", 1e-4, "qc_force = 'energy': near turning points the "
                           "correction is scaled by T / (T + qc_energy_floor) so that the "
                           "nuclei can pay for it (energy conserved at every T)", "hartree",
                           check=positive),
}


#: what "auto" means for ehrenfest-qc (chosen from the validation, docs/validation_ladder.md)
#: and for the other methods (mqcd's original route (b))
AUTO = {"ehrenfest-qc": {"quantum_momentum": "pair-centre", "force_reset": "population",
                         "qc_force": "energy", "field_method": "modes"},
        None: {"quantum_momentum": "osmotic", "force_reset": "never", "qc_force": "gradient"}}


def resolve(opts, name, route):
    """The route-(b) options with "auto" resolved for method ``name`` (dict copy)."""
    out = dict(opts)
    table = AUTO.get(name, AUTO[None]) if route == "trajectory" else AUTO[None]
    for key in ("quantum_momentum", "force_reset", "qc_force"):
        if out.get(key) == "auto":
            out[key] = table.get(key, AUTO[None][key])
    return out


def restore_energy(sw, potential):
    """Rescale each trajectory's momentum (along itself) so that its energy ``T + potential``
    equals the value after the previous step (kept in ``sw.counters["qc_energy"]``, which is
    checkpointed and restricted with the swarm). The force of ``qc_force = "energy"`` conserves
    energy in continuous time; this removes what the time step leaves (the electronic step uses
    the extrapolated correction, the force the current one), so the correction cannot pump
    energy where the rates are fast. A trajectory without the kinetic energy to pay keeps its
    momentum and restarts its reference (counted in ``sw.counters["qc_energy_frustrated"]``).
    Returns the number of frustrated trajectories."""
    T = 0.5 * np.sum(sw.p * sw.p / sw.masses, axis=1)
    E = T + potential
    ref = sw.counters.get("qc_energy")
    if ref is None or ref.shape != E.shape:
        sw.counters["qc_energy"] = E.copy()
        sw.counters["qc_energy_frustrated"] = np.zeros(E.shape)
        return 0
    Tn = T - (E - ref)
    ok = (Tn > 0.0) & (T > 0.0)
    scale = np.sqrt(np.where(ok, Tn, 1.0) / np.where(ok, T, 1.0))
    sw.p *= scale[:, None]
    sw.counters["qc_energy"] = np.where(ok, ref, E)
    sw.counters["qc_energy_frustrated"] = sw.counters.get(
        "qc_energy_frustrated", np.zeros(E.shape)) + ~ok
    return int((~ok).sum())


def energy_shell_momenta(p, masses, E, rho_a):
    """``f_n = p sqrt(max(1 + (E_el - E_n) / T, 0))`` (N, D, ns), bohr^-1: the trajectory's
    momentum rescaled to the kinetic energy it would have on surface n at the same total energy
    (``E_el = sum_n rho_nn E_n``, ``T = sum_j p_j^2 / 2 M_j``); closed surfaces get 0."""
    M = np.asarray(masses, dtype=np.float64)
    T = 0.5 * np.sum(p * p / M[None, :], axis=1)
    pop = np.real(np.einsum("inn->in", rho_a))
    E_el = np.sum(pop * E, axis=1)
    ratio = 1.0 + (E_el[:, None] - E) / np.maximum(T, 1e-300)[:, None]
    return p[:, :, None] * np.sqrt(np.maximum(ratio, 0.0))[:, None, :]


def reset_forces(fmom, rho_a, threshold):
    """Apply the population reset to ``fmom`` (N, D, ns) in place; ``rho_a`` (N, ns, ns)
    adiabatic. Returns the number of trajectories fully reset."""
    pop = np.real(np.einsum("inn->in", rho_a))
    full = np.any(pop > 1.0 - threshold, axis=1)
    fmom[full] = 0.0
    low = (pop < threshold) & ~full[:, None]
    if np.any(low):
        w = np.where(low, 0.0, pop)
        mean = np.einsum("ijn,in->ij", fmom, w) / np.maximum(w.sum(axis=1), 1e-300)[:, None]
        rows, states = np.nonzero(low)
        fmom[rows, :, states] = mean[rows]
    return int(full.sum())


def adiabatic(rho, V):
    """``V^dagger rho V`` (N, ns, ns) (:func:`mqcd.electronic.adiabatic.to_adiabatic`)."""
    return to_adiabatic(np.ascontiguousarray(rho), np.ascontiguousarray(V))


def pair_differences(fmom):
    """``Df[i, j, n, m] = f_n - f_m`` (N, D, ns, ns)."""
    return fmom[:, :, :, None] - fmom[:, :, None, :]


def pair_centre_velocity(comm, x, alpha, u, P, Df, masses, groups=None, n_groups=1,
                         distance=0.0, far="osmotic"):
    """CTMQC's pair-specific osmotic velocities ``u_nm`` (N, D, ns, ns) (module docstring).

    Exact rank-independent swarm sums (``comm.sum_rows``). ``alpha`` (N, D) bohr^-2, ``u`` (N, D),
    ``P`` (N, ns, ns), ``Df`` (N, D, ns, ns). ``groups`` (N,) int in ``0..n_groups-1`` (the modes
    of :mod:`mqcd.fields.density`) or None: one centre per pair *and group*, so that the transfer
    vanishes within every packet and no centre lies between separated packets. ``distance`` > 0:
    a trajectory with ``abs(x - R0) > distance * (2 alpha)^(-1/2)`` in some dof uses ``u`` for
    that pair (``far = "osmotic"``) or none (``far = "zero"``; the centre is meaningless for
    it; the published codes cap it the same way).
    Returns ``(u_nm, R0 (n_groups, D, ns, ns))``."""
    N, D, ns, _ = Df.shape
    g = np.zeros(N, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    C = int(n_groups) if groups is not None else 1
    x = np.ascontiguousarray(x, dtype=np.float64)
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    Df = np.ascontiguousarray(Df, dtype=np.float64)
    P = np.ascontiguousarray(P, dtype=np.float64)
    rows = np.zeros((N, C, 3, D, ns, ns))
    _pair_rows(x, alpha, Df, P, g, rows)
    s = comm.sum_rows(rows.reshape(N, -1)).reshape(C, 3, D, ns, ns)
    num, den, scale = s[:, 0], s[:, 1], s[:, 2]
    # a centre is defined where the weights do not cancel (|sum a| > 1e-10 sum |a|); it may lie
    # outside its packet (then the transfer has one sign across it); clipping it to the packet's
    # extent was tried and degraded the double arch (docs/validation_ladder.md)
    ok = np.abs(den) > 1e-10 * np.maximum(scale, 1e-300)
    R0 = np.where(ok, num / np.where(ok, den, 1.0), 0.0)              # (C, D, ns, ns)
    xi = 1.0 / np.asarray(masses, dtype=np.float64)
    unm = np.empty((N, D, ns, ns))
    _pair_velocity(x, alpha, np.ascontiguousarray(u, dtype=np.float64), R0, ok, g, xi,
                   float(distance), far == "zero", unm)
    return unm, R0


@njit(cache=True)
def _pair_rows(x, alpha, Df, P, g, rows):
    """Rows of the centre sums: ``a x``, ``a`` and ``|a|`` with ``a = alpha Df P`` in the block of
    each trajectory's group (``rows`` (N, C, 3, D, ns, ns), zero elsewhere)."""
    N, D, ns, _ = Df.shape
    for i in range(N):
        c = g[i]
        for j in range(D):
            for n in range(ns):
                for m in range(ns):
                    a = alpha[i, j] * Df[i, j, n, m] * P[i, n, m]
                    rows[i, c, 0, j, n, m] = a * x[i, j]
                    rows[i, c, 1, j, n, m] = a
                    rows[i, c, 2, j, n, m] = abs(a)


@njit(cache=True)
def _pair_velocity(x, alpha, u, R0, ok, g, xi, distance, far_zero, unm):
    """``u_nm = xi alpha (x - R0_nm)`` per trajectory and pair; the trajectory's own ``u`` where
    the pair's centre is undefined, and beyond ``distance`` widths of it ``u`` or zero."""
    N, D, ns, _ = unm.shape
    for i in range(N):
        c = g[i]
        for n in range(ns):
            for m in range(ns):
                near = True
                if distance > 0.0:
                    for j in range(D):
                        width = np.sqrt(0.5 / alpha[i, j])
                        if not abs(x[i, j] - R0[c, j, n, m]) <= distance * width:
                            near = False
                for j in range(D):
                    if not ok[c, j, n, m]:
                        unm[i, j, n, m] = u[i, j]
                    elif near:
                        unm[i, j, n, m] = xi[j] * alpha[i, j] * (x[i, j] - R0[c, j, n, m])
                    else:
                        unm[i, j, n, m] = 0.0 if far_zero else u[i, j]


def correction_and_force(rho_a, V, Df, unm, E, v, masses, qc_force, energy_floor, dt=None,
                         fraction=0.0, uphill_only=True):
    """``(G (N, ns, ns) diabatic, F (N, D))`` of the quantum coupling (module docstring).

    ``rho_a`` (N, ns, ns) adiabatic density matrices, ``V`` (N, ns, ns) eigenvectors, ``Df``
    (N, D, ns, ns) bohr^-1, ``unm`` (N, D, ns, ns) bohr per a.u. of time, ``E`` (N, ns) hartree,
    ``v`` (N, D) bohr per a.u. of time, ``masses`` (D,) electron masses.

    ``qc_force = "energy"``: the nuclei can pay for the correction's electronic energy change
    only while they move, so ``G`` is scaled by ``T / (T + energy_floor)`` and, with ``dt`` and
    ``fraction > 0`` given, further so that one step's electronic energy change is at most
    ``fraction`` of the trajectory's kinetic energy (a step cannot resolve faster transfer; it
    would demand energy the nuclei do not have; with ``uphill_only`` only steps that raise the
    electronic energy are limited); the force then conserves energy at every T.
    One compiled pass over the swarm (:func:`_correction_kernel`), then the back-transform."""
    N, D, ns, _ = Df.shape
    Ga = np.empty((N, ns, ns), dtype=np.complex128)
    F = np.empty((N, D))
    _correction_kernel(np.ascontiguousarray(rho_a), np.ascontiguousarray(Df),
                       np.ascontiguousarray(unm), np.ascontiguousarray(E, dtype=np.float64),
                       np.ascontiguousarray(v, dtype=np.float64),
                       np.ascontiguousarray(masses, dtype=np.float64), qc_force == "energy",
                       float(energy_floor), 0.0 if dt is None else float(dt),
                       float(fraction), bool(uphill_only), Ga, F)
    G = to_diabatic(Ga, np.ascontiguousarray(V))
    G = 0.5 * (G + np.conj(np.swapaxes(G, 1, 2)))
    return G, F


@njit(cache=True)
def _correction_kernel(rho_a, Df, unm, E, v, M, energy, floor, dt, fraction, uphill_only, Ga,
                       F):
    """Per trajectory: ``s_nm = u_nm . Df_nm``, the energy scaling ``lam`` (``energy``), the
    adiabatic correction ``Ga = i lam s rho_a`` and the force ``F`` (gradient or energy form)."""
    N, D, ns, _ = Df.shape
    s = np.empty((ns, ns))
    for i in range(N):
        for n in range(ns):
            for m in range(ns):
                acc = 0.0
                for j in range(D):
                    acc += unm[i, j, n, m] * Df[i, j, n, m]
                s[n, m] = acc
        lam = 1.0
        mv2 = 0.0
        power = 0.0
        if energy:
            for j in range(D):
                mv2 += M[j] * v[i, j] * v[i, j]
            lam = mv2 / (mv2 + 2.0 * floor)
            for n in range(ns):
                for m in range(ns):
                    r = rho_a[i, n, m]
                    power += (r.real * r.real + r.imag * r.imag) * s[n, m] * (E[i, n] - E[i, m])
            if dt > 0.0 and fraction > 0.0 and (power > 0.0 or not uphill_only):
                pe = abs(power) * lam
                lam = lam * min(1.0, fraction * 0.5 * mv2 / max(pe * dt, 1e-300))
            power *= lam
        for n in range(ns):
            for m in range(ns):
                Ga[i, n, m] = 1j * (lam * s[n, m]) * rho_a[i, n, m]
        if energy:
            c = -power / max(mv2, 1e-300)
            for k in range(D):
                F[i, k] = c * M[k] * v[i, k]
        else:
            for k in range(D):
                acc = 0.0
                for n in range(ns):
                    for m in range(ns):
                        r = rho_a[i, n, m]
                        acc += (r.real * r.real + r.imag * r.imag) * s[n, m] * Df[i, k, n, m]
                F[i, k] = acc
