"""The method interface and the shared time step.

A method is a short recipe of shared parts. The step every method takes is

    p += dt/2 F;  x += dt p/M                     (velocity Verlet, first half; with a magnetic
                                                   part, magnetic.py, a rotation of p after the
                                                   kick and before the last one)
    H <- model(x)                                  (one model evaluation per step)
    rho <- U rho U^dagger                          (exact unitary step, H interpolated between the
                                                    step ends, plus the method's correction G)
    F <- force(x, rho, ...);  p += dt/2 F          (velocity Verlet, second half)
    events: hops, decoherence                      (surface hopping only)

which is time-reversible and conserves the energy of the method to O(dt^2). A subclass chooses
the parts: ``force`` (mean field, active surface, plus corrections), ``correction`` (a Hermitian
operator added to H, from the swarm fields), ``events`` (hops, decoherence), and declares its deck
keys in ``options``.
"""
import numpy as np

from ..electronic.propagate import mean_field_energy, mean_field_force, propagate


def book_events(sw, p0, F0=None, F1=None, dt=0.0):
    """Accumulate the momentum, kinetic-energy and (D >= 2) angular-momentum changes that the
    events of a step made (p0: momenta before them) in ``sw.counters`` (event_impulse (N, D),
    event_work (N,), event_angular (N, pairs); checkpointed and restricted with the swarm).

    ``F0``/``F1``: the force before and after the events (a hop changes the active surface, and
    the force with it, at the end of the step). The last half kick used ``F0`` and the record
    holds ``F1``, so the trapezoid of the recorded force over the step misses
    ``(dt/2) (F0 - F1)``: it is booked with the event (and likewise the power and torque), so that
    ``P(t) - P(0) = trapezoid of <F> + event impulse`` closes to round-off when every step is
    recorded (docs/transfer.md)."""
    from ..analysis.transfer import angular_pairs
    dp = sw.p - p0
    c = sw.counters
    if "event_impulse" not in c:
        c["event_impulse"] = np.zeros_like(sw.p)
        c["event_work"] = np.zeros(sw.ntraj)
    jump = F0 is not None and F1 is not None and dt > 0
    h = 0.5 * dt
    c["event_impulse"] += dp
    c["event_work"] += 0.5 * np.sum((sw.p * sw.p - p0 * p0) / sw.masses, axis=1)
    if jump:
        c["event_impulse"] += h * (F0 - F1)
        c["event_work"] += h * np.sum((F0 * p0 - F1 * sw.p) / sw.masses, axis=1)
    pairs = angular_pairs(sw.x.shape[1])
    if pairs:
        if "event_angular" not in c:
            c["event_angular"] = np.zeros((sw.ntraj, len(pairs)))
        xi = 1.0 / np.asarray(sw.masses, dtype=np.float64)
        for q, (i, j) in enumerate(pairs):
            c["event_angular"][:, q] += sw.x[:, i] * dp[:, j] - sw.x[:, j] * dp[:, i]
            if jump:
                dF = F0 - F1
                c["event_angular"][:, q] += h * (sw.x[:, i] * dF[:, j] - sw.x[:, j] * dF[:, i]
                                                 + (p0[:, i] * p0[:, j] - sw.p[:, i] * sw.p[:, j])
                                                 * (xi[i] - xi[j]))


class Method:
    """Base recipe: plain Ehrenfest parts; subclasses override what differs."""

    name = ""
    options: dict = {}
    description = ""

    def __init__(self, opts, model, deck, comm=None):
        from ..parallel import SerialComm
        self.comm = comm or SerialComm()
        self.opts = opts
        self.model = model
        self.deck = deck
        self.nsub = deck.run["electronic_substeps"]
        #: the magnetic (Berry-curvature) part, mqcd/methods/magnetic.py (surface hopping sets it)
        self.magnetic = None
        #: methods with discontinuous events book their momentum and energy changes
        #: (nuclear/event_impulse, energy/event_work; mqcd/analysis/transfer.py)
        self.books_events = type(self).events is not Method.events
        #: one-body models (independent electrons, e.g. newns_anderson): rho is the one-body
        #: density matrix (trace N_el) and the nuclear potential U0(x) lies outside h
        self.one_body = bool(getattr(model, "one_body", False))
        self.nuclear = getattr(model, "nuclear_potential", None)

    #: predictor-corrector passes of the electronic correction per step (ladder methods:
    #: ``[method] g_corrector``); 0 keeps the one-pass step above
    corrector_iterations = 0

    # ------------------------------------------------------------------ parts
    def setup(self, sw):
        """Prepare per-trajectory state before the first step (force at t = 0)."""
        sw.F = np.zeros_like(sw.x)
        self.force(sw)

    def correction(self, sw):
        """Hermitian operator (N, ns, ns) added to H during the electronic step, or None."""
        return None

    def electronic_step(self, sw, dt):
        propagate(sw.rho, sw.H_prev, sw.H, dt, self.nsub, self.correction(sw))

    def force(self, sw):
        """Fill ``sw.F`` at the current positions (hartree/bohr)."""
        mean_field_force(sw.rho, sw.dH, sw.F)
        if self.nuclear is not None:           # -dU0 of models with a nuclear potential
            sw.F -= self.nuclear(sw.x)[1]

    def events(self, sw, dt):
        """Discontinuous events after the step (hops, decoherence)."""

    def potential_energy(self, sw):
        """Potential energy of each trajectory in this method's dynamics (hartree)."""
        e = mean_field_energy(sw.rho, sw.H)
        return e if self.nuclear is None else e + self.nuclear(sw.x)[0]

    #: what the method's dynamics conserves: "trajectory" (every trajectory's energy, e.g.
    #: Ehrenfest, FSSH) or "ensemble" (only the swarm total, e.g. the coupled ladder methods,
    #: whose trajectories exchange energy through the swarm fields)
    energy_conservation = "trajectory"

    def energy_extra(self, sw):
        """Per-trajectory energy terms beyond kinetic + potential that belong to the quantity
        the method conserves (hartree), e.g. the geometric kinetic energy T_geo of the
        geometric rungs; 0 for Ehrenfest and surface hopping."""
        return 0.0

    def state_weights(self, sw):
        """(N, ns) weight of each adiabatic state per trajectory, used for branching."""
        from ..electronic.adiabatic import adiabatic_populations
        _, V = sw.ensure_adiabatic()
        return adiabatic_populations(sw.rho, V)

    def extra_records(self, sw, comm):
        """Extra per-record ensemble quantities: {name: (value, units)} (already reduced).
        One-body models: ``electrons/number`` (mean Tr rho) and ``electrons/spectrum_error``
        (largest change of an occupation, an eigenvalue of rho, since t = 0: the exact unitary
        step keeps them; the trace and purity diagnostics of pure states do not apply)."""
        if not self.one_body:
            return {}
        occ = np.linalg.eigvalsh(sw.rho)
        occ0 = sw.counters.setdefault("occupations0", occ.copy())
        n = comm.sum_rows(np.trace(sw.rho, axis1=1, axis2=2).real[:, None])[0]
        err = comm.max(np.array([np.abs(occ - occ0).max() if sw.ntraj else 0.0]))[0]
        return {"electrons/number": (n / max(comm.sum_rows(np.ones((sw.ntraj, 1)))[0], 1.0), "1"),
                "electrons/spectrum_error": (err, "1")}

    def final_records(self, sw, comm):
        """Extra final datasets: {name: (array, units)} (gathered on the root)."""
        return {}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self):
        """State the method keeps between steps, for checkpoints: {name: array whose first axis
        is the local trajectory}. Gathered over ranks into the checkpoint, scattered back on
        restart, and restricted to the survivors when trajectories are dropped."""
        return {}

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned (this rank's rows); called after ``setup``."""

    # ------------------------------------------------------------------ the step
    def step(self, sw, dt):
        mag = self.magnetic
        sw.p += (0.5 * dt) * sw.F
        if mag is not None:                    # magnetic rotation at x_n (magnetic.py)
            mag.rotate(sw, 0.5 * dt)
        sw.x += dt * sw.p / sw.masses
        sw.H, sw.H_prev = sw.H_prev, sw.H
        self.model.evaluate_into(sw.x, sw.H, sw.dH)
        sw.step += 1
        snap = self.corrector_snapshot(sw) if self.corrector_iterations else None
        self.electronic_step(sw, dt)
        self.force(sw)
        for _ in range(self.corrector_iterations):   # G at the step's midpoint (ladder.py)
            self.correct(sw, dt, snap)
        if mag is not None:                    # ... and at x_{n+1}
            mag.update(sw)
            mag.rotate(sw, 0.5 * dt)
        sw.p += (0.5 * dt) * sw.F
        if not self.books_events:
            self.events(sw, dt)
            return
        p0, a0 = sw.p.copy(), sw.active.copy()
        F0 = sw.F.copy() if mag is None else sw.F + mag.force(sw)
        self.events(sw, dt)
        if mag is not None and np.any(sw.active != a0):
            mag.update(sw)                     # the curvature of the new active states
        book_events(sw, p0, F0, sw.F if mag is None else sw.F + mag.force(sw), dt)
