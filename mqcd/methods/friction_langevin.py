"""``friction-langevin``: molecular dynamics with electronic friction (MDEF) on the free-energy
surface of the electrons (MB (116)-(121); the integrator and the tables are in
mqcd/friction/langevin.py; docs/friction.md).

Temperature, chemical potential, electron number and bias of the electrons are those of
``[initial]`` (temperature or kT, chemical_potential, electron_number, bias): the electronic bath
the nuclei are coupled to.
"""
from __future__ import annotations

import numpy as np

from ..io.schema import Key, positive
from .base import Method


def _range(v):
    return None if len(v) == 2 and v[0] < v[1] else "must be [low, high] with low < high"


def _points(v):
    return None if v >= 2 else "must be >= 2"


class FrictionLangevin(Method):
    name = "friction-langevin"
    description = ("MDEF: F0(x) - eta(x) v + B(x) v + random force (2 kT eta), BAOAB with an "
                   "exact tensor friction step")
    options = {
        "table_range": Key("floats", [], "range [low, high] of every nuclear coordinate over "
                           "which F0, eta and B are tabulated (required)", "bohr", check=_range),
        "table_points": Key("int", 121, "grid points per dof of the table (cubic interpolation; "
                            "the table is built at the start: points^ndof calculator calls)",
                            check=_points),
        "source": Key("str", "auto", "friction from the model's own spectrum ('band': the "
                      "discretised band, MB (121) broadened and extrapolated), from its wide-band "
                      "limit ('wide-band': the continuum, NEGF), or 'auto' ('wide-band' with "
                      "[initial] bias != 0, else 'band')", choices=("auto", "band", "wide-band")),
        "friction_scale": Key("float", 1.0, "factor on eta (and the random force with it), for "
                              "tests of the Markov regime; 1: the physical friction",
                              check=lambda v: None if v >= 0 else "must be >= 0"),
    }
    energy_conservation = "trajectory"

    def __init__(self, opts, model, deck, comm=None):
        super().__init__(opts, model, deck, comm)
        from ..friction.calculator import electron_settings
        from ..friction.langevin import FrictionTable, MeanForceSurface
        if not opts["table_range"]:
            raise ValueError("[method] table_range is required for friction-langevin: "
                             "[low, high] in bohr, covering every coordinate the trajectories "
                             "visit")
        _, kT, mu, n_el, bias = electron_settings(deck.initial)
        if kT is None:
            raise ValueError("friction-langevin needs the electronic temperature: [initial] "
                             "temperature (kelvin) or kT (hartree)")
        lo, hi = opts["table_range"]
        self.kT = kT
        self.table = FrictionTable(model, lo, hi, opts["table_points"], kT, mu, n_el, bias,
                                   opts["source"])
        self.scale = opts["friction_scale"]
        #: the swarm's model: one state, H = Phi_el + U0, dH = -F0 (mqcd/api.py uses it)
        self.swarm_model = MeanForceSurface(model, self.table)
        self.model = self.swarm_model
        self.one_body, self.nuclear = False, None
        self.warned = False
        self.nsub = 1

    def setup(self, sw):
        sw.rho[...] = 1.0
        super().setup(sw)

    def electronic_step(self, sw, dt):
        """No electrons to propagate (their state is the table's)."""

    def step(self, sw, dt):
        from ..friction.langevin import check_range, ou_step, step_normals
        sw.p += (0.5 * dt) * sw.F                                 # B
        sw.x += (0.5 * dt) * sw.p / sw.masses                     # A
        eta, B = self.table.tensors(sw.x)
        xi = step_normals(sw.keys, sw.step, np.empty_like(sw.p))
        k0 = 0.5 * np.sum(sw.p * sw.p / sw.masses, axis=1)
        ou_step(sw.p, sw.masses, self.scale * eta, B, self.kT, dt, xi)   # O (exact)
        bath = sw.counters.setdefault("bath_work", np.zeros(sw.ntraj))
        bath += 0.5 * np.sum(sw.p * sw.p / sw.masses, axis=1) - k0
        sw.x += (0.5 * dt) * sw.p / sw.masses                     # A
        sw.H, sw.H_prev = sw.H_prev, sw.H
        self.model.evaluate_into(sw.x, sw.H, sw.dH)
        sw.step += 1
        self.force(sw)
        sw.p += (0.5 * dt) * sw.F                                 # B
        self.warned = check_range(self.warned, self.table.outside(sw.x),
                                  f"[{self.table.lo:g}, {self.table.hi:g}] bohr")

    def energy_extra(self, sw):
        """Minus the energy the electronic bath gave the nuclei so far (the O steps' kinetic
        energy changes): kinetic + potential + this is conserved to O(dt^2) like Verlet."""
        return -sw.counters.get("bath_work", 0.0)

    def final_records(self, sw, comm):
        t = self.table
        out = {"friction/table_axis": (t.axes[0], "bohr"),
               "friction/table_F0": (t.F0, "hartree/bohr"),
               "friction/table_eta": (t.eta, "hartree*atomic_unit_of_time/bohr**2"),
               "friction/table_B": (t.B, "hartree*atomic_unit_of_time/bohr**2"),
               "friction/broadening_error": (np.float64(t.broadening_error), "1"),
               "friction/kT": (np.float64(self.kT), "hartree")}
        if t.Phi is not None:
            out["friction/table_free_energy"] = (t.Phi, "hartree")
        # the api gathers final datasets by rows over the ranks: the (identical) table once,
        # from the root; scalars as one-element rows
        keep = 1 if comm.is_root else 0
        return {k: (np.atleast_1d(v)[:len(np.atleast_1d(v)) * keep], u)
                for k, (v, u) in out.items()}
