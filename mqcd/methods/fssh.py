"""Fewest-switches surface hopping on the conditional density matrix.

Recipe: electrons exactly as in Ehrenfest (shared electronic step); nuclei on the active adiabatic
surface (``active_force``); after each step a hop from the exact population change (see
mqcd.methods.hopping), a momentum adjustment, and a decoherence part (mqcd.methods.decoherence).

Many states (real models, one electronic substep): the adiabatic basis is needed at every step
anyway, so the electronic step is the split ``exp(-i H1 dt/2) exp(-i H0 dt/2)`` built from the
eigen-decompositions at the two step ends (the previous step's is reused; the current one comes
from the warm-started batched Jacobi solver), which also gives the adiabatic populations the hop
needs (mqcd.electronic.propagate.propagate_adiabatic). Two states, complex models and
``electronic_substeps > 1`` use the shared step.
"""
import numpy as np

from ..electronic.adiabatic import adiabatic_populations
from ..electronic.propagate import propagate_adiabatic
from ..ensemble.streams import STREAM_HOP, uniforms
from ..io.schema import Key
from .base import Method
from .decoherence import SCHEMES, scheme_options
from .magnetic import BERRY_KEYS, build_berry_force
from .hopping import (FRUSTRATED, RESCALE, active_energy, active_force, active_force_rows,
                      adjust_momenta, choose_hops)


class FSSH(Method):
    name = "fssh"
    description = "fewest-switches surface hopping with decoherence corrections"
    options = {
        "rescale": Key("str", "nac", "momentum adjustment after a hop: along the derivative "
                       "coupling ('nac') or along the momentum ('velocity')", choices=tuple(RESCALE)),
        "frustrated": Key("str", "keep", "frustrated hops: 'keep' momentum, 'reverse' its component "
                          "along d, or 'reverse_if_gradient' (Jasper-Truhlar)",
                          choices=tuple(FRUSTRATED)),
        "decoherence": Key("str", "none", "decoherence correction scheme", choices=tuple(SCHEMES)),
        **scheme_options(),
        **BERRY_KEYS,
    }

    def __init__(self, opts, model, deck, comm=None):
        super().__init__(opts, model, deck, comm)
        self.decoherence = SCHEMES[opts["decoherence"]](opts)
        self.rescale = RESCALE[opts["rescale"]]
        self.frustrated = FRUSTRATED[opts["frustrated"]]
        self.magnetic = build_berry_force(opts, model)

    def setup(self, sw):
        super().setup(sw)
        if self.magnetic is not None:
            self.magnetic.update(sw)
        _, V = sw.ensure_adiabatic()
        self.P = adiabatic_populations(sw.rho, V)
        n = sw.ntraj
        self.u = np.empty(n)
        self.target = np.empty(n, np.int64)
        self.accepted = np.zeros(n, np.bool_)
        self.frust = np.zeros(n, np.bool_)
        sw.counters.setdefault("hops", np.zeros(n, np.int64))
        sw.counters.setdefault("frustrated", np.zeros(n, np.int64))

    def state_dict(self):
        return {"P": self.P}          # adiabatic populations after the last step (hop reference)

    def load_state_dict(self, state):
        self.P = np.array(state["P"])
        n = self.P.shape[0]
        self.u = np.empty(n)
        self.target = np.empty(n, np.int64)
        self.accepted = np.zeros(n, np.bool_)
        self.frust = np.zeros(n, np.bool_)

    def electronic_step(self, sw, dt):
        self.P1 = None
        if self.model.nstates > 2 and self.nsub == 1 and self.correction(sw) is None:
            E1, V1 = sw.ensure_adiabatic()
            prev = sw.previous_adiabatic()
            if prev is not None and V1.dtype == np.float64 and prev[1].dtype == np.float64:
                self.P1 = propagate_adiabatic(sw.rho, prev[0], prev[1], E1, V1, dt)
                return
        super().electronic_step(sw, dt)

    def force(self, sw):
        self.surface_force(sw)

    def surface_force(self, sw):
        """Force on the active adiabatic surface (also after hops)."""
        _, V = sw.ensure_adiabatic()
        active_force(sw.dH, V, sw.active, sw.F)

    def potential_energy(self, sw):
        E, _ = sw.ensure_adiabatic()
        return active_energy(E, sw.active)

    def events(self, sw, dt):
        E, V = sw.ensure_adiabatic()
        P1 = self.P1 if getattr(self, "P1", None) is not None else adiabatic_populations(sw.rho, V)
        uniforms(sw.keys, sw.step, STREAM_HOP, self.u)
        nhop = choose_hops(self.P, P1, sw.active, self.u, self.target)
        if nhop:
            nacc, _ = adjust_momenta(self.target, sw.active, sw.p, sw.masses, E, V, sw.dH,
                                     self.rescale, self.frustrated, self.accepted, self.frust)
            sw.counters["hops"] += self.accepted
            sw.counters["frustrated"] += self.frust
            if nacc:                      # the force changes only where a hop was accepted
                active_force_rows(sw.dH, V, sw.active, sw.F, np.nonzero(self.accepted)[0])
        else:
            self.accepted[:] = False
            self.frust[:] = False
        self.decoherence.apply(sw, dt, self.accepted, self.target >= 0)
        self.P = adiabatic_populations(sw.rho, V) if self.decoherence.name != "none" else P1

    def state_weights(self, sw):
        w = np.zeros((sw.ntraj, self.model.nstates))
        w[np.arange(sw.ntraj), sw.active] = 1.0
        return w

    def extra_records(self, sw, comm):
        """``populations/active`` (fraction of trajectories per active adiabatic state) and
        ``populations/diabatic_mixed``: the diabatic populations of the active states with the
        coherences of rho, P_d = sum_a |U_da|^2 delta_{a, active} + sum_{a != b} U_da rho_ab U_db^*
        (method 3 of B. R. Landry, M. J. Falk and J. E. Subotnik, J. Chem. Phys. 139, 211101
        (2013)); ``populations/diabatic`` is the mean of rho's diabatic diagonal (their method 1)."""
        ns = self.model.nstates
        _, V = sw.ensure_adiabatic()
        n = sw.ntraj
        act = np.zeros((n, ns))
        act[np.arange(n), sw.active] = 1.0
        u2 = np.abs(V) ** 2                                     # |U_da|^2, (n, d, a)
        P = adiabatic_populations(sw.rho, V)
        mixed = np.einsum("nda,na->nd", u2, act - P) + np.real(
            np.einsum("ndd->nd", sw.rho))
        w = np.ones(n) if sw.weight is None else sw.weight     # weighted ensemble (gibbs)
        s = comm.sum_rows(np.concatenate([act * w[:, None], mixed * w[:, None], w[:, None]],
                                         axis=1))
        tot = max(s[-1], 1e-300)
        return {"populations/active": (s[:ns] / tot, "1"),
                "populations/diabatic_mixed": (s[ns:2 * ns] / tot, "1")}

    def final_records(self, sw, comm):
        return {"final/active_state": (sw.active.copy(), "1"),
                "final/hops": (sw.counters["hops"].copy(), "1"),
                "final/frustrated_hops": (sw.counters["frustrated"].copy(), "1")}
