"""The exact-factorisation ladder (Martinazzo & Burghardt, Table II) and coupled surface hopping.

Every method here is plain Ehrenfest (or FSSH) plus two switchable corrections computed from the
swarm fields (mqcd.fields, mqcd.electronic.geometry):

=========================  ===================================  ===================================
method                     electronic correction G (added to H)  force correction
=========================  ===================================  ===================================
geometric-ehrenfest        -(1/2) Delta_M rho                    -sum_i xi^ii d_i g_ki
ehrenfest-qc               sum_j u^j d_j rho                     2 sum_j u^j g_kj
geometric-ehrenfest-qc     both (= MB(67))                       both (= MB(64))
qhd                        both                                  both + quantum force MB(38)/(68)
fssh-coupled               u.grad rho (coupling="qc") or MB(67)  none (nuclei on the active surface)
=========================  ===================================  ===================================

with u^j = -(1/2) xi^jj d_j ln n, g_kj = Re Tr(rho d_k rho d_j rho). The combined row is the sum of
the two middle rows, which the implementation uses literally (one flag per correction).

Time discretisation: the fields are estimated once per step, at the end of the step (new positions,
new rho). The force correction uses them directly; the electronic correction over the next step
uses the second-order extrapolation G(t + dt/2) = (3 G(t) - G(t - dt))/2 (G(0) on the first step),
so one field estimate per step suffices. G is Hermitian, so the exact unitary step conserves trace
and purity to round-off. ``correction_scale`` multiplies every correction; 0 gives plain Ehrenfest
(resp. FSSH) to the last bit, which the tests check.

Regularisation: there is no threshold, clamp or reset. Where the density is small (swarm edges) the
Gaussian smearing keeps n > 0 and d ln n finite (bounded by the distance to the swarm over h^2);
the only regularisation is the documented bandwidth rule (``density_scale``,
``regression_scale``) and the ridge of the local regression (``ridge``), all deck keys.
"""
import dataclasses

import numpy as np

from ..electronic.adiabatic import adiabatic_gradients
from ..electronic.coherence import accumulate_forces, population_rates, trajectory_derivatives
from ..electronic.geometry import geometry_from_fields
from ..fields import FieldOptions, FieldWorkspace, estimate_fields
from ..fields.conservative import t2_conservative
from ..io.schema import DeckError, Key, non_negative, positive
from .base import Method
from .fssh import FSSH

FIELD_KEYS = {
    "rho_derivatives": Key("str", "auto", "route to the rho-field derivatives: 'regression' (local "
                           "quadratic regression of rho over neighbouring trajectories), "
                           "'trajectory' (per trajectory from the accumulated adiabatic forces, the "
                           "CTMQC coherence phase gradient; no neighbours), 'trajectory-basis' (the "
                           "same plus the derivative-coupling part), 'auto' (ehrenfest-qc: "
                           "trajectory; the others: regression). The trajectory routes give first "
                           "derivatives only, so not for the geometric methods; "
                           "docs/theory/fields.md",
                           choices=("auto", "regression", "trajectory", "trajectory-basis")),
    "population_constraint": Key("str", "auto", "shift the osmotic velocity by the smallest "
                                 "swarm-wide constant that makes the swarm-summed adiabatic "
                                 "population change of the correction vanish (no net transfer "
                                 "without couplings, as CTMQC's pair-specific quantum momentum): "
                                 "'on', 'off', 'auto' (on for the trajectory routes)",
                                 choices=("auto", "on", "off")),
    "constraint_ridge": Key("float", 1e-3, "regularisation of that shift, bohr^-1 per "
                            "trajectory (the shift is c = sum_n a_n b_n / (sum_n b_n^2 + "
                            "(N ridge)^2)); docs/theory/fields.md", check=non_negative),
    "correction_scale": Key("float", 1.0, "multiplies every swarm correction (0 = plain Ehrenfest/"
                            "FSSH to round-off)", check=non_negative),
    "field_method": Key("str", "auto", "field estimator path: 'grid' (binned FFT, D <= 3), 'tree' "
                        "(neighbour lists), 'pairs' (all pairs, small N), 'auto'",
                        choices=("auto", "grid", "tree", "pairs")),
    "density_scale": Key("float", 1.0, "multiplier of the normal-reference density bandwidth "
                         "(docs/theory/fields.md)", check=positive),
    "regression_scale": Key("float", 1.0, "multiplier of the normal-reference bandwidth of the "
                            "local quadratic regression of rho", check=positive),
    "ridge": Key("float", 0.1, "ridge of the local regression, in trajectories: the penalty equals "
                 "the kernel weight of this many trajectories at the target point", check=non_negative),
    "force_form": Key("str", "conservative", "estimator of the combined MB(64) force when both "
                      "corrections are on: 'conservative' (symmetric pairs; swarm average exactly "
                      "zero, fixed bandwidths) or 'pointwise' (from the local metric derivative)",
                      choices=("conservative", "pointwise")),
    "adaptive": Key("bool", False, "Abramson adaptive bandwidths (multi-modal swarms)"),
}


class SwarmFields:
    """The fields part: estimate n, d ln n (...), and the rho-field derivatives from the swarm.

    The estimators need every trajectory, so under MPI the positions and density matrices are
    all-gathered (one Allgatherv of N (D + ns^2) numbers per step) and every rank evaluates the
    fields on the whole swarm and keeps its own rows: coupled runs are then bit-for-bit equal to
    serial ones for any number of ranks (the propagation and hops are what runs in parallel).
    """

    def __init__(self, opts, masses, comm, need):
        self.basis = opts["rho_derivatives"] == "trajectory-basis"
        self.opts = FieldOptions(method=opts["field_method"], density_scale=opts["density_scale"],
                                 regression_scale=opts["regression_scale"], ridge=opts["ridge"],
                                 adaptive=opts["adaptive"],
                                 density_deriv=3 if "logn3" in need else 1)
        self.masses = masses
        self.comm = comm
        self.need = need
        self.need_density = tuple(n for n in need if not n.startswith("rho"))
        self.ws_route = {}
        self.ws_fields = FieldWorkspace()
        self.ws_geometry = FieldWorkspace()
        self.last = None

    def __call__(self, sw, conservative=False, fmom=None):
        """Return (FieldEstimate, Geometry, T2 or None) for this rank's trajectories.

        The conservative combined force needs the fields at every trajectory, so then every rank
        evaluates the whole swarm and keeps its rows; otherwise each rank evaluates only at its
        own trajectories (the per-trajectory regression work is split over the ranks). The
        estimator path is chosen from the global swarm size, so both ways give bit-for-bit the
        serial numbers.

        ``fmom`` (N_local, D, ns): accumulated adiabatic forces. When given, the rho-field
        derivatives come per trajectory from :mod:`mqcd.electronic.coherence` (route (b)) and
        only the density is estimated from the swarm.
        """
        comm = self.comm
        x_all = comm.allgather_rows(sw.x)
        opts = self.opts
        whole = conservative or comm.size == 1
        at = None if whole else sw.x
        sl = slice(None)
        if whole and comm.size > 1:
            counts = comm.allgather_rows(np.array([sw.ntraj], np.int64))
            lo = int(counts[:comm.rank].sum())
            sl = slice(lo, lo + sw.ntraj)
        if fmom is None:
            rho_all = comm.allgather_rows(sw.rho)
            f = estimate_fields(x_all, rho_all, self.masses, opts, need=self.need, at=at,
                                workspace=self.ws_fields)
            geo_all = geometry_from_fields(f, self.masses, workspace=self.ws_geometry)
            g_all = geo_all.g if conservative else None
            geo = _rows(geo_all, sl)
            self.drho = f.drho[sl]
        else:
            f = estimate_fields(x_all, None, self.masses, opts, need=self.need_density, at=at,
                                workspace=self.ws_fields)
            E, V = sw.ensure_adiabatic()
            _, drho = trajectory_derivatives(sw.rho, sw.dH, E, V, fmom, basis=self.basis,
                                             out=self.ws_route)
            fl = _rows(f, sl)
            fl.rho, fl.drho = sw.rho, drho
            self.drho = drho
            geo = geometry_from_fields(fl, self.masses, workspace=self.ws_geometry)
            g_all = comm.allgather_rows(geo.g) if conservative else None
        t2 = t2_conservative(f, x_all, g_all, self.masses)[sl] if conservative else None
        self.last = f
        return f, geo, t2


def _rows(obj, sl):
    """Copy of a FieldEstimate / Geometry with its per-trajectory arrays restricted to rows ``sl``."""
    if sl == slice(None):
        return dataclasses.replace(obj) if dataclasses.is_dataclass(obj) else obj
    n = None
    for k in ("n", "g"):
        v = getattr(obj, k, None)
        if isinstance(v, np.ndarray):
            n = v.shape[0]
    out = {k: (v[sl] if isinstance(v, np.ndarray) and v.ndim and v.shape[0] == n
               and k not in ("weights", "lam", "h_density", "h_regression", "masses") else v)
           for k, v in vars(obj).items()}
    return type(obj)(**out)


class LadderParts:
    """Mix-in with the shared correction machinery for mean-field and hopping recipes."""

    geometric = False
    quantum_coupling = False
    quantum_force = False
    correction_forces = True
    default_route = "regression"

    def _init_fields(self, opts, comm):
        self.scale = opts["correction_scale"]
        self.force_form = opts["force_form"]
        if opts["adaptive"]:
            self.force_form = "pointwise"      # the symmetric-pair form needs fixed bandwidths
        route = opts["rho_derivatives"]
        if route == "auto":
            route = self.default_route
        if route != "regression" and self.geometric:
            raise DeckError(f"[method] rho_derivatives = '{route}' is not available for {self.name}"
                            f"{' with coupling = full' if self.name == 'fssh-coupled' else ''}: the "
                            "geometric correction needs second derivatives of rho, which only "
                            "'regression' provides; allowed: 'regression', 'auto'")
        self.route = "trajectory" if route.startswith("trajectory") else route
        pc = opts["population_constraint"]
        self.constrain = pc == "on" or (pc == "auto" and self.route == "trajectory")
        self.ridge_c = opts["constraint_ridge"]
        need = ["density", "rho2" if self.geometric else "rho"]
        if self.quantum_force:
            need.append("logn3")
        self.fields = SwarmFields(opts, self.model.masses, comm, tuple(need))
        self.fmom = None             # (N, D, ns) accumulated adiabatic forces (route 'trajectory')
        self.grad_prev = None        # (N, D, ns) d E_n at the previous step
        self.G_now = None
        self.G_prev = None
        self.F_corr = None

    def _accumulate_forces(self, sw):
        """Advance f_n = -int d E_n dt along each trajectory (trapezoid; f = 0 at t = 0)."""
        _, V = sw.ensure_adiabatic()
        grad = adiabatic_gradients(sw.dH, V)                        # (N, D, ns)
        if self.fmom is None:
            self.fmom = np.zeros_like(grad)
        else:
            accumulate_forces(self.fmom, self.grad_prev, grad, sw.dt)
        self.grad_prev = grad

    def _update_fields(self, sw):
        """Fields at the current positions and rho; stores G(t) and the force correction."""
        trajectory = self.route == "trajectory"
        conservative = self.correction_forces and self.force_form == "conservative"
        combined = self.geometric and self.quantum_coupling and conservative
        if trajectory:
            self._accumulate_forces(sw)
        f, geo, t2 = self.fields(sw, conservative=combined,
                                 fmom=self.fmom if trajectory else None)
        G = np.zeros_like(sw.rho)
        if self.geometric:
            G += geo.dH_geo
        if self.quantum_coupling:
            G += geo.dH_qc
        shift = np.zeros(sw.x.shape[1])
        if self.quantum_coupling and self.constrain:
            shift = self._population_shift(sw, G)
            for j, c in enumerate(shift):
                G -= c * self.fields.drho[:, j]
        self.shift = shift
        G *= self.scale
        self.G_prev, self.G_now = self.G_now, G
        Fc = np.zeros_like(sw.x)
        if combined:
            Fc -= t2
            for j, c in enumerate(shift):
                Fc -= 2.0 * c * geo.g[:, :, j]
            if self.quantum_force:
                Fc += geo.Fq
        elif self.correction_forces:
            if self.geometric:
                Fc -= geo.T1
            if self.quantum_coupling:
                for j, c in enumerate(shift):
                    Fc += 2.0 * (geo.u[:, j] - c)[:, None] * geo.g[:, :, j]
            if self.quantum_force:
                Fc += geo.Fq
        self.F_corr = self.scale * Fc
        self.T_geo = None if geo.T_geo is None else np.array(geo.T_geo)
        return self.F_corr

    def _population_shift(self, sw, G):
        """Swarm-constant shift c (D,) of the osmotic velocity (bohr per a.u. of time).

        The correction G changes the adiabatic populations at rate ``-i[G, rho]_nn``; replacing
        ``u`` by ``u - c`` subtracts ``c.b_n`` with ``b_n = -i[d rho, rho]_nn``. Summed over the
        swarm, ``A_n = sum_I (-i[G, rho])_nn`` and ``B_n = sum_I b_n``; c minimises
        ``sum_n |A_n - c.B_n|^2 + (N ridge)^2 |c|^2``. Exact (rank-independent) sums.
        """
        _, V = sw.ensure_adiabatic()
        V = np.ascontiguousarray(V, dtype=np.complex128)
        N, D, ns, _ = self.fields.drho.shape
        rates = np.empty((N, 1 + D, ns))
        population_rates(G[:, None], sw.rho, V, rates[:, :1])
        population_rates(np.ascontiguousarray(self.fields.drho), sw.rho, V, rates[:, 1:])
        s = self.comm.sum_rows(np.concatenate([rates.reshape(N, (1 + D) * ns),
                                               np.ones((N, 1))], axis=1))
        A, B, ntot = s[:ns], s[ns:(1 + D) * ns].reshape(D, ns), s[-1]
        M = B @ B.T + (ntot * self.ridge_c) ** 2 * np.eye(D)
        return np.linalg.solve(M, B @ A) if np.any(B) else np.zeros(D)

    nonfinite_check_every_step = True

    def correction(self, sw):
        if self.G_prev is None:
            return self.G_now
        return 1.5 * self.G_now - 0.5 * self.G_prev

    def state_dict(self):
        state = super().state_dict()
        state["G_now"] = self.G_now
        state["G_prev"] = self.G_now if self.G_prev is None else self.G_prev
        if self.fmom is not None:
            state["fmom"] = self.fmom
            state["grad_prev"] = self.grad_prev
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.G_now = np.array(state["G_now"])
        self.G_prev = np.array(state["G_prev"])
        if "fmom" in state:
            self.fmom = np.array(state["fmom"])
            self.grad_prev = np.array(state["grad_prev"])

    def extra_records(self, sw, comm):
        out = super().extra_records(sw, comm)
        D = sw.x.shape[1]
        # rank-independent exact sums over the (surviving) trajectories
        rows = np.concatenate([np.ones((sw.ntraj, 1)), self.F_corr, self.F_corr ** 2,
                               (self.T_geo if self.T_geo is not None
                                else np.zeros(sw.ntraj))[:, None]], axis=1)
        s = comm.sum_rows(rows)
        n = max(s[0], 1.0)
        out["diagnostics/force_correction_mean"] = (s[1:1 + D] / n, "hartree/bohr")
        out["diagnostics/force_correction_rms"] = (np.sqrt(s[1 + D:1 + 2 * D] / n), "hartree/bohr")
        f = self.fields.last
        out["diagnostics/bandwidth_density"] = (np.asarray(f.h_density, float).reshape(D), "bohr")
        hr = f.h_regression if f.h_regression is not None else np.full(D, np.nan)
        out["diagnostics/bandwidth_regression"] = (np.asarray(hr, float).reshape(D), "bohr")
        if self.T_geo is not None:
            out["energy/geometric"] = (s[1 + 2 * D] / n, "hartree")
        return out


class _MeanFieldLadder(LadderParts, Method):
    options = FIELD_KEYS

    def __init__(self, opts, model, deck, comm=None):
        super().__init__(opts, model, deck, comm)
        self._init_fields(opts, self.comm)

    def force(self, sw):
        super().force(sw)                       # -Tr(rho dH)
        sw.F += self._update_fields(sw)


class GeometricEhrenfest(_MeanFieldLadder):
    name = "geometric-ehrenfest"
    description = "Ehrenfest + geometric (Fubini-Study) corrections: G = -(1/2) Delta_M rho"
    geometric = True


class EhrenfestQC(_MeanFieldLadder):
    name = "ehrenfest-qc"
    description = "Ehrenfest + quantum coupling: G = u.grad rho, F += 2 u.g"
    quantum_coupling = True
    default_route = "trajectory"


class GeometricEhrenfestQC(_MeanFieldLadder):
    name = "geometric-ehrenfest-qc"
    description = "geometric Ehrenfest with quantum coupling: exact electron-nuclear term MB(64)/(67)"
    geometric = True
    quantum_coupling = True


class QHD(_MeanFieldLadder):
    name = "qhd"
    description = "quantum hydrodynamics: geometric-ehrenfest-qc + nuclear quantum force MB(68)"
    geometric = True
    quantum_coupling = True
    quantum_force = True


class FSSHCoupled(LadderParts, FSSH):
    name = "fssh-coupled"
    description = ("FSSH whose electronic step (and so the hop probability) carries the "
                   "density-gradient correction")
    options = {**FSSH.options, **FIELD_KEYS,
               "coupling": Key("str", "qc", "correction in the electronic step: 'qc' (u.grad rho, "
                               "the simplified form) or 'full' (MB(67), adds -(1/2) Delta_M rho)",
                               choices=("qc", "full"))}
    quantum_coupling = True
    correction_forces = False

    def __init__(self, opts, model, deck, comm=None):
        super().__init__(opts, model, deck, comm)
        self.geometric = opts["coupling"] == "full"
        self._init_fields(opts, self.comm)

    def force(self, sw):
        super().force(sw)
        self._update_fields(sw)


LADDER = (GeometricEhrenfest, EhrenfestQC, GeometricEhrenfestQC, QHD, FSSHCoupled)
