"""Ensemble observables recorded during a swarm run (local sums reduced over MPI ranks).

Each record stores, at time t: adiabatic and diabatic populations (ensemble mean of rho's
diagonal), kinetic/potential/total energy means, the worst per-trajectory energy drift
|E_i(t) - E_i(0)|, its mean over trajectories and the mean signed drift <E(t) - E(0)> (exact sums, so
independent of the MPI decomposition; the tolerance of ``[run] energy_tolerance`` applies to the
first for methods with ``energy_conservation = "trajectory"`` and to the second for "ensemble"),
position and momentum means, the decoherence indicator (ensemble mean of
sum_{n<m} |rho^ad_nm|^2), the ensemble standard deviations of the adiabatic populations and of the
indicator over trajectories (``*_std``; the standard error of the mean is std / sqrt(N)), the
smallest purity Tr(rho^2) and the largest trace error |Tr rho - 1|.
Trajectories with statistical weights (``Swarm.weight``, e.g. the canonical ensemble over several
surfaces, ``[initial] sampling = "gibbs"``) enter every mean as sum_i w_i A_i / sum_i w_i.
"""
import numpy as np
from numba import njit


UNITS = {
    "time": "atomic_unit_of_time",
    "populations/adiabatic": "1",
    "populations/diabatic": "1",
    "energy/total": "hartree",
    "energy/kinetic": "hartree",
    "energy/potential": "hartree",
    "energy/drift_max": "hartree",
    "energy/drift_mean": "hartree",
    "energy/ensemble_drift": "hartree",
    "nuclear/position_mean": "bohr",
    "nuclear/momentum_mean": "electron_mass * bohr / atomic_unit_of_time",
    "coherence/indicator": "1",
    "populations/adiabatic_std": "1",
    "coherence/indicator_std": "1",
    "diagnostics/purity_min": "1",
    "diagnostics/trace_error_max": "1",
    "trajectories/active": "1",
}


@njit(cache=True)
def _rho_rows(rho, V, rows):
    """Per-trajectory contributions: rows[i, :ns] adiabatic and rows[i, ns:2ns] diabatic
    populations, rows[i, 2ns + 2] the coherence sum (columns 2ns, 2ns+1 are left to the caller).
    Returns the min purity and max trace error. The caller sums the rows with
    ``comm.sum_rows`` (exact, so the means do not depend on the number of MPI ranks)."""
    n, ns, _ = rho.shape
    pmin = np.inf
    terr = 0.0
    ad = np.empty((ns, ns), dtype=np.complex128)
    tmp = np.empty((ns, ns), dtype=np.complex128)
    for i in range(n):
        tr = 0.0
        pur = 0.0
        coh = 0.0
        for a in range(ns):
            rows[i, ns + a] = rho[i, a, a].real
            tr += rho[i, a, a].real
            for b in range(ns):
                pur += abs(rho[i, a, b]) ** 2
        for a in range(ns):            # tmp = V^dagger rho, then ad = tmp V (upper): 2 ns^3
            for l in range(ns):
                acc = 0j
                for k in range(ns):
                    acc += np.conj(V[i, k, a]) * rho[i, k, l]
                tmp[a, l] = acc
        for a in range(ns):
            for b in range(a, ns):
                acc = 0j
                for l in range(ns):
                    acc += tmp[a, l] * V[i, l, b]
                ad[a, b] = acc
            rows[i, a] = ad[a, a].real
            for b in range(a + 1, ns):
                coh += abs(ad[a, b]) ** 2
        rows[i, 2 * ns + 2] = coh
        pmin = min(pmin, pur)
        terr = max(terr, abs(tr - 1.0))
    return pmin, terr


class Recorder:
    """Accumulates the time series of one run."""

    def __init__(self, method, comm, ntraj_total):
        self.method = method
        self.comm = comm
        self.n = ntraj_total
        self.rows = []
        self.extra = {}
        from .transfer import BUDGET_UNITS, Budget
        self.budget = Budget(method)          # energy/momentum budgets (mqcd/analysis/transfer.py)
        self.extra.update(BUDGET_UNITS)
        self.store = None                     # [output] trajectories: mqcd/conservation/store.py
        deck = getattr(method, "deck", None)
        if deck is not None and deck.output.get("trajectories"):
            from ..conservation.store import TrajectoryStore
            self.store = TrajectoryStore(method.model)

    def record(self, sw):
        E, V = sw.ensure_adiabatic()
        ns, D = sw.rho.shape[1], sw.x.shape[1]
        rows = np.empty((sw.ntraj, 2 * ns + 6 + 2 * D))
        pmin, terr = _rho_rows(sw.rho, V, rows)
        kin = sw.kinetic_energy()
        pot = self.method.potential_energy(sw)
        tot = kin + pot + self.method.energy_extra(sw)
        if sw.E0 is None:
            sw.E0 = tot.copy()
        de = tot - sw.E0
        drift = np.max(np.abs(de)) if sw.ntraj else 0.0
        rows[:, 2 * ns], rows[:, 2 * ns + 1] = kin, pot
        rows[:, 2 * ns + 3:2 * ns + 3 + D], rows[:, 2 * ns + 3 + D:-3] = sw.x, sw.p
        rows[:, -3], rows[:, -2], rows[:, -1] = tot, np.abs(de), de
        # second moments of the adiabatic populations and of the indicator (ensemble spread)
        sq = np.concatenate([rows[:, :ns], rows[:, 2 * ns + 2:2 * ns + 3]], axis=1) ** 2
        bud = self.budget.columns(sw)
        allr = np.concatenate([rows, sq, bud], axis=1)
        w = getattr(sw, "weight", None)
        if w is not None:     # weighted ensemble (e.g. gibbs): sum_i w_i A_i / sum_i w_i
            allr = np.concatenate([allr * w[:, None], w[:, None]], axis=1)
        sums = self.comm.sum_rows(allr)                                   # exact sums: rank
        maxs = self.comm.max(np.array([drift, -pmin if sw.ntraj else -np.inf, terr]))
        norm = self.n if w is None else sums[-1]                          # independent
        s2 = sums[rows.shape[1]:rows.shape[1] + sq.shape[1]] / norm
        s = sums[:rows.shape[1]] / norm
        nb = rows.shape[1] + sq.shape[1]
        b = sums[nb:nb + bud.shape[1]] / norm
        spread = np.sqrt(np.clip(s2 - np.append(s[:ns], s[2 * ns + 2]) ** 2, 0.0, None))
        row = {"time": sw.t,
               "populations/adiabatic": s[:ns], "populations/diabatic": s[ns:2 * ns],
               "energy/kinetic": s[2 * ns], "energy/potential": s[2 * ns + 1],
               "energy/total": s[-3],
               "energy/drift_mean": s[-2], "energy/ensemble_drift": s[-1],
               "coherence/indicator": s[2 * ns + 2],
               "populations/adiabatic_std": spread[:ns], "coherence/indicator_std": spread[ns],
               "nuclear/position_mean": s[2 * ns + 3:2 * ns + 3 + D],
               "nuclear/momentum_mean": s[2 * ns + 3 + D:-3],
               "energy/drift_max": maxs[0], "diagnostics/purity_min": -maxs[1],
               "diagnostics/trace_error_max": maxs[2]}
        row.update(self.budget.values(b))
        for name, (val, unit) in self.method.extra_records(sw, self.comm).items():
            row[name] = val
            self.extra[name] = unit
        self.rows.append(row)
        if self.store is not None:
            self.store.record(sw, self.comm)

    def to_result(self, result):
        for name in self.rows[0]:
            result.add(name, np.array([r[name] for r in self.rows]),
                       UNITS.get(name, self.extra.get(name, "")))
        if self.store is not None:
            self.store.to_result(result)
        return result


def branching(x0, weights, comm, ntraj, trajectory_weight=None):
    """Transmitted (x_0 > 0) and reflected (x_0 < 0) probability per adiabatic state.

    weights (N, ns): per-trajectory state weights (populations for mean-field methods, the active
    state for surface hopping). A trajectory exactly at x_0 = 0 counts half on each side.
    trajectory_weight (N,): statistical weights of the trajectories (None: equal); the
    probabilities are then sum_i w_i (...) / sum_i w_i.
    """
    side = np.where(x0 > 0, 1.0, np.where(x0 < 0, 0.0, 0.5))
    rows = np.concatenate([side[:, None] * weights, (1.0 - side)[:, None] * weights], axis=1)
    if trajectory_weight is None:
        s = comm.sum_rows(rows) / ntraj                      # exact sums (rank independent)
    else:
        w = np.asarray(trajectory_weight, dtype=np.float64)
        s = comm.sum_rows(np.concatenate([rows * w[:, None], w[:, None]], axis=1))
        s = s[:-1] / s[-1]
    ns = weights.shape[1]
    return s[:ns], s[ns:]
