"""Continuum fields of a stored run: the library call behind ``mqcd fields`` (docs/conservation_fields.md).

:func:`fields_from_file` reads an output written with ``[output] trajectories = true`` by a
many-particle model (mqcd/models/pairs.py), rebuilds the model from the deck text stored in the
file, checks that the stored per-particle energies are the rebuilt model's, and returns the
q-weighted ensemble fields (PSS Theorem 5.2) on a periodic grid; :func:`write_fields` stores them
as an HDF5 file with units and named dimensions.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

from .balance import box_stress, check_grid, residuals
from .fields import PATHS, FieldSeries, Grid, ensemble_fields
from .micro import DERIVATIVES

#: relative agreement required between stored and recomputed per-particle energies
ENERGY_CHECK = 1e-9


def _records(spec, n):
    """Record indices from ``"a:b[:c]"`` (Python slice) or None (all)."""
    if spec in (None, "", ":"):
        return np.arange(n)
    try:
        parts = [int(s) if s.strip() else None for s in str(spec).split(":")]
        sl = slice(*parts) if len(parts) > 1 else slice(parts[0], parts[0] + 1)
    except ValueError:
        raise ValueError(f"--records {spec!r}: a slice START:STOP[:STEP] of record indices")
    idx = np.arange(n)[sl]
    if idx.size == 0:
        raise ValueError(f"--records {spec!r} selects no record (the file has {n})")
    return idx


def load_run(path):
    """``(result, model)`` of an output with stored trajectories; clear errors otherwise."""
    from ..io.results import load
    from ..models import build_model
    res = load(path)
    if "trajectories/position" not in res.data:
        raise ValueError(f"{path}: no trajectories/ group: run the deck with [output] "
                         "trajectories = true (docs/conservation_fields.md)")
    model = build_model(tomllib.loads(res.attrs["deck"])["model"], base_dir=Path(path).parent)
    if not hasattr(model, "pair_matrices"):
        raise ValueError(f"{path}: model '{model.name}' is not a many-particle pair model "
                         "(pair_chain, pair_box): no continuum fields in physical space")
    return res, model


WEIGHTS = ("stored", "bar", "equal")


def run_weights(res, model, weights=None):
    """Trajectory weights (ntraj,) of a stored run: ``"stored"`` / None (``final/weight``, or 1),
    ``"equal"``, ``"bar"`` (``q_j N / N_j`` with ``q_1`` from Bennett's acceptance ratio over
    every stored configuration of both surfaces, :func:`mqcd.conservation.thermo.bar_q`, at the
    run's ``initial/kT``), or an array."""
    ntraj = res["trajectories/position"].shape[1]
    if weights is None or (isinstance(weights, str) and weights == "stored"):
        return res["final/weight"] if "final/weight" in res.data else np.ones(ntraj)
    if isinstance(weights, str) and weights == "equal":
        return np.ones(ntraj)
    if isinstance(weights, str) and weights == "bar":
        from .thermo import bar_q, surface_energies
        if model.nstates != 2 or "initial/kT" not in res.data:
            raise ValueError("--weights bar: a two-state run with a temperature ([initial] kT)")
        X, S = res["trajectories/position"], res["trajectories/surface"]
        E = surface_energies(model, X.reshape(-1, X.shape[-1])).reshape(X.shape[:2] + (2,))
        u = (E[..., 1] - E[..., 0]) / float(res["initial/kT"])
        q1, _ = bar_q(u[S == 0], u[S == 1])
        q = np.array([1.0 - q1, q1])
        n = np.bincount(S[0], minlength=2)
        return q[S[0]] * ntraj / n[S[0]]
    if isinstance(weights, str):
        raise ValueError(f"--weights {weights!r}: allowed {', '.join(WEIGHTS)}")
    w = np.asarray(weights, dtype=float)
    if w.shape != (ntraj,):
        raise ValueError(f"weights: {w.shape} for {ntraj} trajectories")
    return w


def fields_from_file(path, ng, width, derivatives="minimum-norm", paths="pairs", records=None,
                     surface=None, weights=None) -> FieldSeries:
    """Ensemble fields of the run stored in ``path``.

    Parameters
    ----------
    path : str or Path
        mqcd output with ``trajectories/`` (``[output] trajectories = true``).
    ng : int
        Grid points per direction of the periodic box (spacing ``box / ng`` bohr, at most
        ``width / 2`` for the spectral balance residuals).
    width : float
        Width of the Gaussian mollifier eta, bohr.
    derivatives : {"minimum-norm", "hellmann-feynman"}
        Pair derivatives of the eigenvalue in the bond stress (PSS Sec. 7 / the pair-local one).
    paths : {"pairs", "star", "tree"}
        Bond paths of the non-pair-local heat flux (mqcd/conservation/fields.py).
    records : str, optional
        ``"START:STOP[:STEP]"`` of the record axis; all by default.
    surface : int, optional
        Only the trajectories on this adiabatic surface (at the first selected record).
    weights : {"stored", "bar", "equal"} or array_like, optional
        Trajectory weights: the stored ``final/weight`` (default; 1 for unweighted runs),
        ``"bar"`` (q_j re-estimated from the run's own configurations, :func:`run_weights`),
        ``"equal"``, or one weight per trajectory.

    Returns
    -------
    FieldSeries
        ``rho`` (electron_mass/bohr^dim), ``mom`` (electron_mass/(bohr^(dim-1)
        atomic_unit_of_time)), ``E`` (hartree/bohr^dim), ``Pi`` (hartree/bohr^dim), ``J``
        (hartree/(bohr^(dim-1) atomic_unit_of_time)) and the whole-box sums; ``derived()``
        gives ``u``, ``sigma``, ``q``.
    """
    if derivatives not in DERIVATIVES:
        raise ValueError(f"--derivatives {derivatives!r}: allowed {', '.join(DERIVATIVES)}")
    if paths not in PATHS:
        raise ValueError(f"--paths {paths!r}: allowed {', '.join(PATHS)}")
    if not width > 0:
        raise ValueError(f"--width {width}: the kernel width must be > 0 (bohr)")
    if int(ng) < 8:
        raise ValueError(f"--grid {ng}: at least 8 points per direction")
    res, model = load_run(path)
    grid = Grid(box=model.box, dim=model.dim, ng=int(ng), width=float(width))
    check_grid(grid)
    X = res["trajectories/position"]
    P = res["trajectories/momentum"]
    S = res["trajectories/surface"]
    t = res["trajectories/time"]
    idx = _records(records, X.shape[0])
    w = run_weights(res, model, weights)
    select = None
    if surface is not None:
        select = S[idx[0]] == int(surface)
        if not select.any():
            raise ValueError(f"--surface {surface}: no trajectory on it (surfaces present: "
                             f"{sorted(set(S[idx[0]].tolist()))})")
    if "trajectories/particle_energy" in res.data:
        k = idx[0]
        lam = model.particle_energies(X[k], S[k])
        ref = res["trajectories/particle_energy"][k]
        err = np.max(np.abs(lam - ref)) / max(np.max(np.abs(ref)), 1e-300)
        if err > ENERGY_CHECK:
            raise ValueError(f"{path}: the per-particle energies recomputed with the stored "
                             f"deck's model differ from the stored ones by {err:.2e} (relative):"
                             " the model code changed since the run")
    return ensemble_fields(model, X[idx], P[idx], S[idx], grid, weights=w, times=t[idx],
                           derivatives=derivatives, paths=paths, select=select)


def summary(series: FieldSeries, with_residuals=True) -> dict:
    """Box averages and residuals as plain numbers: ``{"residuals": {...}, "q": [...],
    "pressure_hartree_per_bohr_dim": ..., ...}`` (means over the records)."""
    grid = series.grid
    vol = grid.box ** grid.dim
    sig = box_stress(series)
    pressure = -np.trace(sig, axis1=1, axis2=2) / grid.dim
    natoms = series["rho"].sum(axis=-1) * grid.cell_volume
    kin = np.trace(series["box_kinetic"], axis1=1, axis2=2)
    out = {"grid": grid.ng, "width_bohr": grid.width, "dim": grid.dim, "box_bohr": grid.box,
           "records": int(series.time.size), "derivatives": series.derivatives,
           "paths": series.paths,
           "time_au": [float(series.time[0]), float(series.time[-1])],
           "pressure_hartree_per_bohr_dim": float(pressure.mean()),
           "pressure_kinetic_hartree_per_bohr_dim": float((kin / (grid.dim * vol)).mean()),
           "mass_electron_mass": float(natoms.mean()),
           "energy_hartree": float((series["E"].sum(axis=-1) * grid.cell_volume).mean())}
    if series.surfaces is not None and series.weights is not None:
        s0 = np.asarray(series.surfaces[0])
        w = np.asarray(series.weights, dtype=float)
        q = np.bincount(s0, weights=w, minlength=2) / w.sum()
        out["q"] = [float(v) for v in q]          # surface probabilities used (PSS (5.21))
    if with_residuals:
        out["residuals"] = residuals(series)
    return out


def write_fields(path, series: FieldSeries, force=False):
    """Write the fields and derived ``u``, ``sigma``, ``q`` to an HDF5 file (dims ``record``,
    ``component``, ``component2``, ``grid``; the grid is C-ordered over ``dim`` axes of ``ng``
    points ``y = k box / ng``)."""
    from ..io.results import Result, write_result
    g = series.grid
    d = g.dim
    L = f"bohr ** {d}" if d > 1 else "bohr"
    Lm1 = f"bohr ** {d - 1}" if d > 2 else ("bohr" if d == 2 else "")
    flux = f"electron_mass / ({Lm1} * atomic_unit_of_time)" if Lm1 else \
        "electron_mass / atomic_unit_of_time"
    eflux = f"hartree / ({Lm1} * atomic_unit_of_time)" if Lm1 else \
        "hartree / atomic_unit_of_time"
    res = Result(attrs={"mqcd_fields_version": _version(), "kernel_width": g.width,
                        "grid_points": g.ng, "dim": d, "box": g.box,
                        "derivatives": series.derivatives, "paths": series.paths})
    res.add("time", series.time, "atomic_unit_of_time", ("record",))
    res.add("grid_axis", g.points(), "bohr", ("grid_point",))
    der = series.derived()
    rows = [("fields/density", series["rho"], f"electron_mass / {L}", ("record", "grid")),
            ("fields/momentum", series["mom"], flux, ("record", "component", "grid")),
            ("fields/energy", series["E"], f"hartree / {L}", ("record", "grid")),
            ("fields/momentum_flux", series["Pi"], f"hartree / {L}",
             ("record", "component", "component2", "grid")),
            ("fields/energy_flux", series["J"], eflux, ("record", "component", "grid")),
            ("fields/velocity", der["u"], "bohr / atomic_unit_of_time",
             ("record", "component", "grid")),
            ("fields/stress", der["sigma"], f"hartree / {L}",
             ("record", "component", "component2", "grid")),
            ("fields/heat_flux", der["q"], eflux, ("record", "component", "grid"))]
    for name, arr, unit, dims in rows:
        res.add(name, arr, unit, dims)
    write_result(path, res, force=force)


def _version():
    from .._version import __version__
    return __version__
