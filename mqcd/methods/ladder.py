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
import numpy as np

from ..electronic.geometry import Geometry, geometry_from_fields
from ..fields import FieldOptions, FieldWorkspace, estimate_fields
from ..fields.conservative import t2_conservative
from ..io.deck import Key, non_negative, positive
from .base import Method
from .fssh import FSSH

FIELD_KEYS = {
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
        self.opts = FieldOptions(method=opts["field_method"], density_scale=opts["density_scale"],
                                 regression_scale=opts["regression_scale"], ridge=opts["ridge"],
                                 adaptive=opts["adaptive"],
                                 density_deriv=3 if "logn3" in need else 1)
        self.masses = masses
        self.comm = comm
        self.need = need
        self.ws_fields = FieldWorkspace()
        self.ws_geometry = FieldWorkspace()
        self.last = None

    def __call__(self, sw, conservative=False):
        """Return (FieldEstimate, Geometry, T2 or None) for this rank's trajectories.

        The conservative combined force needs the fields at every trajectory, so then every rank
        evaluates the whole swarm and keeps its rows; otherwise each rank evaluates only at its
        own trajectories (the per-trajectory regression work is split over the ranks). The
        estimator path is chosen from the global swarm size, so both ways give bit-for-bit the
        serial numbers.
        """
        comm = self.comm
        x_all = comm.allgather_rows(sw.x)
        rho_all = comm.allgather_rows(sw.rho)
        opts = self.opts
        whole = conservative or comm.size == 1
        f = estimate_fields(x_all, rho_all, self.masses, opts, need=self.need,
                            at=None if whole else sw.x, workspace=self.ws_fields)
        geo = geometry_from_fields(f, self.masses, workspace=self.ws_geometry)
        t2 = t2_conservative(f, x_all, geo.g, self.masses) if conservative else None
        self.last = f
        if whole and comm.size > 1:
            counts = comm.allgather_rows(np.array([sw.ntraj], np.int64))
            lo = int(counts[:comm.rank].sum())
            sl = slice(lo, lo + sw.ntraj)
            geo = Geometry(**{k: (v[sl] if isinstance(v, np.ndarray) else v)
                              for k, v in vars(geo).items()})
            t2 = None if t2 is None else t2[sl]
        return f, geo, t2


class LadderParts:
    """Mix-in with the shared correction machinery for mean-field and hopping recipes."""

    geometric = False
    quantum_coupling = False
    quantum_force = False
    correction_forces = True

    def _init_fields(self, opts, comm):
        self.scale = opts["correction_scale"]
        self.force_form = opts["force_form"]
        if opts["adaptive"]:
            self.force_form = "pointwise"      # the symmetric-pair form needs fixed bandwidths
        need = ["density", "rho2" if self.geometric else "rho"]
        if self.quantum_force:
            need.append("logn3")
        self.fields = SwarmFields(opts, self.model.masses, comm, tuple(need))
        self.G_now = None
        self.G_prev = None
        self.F_corr = None

    def _update_fields(self, sw):
        """Fields at the current positions and rho; stores G(t) and the force correction."""
        combined = (self.geometric and self.quantum_coupling and self.correction_forces
                    and self.force_form == "conservative")
        f, geo, t2 = self.fields(sw, conservative=combined)
        G = np.zeros_like(sw.rho)
        if self.geometric:
            G += geo.dH_geo
        if self.quantum_coupling:
            G += geo.dH_qc
        G *= self.scale
        self.G_prev, self.G_now = self.G_now, G
        Fc = np.zeros_like(sw.x)
        if combined:
            Fc -= t2
            if self.quantum_force:
                Fc += geo.Fq
        elif self.correction_forces:
            if self.geometric:
                Fc -= geo.T1
            if self.quantum_coupling:
                Fc += 2.0 * np.einsum("nj,nkj->nk", geo.u, geo.g)
            if self.quantum_force:
                Fc += geo.Fq
        self.F_corr = self.scale * Fc
        self.T_geo = None if geo.T_geo is None else np.array(geo.T_geo)
        return self.F_corr

    nonfinite_check_every_step = True

    def correction(self, sw):
        if self.G_prev is None:
            return self.G_now
        return 1.5 * self.G_now - 0.5 * self.G_prev

    def state_dict(self):
        state = super().state_dict()
        state["G_now"] = self.G_now
        state["G_prev"] = self.G_now if self.G_prev is None else self.G_prev
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.G_now = np.array(state["G_now"])
        self.G_prev = np.array(state["G_prev"])

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
