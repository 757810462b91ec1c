"""Exact grid quantum dynamics (split-operator FFT), the reference for every method.

>>> from mqcd.exact import run_exact
>>> res = run_exact("inputs/tully1_exact.toml")            # doctest: +SKIP
>>> res["branching/transmission"]                          # doctest: +SKIP

The grid rules are in :mod:`mqcd.exact.grid`, the propagator in :mod:`mqcd.exact.propagator`, the
driver in :mod:`mqcd.exact.solver`; docs/exact.md describes all three.
"""
from ..io.schema import Key, non_negative, positive


def _all_ge(minimum):
    def check(v):
        return None if all(x >= minimum for x in v) else f"every entry must be >= {minimum}"
    return check


def _box_check(v):
    if len(v) % 2:
        return "needs pairs: [xmin, xmax] (1D) or [xmin, xmax, ymin, ymax] (2D)"
    if any(v[2 * i + 1] <= v[2 * i] for i in range(len(v) // 2)):
        return "each xmax must exceed its xmin"
    return None


def _fraction(v):
    return None if 0 < v < 1 else "must be between 0 and 1"


EXACT_KEYS = {
    "box": Key("floats", [], "grid box [xmin, xmax] (1D) or [xmin, xmax, ymin, ymax] (2D); empty: "
               "automatic = initial packet +- 8 widths, the interaction region [-R, R] (scattering "
               "models) and the distance the fastest component (momentum p_max) travels until t_end, "
               "clipped to the energetically allowed region; shifted by < dx/2 so that x = 0 lies "
               "between two points", "bohr", check=_box_check),
    "dx": Key("floats", [], "grid spacing, one value (all dof) or one per dof; empty: automatic "
              "dx <= pi / (2 p_max) with p_max = sqrt(2 M (E_cut - V_min)) the largest momentum the "
              "packet can reach (E_cut = initial surface energy + (|p0| + 6 sigma_p)^2 / 2M)",
              "bohr", check=lambda v: None if all(x > 0 for x in v) else "every entry must be > 0"),
    "points": Key("ints", [], "number of grid points, one value (all dof) or one per dof; replaces "
                  "the dx rule (dx = box length / points); empty: automatic", check=_all_ge(4)),
    "dt": Key("float", 0.0, "time step of the split-operator propagator; 0: automatic = "
              "min(run.dt, 0.5 / (T_max + E_cut - V_min)); the step used is shortened so that a "
              "whole number of steps fills each output interval stride * run.dt",
              "a.u. of time", check=non_negative),
    "exit_norm": Key("float", 1e-4, "stop = 'exit' ends the run at the first output time when the "
                     "norm not yet out (inside |x_0| < exit_radius, plus the norm outside that moves "
                     "inward) is below this; it bounds the error of every branching probability",
                     check=_fraction),
    "absorb": Key("bool", False, "absorbing boundary (quadratic complex absorbing potential in a "
                  "layer at both ends of every dof); absorbed norm is booked per side and state so "
                  "branching stays complete. Off: the automatic box is large enough that nothing "
                  "reaches the edge before t_end"),
    "absorb_width": Key("float", 0.0, "thickness of the absorbing layer; 0: automatic = "
                        "max(8 pi width, 10 bohr) (two de Broglie wavelengths at the momentum spread)",
                        "bohr", check=non_negative),
    "absorb_strength": Key("float", 0.0, "peak absorption rate W0 of W(x) = W0 s^2 (s = depth into "
                           "the layer / thickness); 0: automatic = 60 v_max / thickness, which damps "
                           "the fastest component's density by exp(-40) across the layer", "hartree",
                           check=non_negative),
    "store_density": Key("bool", True, "write density/n (nt, nx[, ny]) at every output time"),
    "workers": Key("int", 1, "threads for scipy.fft", check=positive),
    "factorization": Key("bool", False, "write the exact-factorisation budgets per record: "
                         "energy/kinetic_marginal, energy/geometric (T_geo), "
                         "energy/born_oppenheimer, the mean force and power of the identities "
                         "(Li-Requist-Gross), their finite-difference rates rates/*, 2D angular "
                         "momentum and torque (docs/transfer.md)"),
    "factorization_fields": Key("bool", False, "with factorization: also write the grid fields "
                                "exact/fields/* (velocity, rho adiabatic and diabatic, metric, "
                                "Berry curvature, gauge-invariant TDPES, force fields) every "
                                "fields_stride-th record"),
    "fields_stride": Key("int", 1, "write exact/fields/* at every fields_stride-th record",
                         check=positive),
    "factorization_upsample": Key("int", 0, "refinement (FFT zero padding) of the grid on which "
                                  "the factorisation integrals are evaluated (1 = solver grid; "
                                  "0 = automatic: 4 in 1D, 2 in 2D; docs/transfer.md)",
                                  check=non_negative),
    "angular_origin": Key("floats", [], "origin of the angular momentum and torque (2D); empty: "
                          "the coordinate origin", "bohr"),
}

from .grid import GridPlan, plan_grid  # noqa: E402
from .propagator import SplitOperator  # noqa: E402
from .solver import exact_plan, run_exact, wavefunction_at  # noqa: E402

__all__ = ["EXACT_KEYS", "run_exact", "exact_plan", "wavefunction_at", "plan_grid", "GridPlan", "SplitOperator"]
