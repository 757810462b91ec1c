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

Route (b) of ``ehrenfest-qc`` uses by default the published CTMQC parts of mqcd/methods/ctmqc.py
(pair-specific quantum-momentum centres, the population reset of the accumulated forces, the
energy-conserving force; all switchable, docs/theory/fields.md section 9) and the per-mode density
estimator (``field_method = "modes"``). Apart from that reset,

Regularisation: there is no threshold, clamp or reset. Where the density is small (swarm edges) the
Gaussian smearing keeps n > 0 and d ln n finite (bounded by the distance to the swarm over h^2);
the only regularisation is the documented bandwidth rule (``density_scale``,
``regression_scale``) and the ridge of the local regression (``ridge``), all deck keys.
"""
import numpy as np

from ..electronic.adiabatic import adiabatic_gradients
from ..electronic.coherence import accumulate_forces, population_rates, trajectory_derivatives
from ..electronic.geometry import geometry_from_fields
from ..fields import FieldWorkspace, build_estimator
from ..fields.bandwidth import spread
from ..models.stiffness import VERLET_LIMIT, bohm_frequency
from ..io.schema import DeckError, Key, non_negative, positive
from .base import Method
from .ctmqc import (AUTO as CTMQC_AUTO, CTMQC_KEYS, adiabatic, correction_and_force,
                    energy_shell_momenta, pair_centre_velocity, pair_differences, reset_forces,
                    resolve as resolve_ctmqc, restore_energy)
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
    "field_method": Key("str", "auto", "how the swarm knows its fields (docs/theory/fields.md): "
                        "'kernel' (Gaussian kernel sums over the swarm; 'grid', 'tree', 'pairs' fix "
                        "the kernel-sum path: binned FFT (D <= 3), neighbour lists, all pairs), "
                        "'fluid' (fluid elements in 1D: density from the ordered elements' spacing, "
                        "local fits of the single-valued rho field; needs [initial] sampling = "
                        "'hydrodynamic'), 'exact' (the oracle: fields of the exact split-operator "
                        "solution propagated alongside, 1D/2D), 'auto' (modes for ehrenfest-qc "
                        "on the trajectory route, else kernel: the fluid estimator's coupled runs "
                        "are not yet stable, docs/validation_ladder.md); "
                        "'modes' (kernel sums with the normal-reference bandwidth of each mode "
                        "of the swarm, so that no kernel spans separated packets; "
                        "mqcd/fields/density.py)",
                        choices=("auto", "kernel", "fluid", "exact", "grid", "tree", "pairs",
                                 "modes")),
    "mode_persistence": Key("float", 0.3, "field_method = 'modes': a mode whose saddle density "
                            "exceeds this fraction of its peak density is merged into its "
                            "neighbour (docs/theory/fields.md)",
                            check=lambda v: None if 0 < v < 1 else "must be in (0, 1)"),
    "mode_width_bound": Key("float", 4.0, "field_method = 'modes': if > 0, every mode's width "
                            "is held within this factor of the swarm's reference width (the "
                            "count-weighted geometric mean), its spread scaled with it; a guard "
                            "against modes of stalled, piled-up trajectories; 0 = off "
                            "(docs/theory/fields.md 9.2)",
                            check=lambda v: None if v == 0 or v > 1 else "must be 0 (off) or > 1"),
    "mode_every": Key("int", 1, "field_method = 'modes': find the modes every this many steps; in "
                      "between each trajectory keeps its mode and only the per-mode spreads are "
                      "updated (the mode search is the part of the estimator that every MPI rank "
                      "repeats; docs/performance.md)",
                      check=lambda v: None if v >= 1 else "must be at least 1"),
    "exact_reference": Key("bool", False, "propagate the exact solution alongside (1D/2D) and write "
                           "diagnostics/rho_deviation and diagnostics/drho_error per record: how far "
                           "the trajectories' rho and the estimator's d rho are from the exact "
                           "conditional field at the trajectories"),
    "g_corrector": Key("int", -1, "corrector passes of the electronic correction G per step: 0 "
                       "uses the second-order extrapolation (3 G(t) - G(t - dt))/2 over the step; "
                       "K > 0 redoes the electronic step K times with G at the step's midpoint "
                       "(G(t) + G(t + dt))/2, the fields re-estimated each time (K + 1 field "
                       "estimates per step); -1 (default): 1 for field_method = 'fluid' (its "
                       "narrow fits make G stiff), 0 otherwise. docs/ladder.md",
                       check=lambda v: None if v >= -1 else "must be >= 0 (or -1: automatic)"),
    "fluid_window": Key("float", 0.025, "field_method = 'fluid': width of the Gaussian weights of "
                        "the local fits (widened where the elements are sparse; the time step "
                        "must resolve the quantum dynamics it lets through: docs/theory/fields.md)",
                        "bohr", check=positive),
    "fluid_degree": Key("int", 6, "field_method = 'fluid': degree of the local fit of the element "
                        "positions against their Gaussian label (density; 4..10)",
                        check=lambda v: None if 4 <= v <= 10 else "must be between 4 and 10"),
    "fluid_rho_degree": Key("int", 4, "field_method = 'fluid': degree of the local fit of rho "
                            "(2..10)", check=lambda v: None if 2 <= v <= 10 else
                            "must be between 2 and 10"),
    "fluid_bin": Key("float", 0.002, "field_method = 'fluid': the fits' sources are the elements "
                     "averaged over bins of this width in the Gaussian label (units of the "
                     "initial packet width; 0: no bins); bounds the cost per fit as N grows",
                     check=non_negative),
    "fluid_correction": Key("str", "adjoint", "field_method = 'fluid': discrete form of the "
                            "combined rung's electronic correction MB(67): 'adjoint' (G = "
                            "(xi/2) W^-1 D^T W D rho with D the fits' derivative: the gradient "
                            "of the discrete geometric energy, which the electronic step then "
                            "conserves exactly) or 'flux' (the flux-form divergence of xi d rho; "
                            "lets grid-scale rho noise grow; docs/theory/fluid_elements.md)",
                            choices=("adjoint", "flux")),
    "fluid_damping": Key("float", 0.5, "field_method = 'fluid': rate at which the element "
                         "velocities' grid-scale part (what the local fits do not reproduce) is "
                         "damped; smooth flows are not affected (docs/theory/fields.md)",
                         "1/atomic_unit_of_time", check=non_negative),
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
    **CTMQC_KEYS,
}


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
        self.basis = route == "trajectory-basis"
        opts = resolve_ctmqc(opts, self.name, self.route)
        pc = opts["population_constraint"]
        self.constrain = pc == "on" or (pc == "auto" and self.route == "trajectory"
                                        and opts["quantum_momentum"] != "pair-centre")
        self.ridge_c = opts["constraint_ridge"]
        # route-(b) parts from the published CTMQC codes (mqcd/methods/ctmqc.py)
        self.qmom = opts["quantum_momentum"]
        self.reset = opts["force_reset"]
        self.reset_thr = opts["reset_threshold"]
        self.qc_force = opts["qc_force"]
        self.qc_floor = opts["qc_energy_floor"]
        self.qc_fraction = opts["qc_step_fraction"]
        self.qc_uphill = opts["qc_step_limit"] == "uphill"
        self.acc_force = opts["accumulated_force"]
        self.qmom_slope = opts["qmom_slope"]
        self.qmom_distance = opts["qmom_distance"]
        self.qmom_far = opts["qmom_far"]
        self.ctmqc_parts = self.route == "trajectory" and self.quantum_coupling and (
            self.qmom != "osmotic" or self.qc_force != "gradient")
        if self.route != "trajectory" and (self.qmom != "osmotic" or self.reset != "never"
                                           or self.qc_force != "gradient"
                                           or self.acc_force != "history"):
            raise DeckError("[method] quantum_momentum, force_reset, accumulated_force and "
                            "qc_force act on the trajectory route only: set rho_derivatives = "
                            "'trajectory' (or leave them at 'osmotic', 'never', 'history', "
                            "'gradient')")
        need = ["density"]
        if self.quantum_force:
            need.append("logn3")
        if self.route != "trajectory":
            need.append("rho2" if self.geometric else "rho")
        fm = opts["field_method"]
        if fm == "auto" and self.route == "trajectory":
            fm = CTMQC_AUTO.get(self.name, {}).get("field_method", "auto")
        if fm == "auto":
            fm = self._auto_field_method()
        if fm == "fluid" and self.deck.initial["sampling"] != "hydrodynamic":
            raise DeckError("[method] field_method = 'fluid' needs trajectories that are fluid "
                            "elements: set [initial] sampling = 'hydrodynamic' (or use "
                            "field_method = 'kernel')")
        self.field_method = fm
        if self.qmom == "pair-centre" and fm == "modes" and self.qmom_slope == "kernel":
            need.append("alpha")          # slopes of the per-trajectory Gaussians
        # forces that are divergences in the exact theory: conservative (zero-sum) form
        self.div_forces = self.correction_forces and self.force_form == "conservative"
        try:
            self.estimator = build_estimator(fm, opts, self.model, self.deck, comm, tuple(need),
                                             conservative=self.div_forces and (
                                                 self.geometric and self.quantum_coupling
                                                 or self.quantum_force))
            self.reference = None
            if opts["exact_reference"] and fm != "exact":
                from ..fields import ExactWavefunction
                self.reference = ExactWavefunction(self.deck, self.model)
        except ValueError as exc:
            raise DeckError(f"[method] field_method = '{fm}': {exc}") from None
        self.ws_geometry = FieldWorkspace()
        self.ws_route = {}
        self.drho = None
        self.last_fields = None
        self.fmom = None             # (N, D, ns) accumulated adiabatic forces (route 'trajectory')
        self.rho_a = None            # (N, ns, ns) adiabatic rho of the current step (route (b))
        self.grad_prev = None        # (N, D, ns) d E_n at the previous step
        self.G_now = None
        self.G_prev = None
        self.G_override = None
        k = int(opts.get("g_corrector", -1))
        self.corrector_iterations = (1 if fm == "fluid" else 0) if k < 0 else k
        self.F_corr = None
        self.E_q = None

    def _auto_field_method(self):
        """The kernel estimator. The fluid-element estimator resolves the fields far better on
        frozen snapshots but its full coupled runs are not yet stable (docs/validation_ladder.md,
        "qhd with swarm estimators"), so it is chosen by name only."""
        return "kernel"

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
        if trajectory:
            self._accumulate_forces(sw)
        f = self.estimator.estimate(sw)
        if trajectory:
            E, V = sw.ensure_adiabatic()
            # adiabatic rho, once per step (the reset, the energy shell and the CTMQC parts)
            self.rho_a = (adiabatic(sw.rho, V) if self.ctmqc_parts or self.reset == "population"
                          or self.acc_force == "energy-shell" else None)
            if self.reset == "population":
                reset_forces(self.fmom, self.rho_a, self.reset_thr)
            self.f_used = self.fmom
            if self.acc_force == "energy-shell":
                self.f_used = energy_shell_momenta(sw.p, self.model.masses, E, self.rho_a)
            _, drho = trajectory_derivatives(sw.rho, sw.dH, E, V, self.f_used, basis=self.basis,
                                             out=self.ws_route)
            f.rho, f.drho = sw.rho, drho
        self.drho = f.drho
        self.last_fields = f
        geo = geometry_from_fields(f, self.model.masses, workspace=self.ws_geometry)
        # where the estimator cannot resolve the rho field (sparse tails of a fluid-element
        # swarm) it says so, and the rho-derived corrections are tapered off there
        rel = f.extra.get("reliability")
        if rel is not None:
            geo.g = geo.g * rel[:, None, None]
            for name in ("T1", "T2"):
                if getattr(geo, name) is not None:
                    setattr(geo, name, getattr(geo, name) * rel[:, None])
        G = None
        if (self.geometric and self.quantum_coupling and self.div_forces
                and getattr(self.estimator, "electronic_flux", False)):
            G = self._combined_correction_flux(f)
        if G is None:
            G = np.zeros_like(sw.rho)
            if self.geometric:
                G += geo.dH_geo
            if self.quantum_coupling:
                G += geo.dH_qc
        if rel is not None:
            G *= rel[:, None, None]
        shift = np.zeros(sw.x.shape[1])
        if self.quantum_coupling and self.constrain:
            shift = self._population_shift(sw, G)
            for j, c in enumerate(shift):
                G -= c * self.drho[:, j]
        self.shift = shift
        F_qc = None
        if self.ctmqc_parts:
            G, F_qc = self._ctmqc_correction(sw, f, geo, shift)
        G *= self.scale
        self.G_prev, self.G_now = self.G_now, G
        xi = 1.0 / np.asarray(self.model.masses, dtype=np.float64)
        Fc = np.zeros_like(sw.x)
        if self.correction_forces:
            combined = self.geometric and self.quantum_coupling
            T2 = None
            if combined and self.div_forces:
                T2 = self.estimator.divergence(f, xi[None, :, None] * geo.g.transpose(0, 2, 1))
            if T2 is not None:                    # MB(64), conservative form
                Fc -= T2
                for j, c in enumerate(shift):
                    Fc -= 2.0 * c * geo.g[:, :, j]
            else:                                 # pointwise forms
                if self.geometric:
                    Fc -= geo.T1
                if self.quantum_coupling and F_qc is not None:
                    Fc += F_qc
                elif self.quantum_coupling:
                    for j, c in enumerate(shift):
                        Fc += 2.0 * (geo.u[:, j] - c)[:, None] * geo.g[:, :, j]
            if self.quantum_force:                # MB(68): (1/4n) d_j (n xi^jj d_j d_k ln n)
                Fq = None
                if self.div_forces:
                    Fq = self.estimator.divergence(f, 0.25 * xi[None, :, None] * f.d2logn)
                Fc += geo.Fq if Fq is None else Fq
            Fx = self.estimator.extra_force(sw, f)
            if Fx is not None:
                Fc += Fx
        self.F_corr = self.scale * Fc
        self.T_geo = None if geo.T_geo is None else np.array(geo.T_geo)
        if self.quantum_force:
            self._track_bohm_stiffness(sw, f)
            # quantum kinetic energy per trajectory, (1/8) sum_j xi^jj (d_j ln n)^2 (its swarm
            # mean is <Q>, the quantum potential's contribution to the conserved energy)
            self.E_q = 0.125 * np.sum(xi * f.dlogn ** 2, axis=1)
        return self.F_corr

    def _track_bohm_stiffness(self, sw, f):
        """Largest ``omega_Q dt`` of the run so far (:func:`mqcd.models.stiffness.bohm_frequency`,
        from this step's density bandwidths) and the first time it reached the velocity-Verlet
        limit 2; reported in the output attributes and by `mqcd summary`. Estimators without a
        kernel bandwidth (fluid elements, exact fields) are not judged."""
        if f.h_density is None or not np.all(np.isfinite(f.h_density)):
            return
        lam = 1.0
        if f.lam is not None:                     # smallest adaptive factor over all ranks
            lo = float(np.min(f.lam)) if f.lam.size else np.inf
            lam = -float(self.comm.max(np.array([-lo]))[0])
        wdt = bohm_frequency(f.h_density, self.model.masses, lam) * sw.dt
        self.bohm_max = max(getattr(self, "bohm_max", 0.0), wdt)
        if wdt >= VERLET_LIMIT and getattr(self, "bohm_unstable_at", None) is None:
            self.bohm_unstable_at = float(sw.t)

    def _ctmqc_correction(self, sw, f, geo, shift):
        """Route (b) with the CTMQC parts (mqcd/methods/ctmqc.py): ``(G, force)``."""
        E, V = sw.ensure_adiabatic()
        rho_a = self.rho_a if self.rho_a is not None else adiabatic(sw.rho, V)
        Df = pair_differences(self.f_used)
        ns = rho_a.shape[1]
        if self.qmom == "pair-centre":
            alpha = f.extra.get("alpha")
            if self.qmom_slope == "mode":  # each mode (or the swarm) as one Gaussian
                s = f.extra.get("mode_spread")
                if s is None:
                    # kernel estimator: its swarm spread; estimators without one (oracle, fluid
                    # elements): the swarm's standard deviation (exact sums, rank-independent)
                    sp = f.extra.get("spread")
                    if sp is None:
                        sp = spread(sw.x, None, "std", self.comm)
                    s = np.broadcast_to(np.asarray(sp, np.float64), sw.x.shape)
                alpha = 0.5 / np.asarray(s) ** 2
            elif alpha is None:            # one fixed bandwidth: alpha = 1 / (2 h^2)
                if f.h_density is None:
                    raise ValueError(f"[method] qmom_slope = 'kernel' needs a kernel density "
                                     f"estimate; field_method = '{self.estimator.name}' has none "
                                     f"(use qmom_slope = 'mode')")
                h = np.asarray(f.h_density, dtype=np.float64)
                lam = np.ones(sw.ntraj) if f.lam is None else np.asarray(f.lam)   # this rank's
                alpha = 0.5 / (h[None, :] * lam[:, None]) ** 2
            unm, self.R0 = pair_centre_velocity(self.comm, sw.x, alpha, geo.u,
                                                np.abs(rho_a) ** 2, Df, self.model.masses,
                                                groups=f.extra.get("mode_label"),
                                                n_groups=f.extra.get("n_modes", 1),
                                                distance=self.qmom_distance,
                                                far=self.qmom_far)
        else:
            unm = np.broadcast_to((geo.u - shift[None, :])[:, :, None, None],
                                  Df.shape[:2] + (ns, ns))
        return correction_and_force(rho_a, V, Df, unm, E, sw.p / sw.masses, self.model.masses,
                                    self.qc_force, self.qc_floor, dt=sw.dt,
                                    fraction=self.qc_fraction, uphill_only=self.qc_uphill)

    def _combined_correction_flux(self, f):
        """MB(67) in flux form, ``-(1/(2n)) sum_i d_i (n xi^ii d_i rho)``, from the estimator's
        conservative divergence (hartree, (N, ns, ns) Hermitian): with the zero flux beyond the
        ends of the swarm (n -> 0) the outermost trajectories get the physical boundary
        condition instead of a one-sided extrapolation, and the swarm sum of
        ``n (-i[G, rho])`` conserves the electronic density matrix gamma_el (MB(74))."""
        drho = f.drho                                        # (N, D, ns, ns)
        N, D, ns, _ = drho.shape
        xi = 1.0 / np.asarray(self.model.masses, dtype=np.float64)
        adjoint = getattr(self.estimator, "electronic_correction", None)
        if adjoint is not None and D == 1:
            G = adjoint(f, float(xi[0]), f.rho)
            if G is not None:
                return G
        flux = np.concatenate([(xi[None, :, None, None] * drho.real).reshape(N, D, ns * ns),
                               (xi[None, :, None, None] * drho.imag).reshape(N, D, ns * ns)],
                              axis=2)
        out = self.estimator.divergence(f, flux)
        if out is None:
            return None
        G = -0.5 * (out[:, :ns * ns] + 1j * out[:, ns * ns:]).reshape(N, ns, ns)
        return 0.5 * (G + np.conj(np.swapaxes(G, 1, 2)))

    def _population_shift(self, sw, G):
        """Swarm-constant shift c (D,) of the osmotic velocity (bohr per a.u. of time).

        The correction G changes the adiabatic populations at rate ``-i[G, rho]_nn``; replacing
        ``u`` by ``u - c`` subtracts ``c.b_n`` with ``b_n = -i[d rho, rho]_nn``. Summed over the
        swarm, ``A_n = sum_I (-i[G, rho])_nn`` and ``B_n = sum_I b_n``; c minimises
        ``sum_n |A_n - c.B_n|^2 + (N ridge)^2 |c|^2``. Exact (rank-independent) sums.
        """
        _, V = sw.ensure_adiabatic()
        V = np.ascontiguousarray(V, dtype=np.complex128)
        N, D, ns, _ = self.drho.shape
        rates = np.empty((N, 1 + D, ns))
        population_rates(G[:, None], sw.rho, V, rates[:, :1])
        population_rates(np.ascontiguousarray(self.drho), sw.rho, V, rates[:, 1:])
        s = self.comm.sum_rows(np.concatenate([rates.reshape(N, (1 + D) * ns),
                                               np.ones((N, 1))], axis=1))
        A, B, ntot = s[:ns], s[ns:(1 + D) * ns].reshape(D, ns), s[-1]
        M = B @ B.T + (ntot * self.ridge_c) ** 2 * np.eye(D)
        return np.linalg.solve(M, B @ A) if np.any(B) else np.zeros(D)

    nonfinite_check_every_step = True

    def correction(self, sw):
        if self.G_override is not None:           # corrector pass: G at the step's midpoint
            return self.G_override
        if self.G_prev is None:
            return self.G_now
        return 1.5 * self.G_now - 0.5 * self.G_prev

    def corrector_snapshot(self, sw):
        """What a corrector pass restores: rho and the method's between-step state at the start
        of the electronic step (``[method] g_corrector``)."""
        copy = (lambda a: None if a is None else a.copy())
        return {"rho": sw.rho.copy(), "G_now": self.G_now, "G_prev": self.G_prev,
                "fmom": copy(self.fmom), "grad_prev": copy(self.grad_prev),
                "estimator": {k: np.array(v) for k, v in self.estimator.state_dict().items()},
                "all_pairs_steps": self.estimator.all_pairs_steps}

    def correct(self, sw, dt, snap):
        """One corrector pass: redo the electronic step from ``snap`` with G at the step's
        midpoint, ``(G(t) + G(t + dt))/2`` (the latter from the last pass), then the fields and
        forces at the end of the step again. Passes converge to the implicit trapezoidal rule
        for G, which keeps the amplitude of the stiff short-wavelength modes of the fluid-element
        fields (eigenvalues ~ 1/(M w^2), w the fit window) bounded where the one-pass second-order
        extrapolation lets them grow (docs/ladder.md, "Time stepping")."""
        G_new = self.G_now
        G_old = snap["G_now"]
        sw.rho[...] = snap["rho"]
        self.G_now, self.G_prev = snap["G_now"], snap["G_prev"]
        if snap["fmom"] is not None:
            self.fmom[...] = snap["fmom"]
            self.grad_prev = snap["grad_prev"].copy()
        self.estimator.load_state_dict({k: v.copy() for k, v in snap["estimator"].items()})
        self.estimator.all_pairs_steps = snap["all_pairs_steps"]
        self.G_override = G_new if G_old is None else 0.5 * (G_old + G_new)
        try:
            self.electronic_step(sw, dt)
        finally:
            self.G_override = None
        self.force(sw)

    def state_dict(self):
        state = super().state_dict()
        state["G_now"] = self.G_now
        state["G_prev"] = self.G_now if self.G_prev is None else self.G_prev
        if self.fmom is not None:
            state["fmom"] = self.fmom
            state["grad_prev"] = self.grad_prev
        state.update({f"fields_{k}": v for k, v in self.estimator.state_dict().items()})
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.G_now = np.array(state["G_now"])
        self.G_prev = np.array(state["G_prev"])
        if "fmom" in state:
            self.fmom = np.array(state["fmom"])
            self.grad_prev = np.array(state["grad_prev"])
        self.estimator.load_state_dict({k[7:]: v for k, v in state.items()
                                        if k.startswith("fields_")})

    def extra_records(self, sw, comm):
        out = super().extra_records(sw, comm)
        D = sw.x.shape[1]
        # rank-independent exact sums over the (surviving) trajectories
        rows = np.concatenate([np.ones((sw.ntraj, 1)), self.F_corr, self.F_corr ** 2,
                               (self.T_geo if self.T_geo is not None
                                else np.zeros(sw.ntraj))[:, None]], axis=1)
        s = comm.sum_rows(rows)
        n = max(s[0], 1.0)
        out["diagnostics/force_correction_mean"] = (s[1:1 + D] / n, "hartree / bohr")
        out["diagnostics/force_correction_rms"] = (np.sqrt(s[1 + D:1 + 2 * D] / n), "hartree / bohr")
        out.update(self.estimator.records())
        if self.reference is not None or self.field_method == "exact":
            out.update(self._reference_records(sw, comm))
        if self.T_geo is not None:
            out["energy/geometric"] = (s[1 + 2 * D] / n, "hartree")
        if self.E_q is not None:
            out["energy/quantum"] = (comm.sum_rows(self.E_q[:, None])[0] / n, "hartree")
        return out

    def _reference_records(self, sw, comm):
        """rho_deviation and drho_error against the exact conditional field (exact_reference)."""
        # evaluated afresh: the method may have replaced parts of its own field estimate (the
        # trajectory routes put their d rho and the trajectories' rho into it)
        wf = self.estimator.wf if self.field_method == "exact" else self.reference
        ex = wf.fields_at(sw.step, sw.x, need_rho2=False)
        dev = np.sqrt(np.sum(np.abs(sw.rho - ex.rho) ** 2, axis=(1, 2)))
        err = np.sum(np.abs(self.drho - ex.drho) ** 2, axis=(1, 2, 3))
        ref = np.sum(np.abs(ex.drho) ** 2, axis=(1, 2, 3))
        ok = np.isfinite(dev) & np.isfinite(err) & np.isfinite(ref)
        rows = np.stack([ok * 1.0, np.where(ok, dev, 0.0), np.where(ok, err, 0.0),
                         np.where(ok, ref, 0.0)], axis=1)
        s = comm.sum_rows(rows)
        m = max(s[0], 1.0)
        return {"diagnostics/rho_deviation": (s[1] / m, "1"),
                "diagnostics/drho_error": (float(np.sqrt(s[2] / s[3])) if s[3] > 0 else 0.0, "1")}

    energy_conservation = "ensemble"

    def energy_extra(self, sw):
        """T_geo for the geometric rungs and the quantum kinetic energy for qhd (hartree)."""
        extra = 0.0
        if self.geometric and self.correction_forces and self.T_geo is not None:
            extra = extra + self.scale * self.T_geo
        if self.E_q is not None:
            extra = extra + self.scale * self.E_q
        return extra


class _MeanFieldLadder(LadderParts, Method):
    options = FIELD_KEYS

    def __init__(self, opts, model, deck, comm=None):
        super().__init__(opts, model, deck, comm)
        self._init_fields(opts, self.comm)
        # the momentum rescaling of qc_force = 'energy' is booked as an event (impulse, work)
        self.books_events = self.ctmqc_parts and self.qc_force == "energy"

    def force(self, sw):
        super().force(sw)                       # -Tr(rho dH)
        sw.F += self._update_fields(sw)

    def events(self, sw, dt):
        """qc_force = 'energy': remove the time-step residual of the energy-conserving force
        (mqcd/methods/ctmqc.py, ``restore_energy``)."""
        if self.ctmqc_parts and self.qc_force == "energy" and self.scale > 0:
            restore_energy(sw, self.potential_energy(sw))


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
