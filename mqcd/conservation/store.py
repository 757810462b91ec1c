"""Per-record storage of every trajectory's phase-space point for ``mqcd fields``
(``[output] trajectories = true``).

At every record the rank-local rows are gathered on the root (rank order = global trajectory
order) and kept: ``trajectories/time`` (record), ``trajectories/position`` and ``trajectories/momentum`` (record,
trajectory, dof), ``trajectories/surface`` (record, trajectory: the active adiabatic state) and,
for models that partition their energy per particle (``particle_energies``,
mqcd/models/pairs.py: PSS eqs. (2.9)-(2.10)), ``trajectories/particle_energy`` (record,
trajectory, particle). The records have their own axis (``record``): after a restart from a
checkpoint they start at the restart time. The pair
derivatives and the heat-flux terms are recomputed from these by mqcd.conservation with the
run's model (rebuilt from the deck text stored in the output), because their number changes from
record to record; the stored per-particle energies are then the check that the model rebuilt is
the one that ran (``mqcd fields`` compares them).
"""
from __future__ import annotations

import numpy as np

MOMENTUM_UNIT = "electron_mass * bohr / atomic_unit_of_time"
DIMS = {"trajectories/time": ("record",),
        "trajectories/position": ("record", "trajectory", "dof"),
        "trajectories/momentum": ("record", "trajectory", "dof"),
        "trajectories/surface": ("record", "trajectory"),
        "trajectories/particle_energy": ("record", "trajectory", "particle")}


class TrajectoryStore:
    """Collects the per-trajectory rows of every record (on the root rank)."""

    def __init__(self, model):
        self.model = model
        self.rows = {k: [] for k in DIMS}

    def record(self, sw, comm):
        E, V = sw.ensure_adiabatic()
        if comm.is_root:
            self.rows["trajectories/time"].append(np.array(sw.t, dtype=np.float64))
        parts = {"trajectories/position": sw.x, "trajectories/momentum": sw.p,
                 "trajectories/surface": np.asarray(sw.active, dtype=np.int64)}
        pe = getattr(self.model, "particle_energies", None)
        if pe is not None:
            parts["trajectories/particle_energy"] = pe(sw.x, sw.active, E, V)
        for name, arr in parts.items():
            out = comm.gather_rows(np.array(arr, copy=True))   # a copy: sw.x, sw.p are
            if comm.is_root:                                    # updated in place
                self.rows[name].append(np.array(out, copy=True))

    def to_result(self, result):
        units = {"trajectories/time": "atomic_unit_of_time", "trajectories/position": "bohr", "trajectories/momentum": MOMENTUM_UNIT,
                 "trajectories/surface": "1", "trajectories/particle_energy": "hartree"}
        for name, rows in self.rows.items():
            if rows and len({r.shape for r in rows}) == 1:
                result.add(name, np.stack(rows), units[name], DIMS[name])
