"""Energy, momentum and angular-momentum transfer (Li-Requist-Gross identities), docs/transfer.md.

Exact solver: the exact-factorisation split and the identities on the grid; the solvable
two-nucleus model with its vector potentials against the analytic solution; trajectory methods:
the identities of their budgets to the integrator's order (dt^2) and the magnetic force.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import mqcd
from mqcd.analysis.transfer import (identity_residual, identity_residuals, step_residuals,
                                   time_derivative)
from mqcd.exact import run_exact
from mqcd.exact.factorization import derivative_table, spectral_derivatives
from mqcd.io.results import load, write_result


def _quiet_run(deck):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mqcd.run(deck)


def scattering(model, k, method=None, ntraj=20, dt=0.5, t_end=3000.0, stride=20, **exact):
    d = {"model": {"name": model},
         "initial": {"position": [-15.0], "momentum": [k], "width": [10.0 / k], "state": 0},
         "run": {"trajectories": ntraj, "dt": dt, "t_end": t_end, "seed": 5},
         "output": {"stride": stride}}
    if method is not None:
        d["method"] = dict(method)
    if exact:
        d["exact"] = dict(exact)
    return d


# ----------------------------------------------------------------------------- exact solver
@pytest.fixture(scope="module")
def tully3_exact():
    return run_exact(scattering("tully3", 10.0, t_end=3600.0, stride=40, factorization=True,
                                factorization_upsample=2))


def test_exact_energy_split_is_the_total_energy(tully3_exact):
    """T_marg + T_geo + E_BO = E (LRG text after (10)) at every record, to round-off."""
    r = tully3_exact
    total = r["energy/kinetic_marginal"] + r["energy/geometric"] + r["energy/born_oppenheimer"]
    assert np.max(np.abs(total / r["energy/total"] - 1.0)) < 1e-10
    assert np.max(np.abs(r["exact/energy_split_residual"])) < 1e-11
    assert np.all(r["energy/geometric"] >= 0.0)
    # the packet starts on one adiabatic surface (T_geo ~ 0) and T_geo builds up at the crossing
    assert r["energy/geometric"][0] < 1e-9 < 1e-4 < r["energy/geometric"].max()


def test_exact_geometric_energy_matches_a_direct_formula():
    """T_geo from rho's metric (mqcd/electronic/geometry.py) equals the direct
    (1/2M) int (sum_a |d psi_a|^2 - |psi^dagger d psi|^2 / n) of the same wavefunction."""
    from mqcd.exact import wavefunction_at
    from mqcd.exact.transfer import FactorizationRecorder
    op, psi, model, plan = wavefunction_at(scattering("tully3", 10.0), 2600.0)
    rec, _ = FactorizationRecorder(op, model, upsample=4).record(psi)
    d = spectral_derivatives(psi, plan.dx, derivative_table(1)[:2], 4)
    n = np.sum(np.abs(d[0]) ** 2, axis=0)
    direct = np.sum(np.sum(np.abs(d[1]) ** 2, axis=0)
                    - np.abs(np.sum(np.conj(d[0]) * d[1], axis=0)) ** 2 / n) \
        * plan.dx[0] / 4 / (2 * model.masses[0])
    assert rec["energy/geometric"] == pytest.approx(direct, rel=1e-9)
    assert rec["energy/geometric"] > 1e-3


def test_exact_momentum_and_kinetic_identities(tully3_exact):
    """d<P>/dt = <F> and dT_n/dt = <i[H, T_n]> hold for the grid dynamics to its O(dt^2)."""
    res = identity_residuals(tully3_exact)
    assert res["momentum"]["rate_relative"] < 2e-6
    assert res["kinetic energy"]["rate_relative"] < 2e-6
    # the finite-difference rates written by the solver are the same derivative
    r = tully3_exact
    np.testing.assert_allclose(r["rates/momentum"], res["momentum"]["rate_fd"], atol=1e-12)


def test_exact_ef_force_averages_to_the_mean_force():
    """int n F_EF = -<d H> (the geometric force -(1/n) d(n g) averages to zero, MB after (64))
    on a smooth model; on the solver grid itself the quadrature of the 1/n terms is poorer."""
    r = run_exact(scattering("tully2", 16.0, t_end=2600.0, stride=40, factorization=True))
    F = r["nuclear/force_mean"]
    top = np.abs(F).max()
    assert np.abs(r["exact/force_ef_mean"] - r["exact/force_continuum"]).max() < 1e-6 * top
    # smooth model: the continuum force is the grid's
    assert np.abs(r["exact/force_continuum"] - F).max() < 1e-8 * top
    res = identity_residuals(r)
    assert res["marginal kinetic energy"]["rate_relative"] < 1e-4


def test_exact_2d_momentum_and_angular_momentum_identities(tmp_path):
    """Conical model: dP/dt = <F> and dL/dt = <torque> (LRG (17), (18)); fields written."""
    d = {"model": {"name": "conical2d"},
         "initial": {"position": [0.8, 0.0], "momentum": [0.0, 4.0], "width": [0.16, 0.2],
                     "state": 1},
         "run": {"trajectories": 1, "dt": 0.5, "t_end": 120.0, "seed": 1},
         "output": {"stride": 8},
         "exact": {"factorization": True, "factorization_fields": True, "fields_stride": 10,
                   "factorization_upsample": 1,
                   "angular_origin": [-0.5, 0.0], "box": [-2.4, 2.4, -2.4, 2.4],
                   "points": [96, 96]}}
    r = run_exact(d)
    assert np.max(np.abs(r["exact/energy_split_residual"] / r["energy/total"])) < 1e-10
    res = identity_residuals(r)
    assert res["momentum"]["rate_relative"] < 1e-5
    assert res["angular momentum"]["rate_relative"] < 1e-4
    assert np.abs(r["nuclear/angular_momentum"]).max() > 0.1
    write_result(tmp_path / "c.h5", r)
    back = load(tmp_path / "c.h5")
    rho = back["exact/fields/rho_diabatic"]
    assert rho.shape == (len(back["exact/fields/time"]), 2, 2, 96, 96)
    tr = np.trace(rho, axis1=1, axis2=2)
    n = back["density/n"][::10][:len(tr)]
    assert np.allclose(tr.real[n > 1e-6], 1.0)


# ----------------------------------------------------------------------------- solvable model
def test_lrg_solvable_model_identity_and_analytic_solution():
    """LRG 2019 (29)-(34): the grid TDSE with the A.p term reproduces the moving Gaussian, and
    dP_1/dt = Re<F_1 + D_1> = M g_1'' while Re<F_1> misses Re<D_1> = -2 g_2'."""
    from mqcd.exact.solvable import LRGModel, solve
    m = LRGModel()
    r = solve(m, periods=0.125, h=2.5, record=1.0, dx=5.0)
    assert r["norm_error"].max() < 1e-8
    FD = r["F"][:, 0] + r["D"][:, 0]
    np.testing.assert_allclose(FD, r["Mg1dd"], atol=1e-9)
    dP = time_derivative(r["time"], r["P"][:, 0], k=7)
    assert np.abs(dP - FD)[8:-8].max() < 1e-7
    g2d = np.array([m.g(t, 1)[1] for t in r["time"]])
    np.testing.assert_allclose(r["D"][:, 0], -2.0 * g2d, atol=1e-9)
    assert np.abs(r["D"][:, 0]).max() > 0.05          # the deviation is visible


# ----------------------------------------------------------------------------- trajectory methods
# ehrenfest-qc's default (CTMQC parts) resets the accumulated forces when a population crosses
# reset_threshold: its force jumps there, and no smooth integral of the recorded force can then
# close to dt^2; its budget is checked step by step below (and without the reset here)
LADDER_AND_BASE = [{"name": "ehrenfest"}, {"name": "geometric-ehrenfest"},
                   {"name": "ehrenfest-qc", "force_reset": "never"},
                   {"name": "ehrenfest-qc", "force_reset": "never", "quantum_momentum": "osmotic",
                    "qc_force": "gradient", "field_method": "kernel"},
                   {"name": "geometric-ehrenfest-qc"}, {"name": "qhd"}]


@pytest.mark.parametrize("method", [{"name": "ehrenfest-qc"}, {"name": "fssh"},
                                    {"name": "fssh-coupled"}], ids=lambda m: m["name"])
def test_momentum_budget_closes_step_by_step(method):
    """Recorded every step, P(t) - P(0) = trapezoid of the recorded <F> + booked event impulse,
    to round-off: velocity Verlet kicks with exactly the force it records, and every other
    momentum change (hops, frustrated reversals, ehrenfest-qc's energy restoration) is booked.
    A momentum change that is neither would show here at its own size. The kinetic energy closes
    with the trapezoid of <F.v> to the step's order (not to round-off), checked as dt^2."""
    out = []
    for dt in (1.0, 0.5):
        deck = scattering("tully2", 16.0, method, ntraj=16, dt=dt, t_end=1300.0, stride=1)
        deck["initial"]["position"] = [-6.0]           # both crossings, with hops and resets
        res = step_residuals(_quiet_run(deck))
        assert res["momentum"] < 1e-12
        out.append(res["kinetic energy"])
    assert 3.0 < out[0] / out[1] < 5.0, out


@pytest.mark.parametrize("method", LADDER_AND_BASE, ids=lambda m: m["name"])
def test_trajectory_identities_shrink_as_dt_squared(method):
    """The budgets close to the velocity-Verlet order: the integrated residual of
    dP/dt = <F> and dT/dt = <F.v> falls by 4 when dt is halved (records every 2 steps)."""
    out = []
    for dt, stride in ((2.0, 1), (1.0, 2)):
        r = _quiet_run(scattering("tully2", 16.0, method, ntraj=16, dt=dt, t_end=2200.0,
                                  stride=stride))
        res = identity_residuals(r)
        out.append([res["momentum"]["integrated_relative"],
                    res["kinetic energy"]["integrated_relative"]])
    ratio = np.array(out[0]) / np.array(out[1])
    assert np.all((ratio > 3.6) & (ratio < 4.4)), ratio
    assert max(out[1]) < 1e-5


def _fssh_2d(dt, method="fssh", t_end=400.0):
    return {"model": {"name": "conical2d_complex"},
            "initial": {"position": [0.3, 0.4], "momentum": [0.0, 0.0], "width": [0.15, 0.2],
                        "state": 0},
            "method": {"name": method, "berry_force": "on"},
            "run": {"trajectories": 12, "dt": dt, "t_end": t_end, "seed": 3},
            "output": {"stride": int(round(2 / dt)), "angular_origin": [-0.5, 0.0]}}


@pytest.mark.parametrize("method", ["fssh", "fssh-coupled"])
def test_fssh_berry_force_energy_and_identities_second_order(method):
    """Surface hopping with the magnetic step on a complex model: energy drift and the momentum,
    energy and angular-momentum identities all fall by 4 when dt is halved (no hops in this
    window; a hop makes the recorded force jump, and the quadrature of the records then limits
    the residual, docs/transfer.md)."""
    rows = []
    for dt in (1.0, 0.5):
        r = _quiet_run(_fssh_2d(dt, method))
        assert r["final/hops"].sum() == 0
        res = identity_residuals(r)
        rows.append([r["energy/drift_max"].max()] + [res[k]["integrated_relative"] for k in
                                                     ("momentum", "kinetic energy",
                                                      "angular momentum")])
    ratio = np.array(rows[0]) / np.array(rows[1])
    assert np.all((ratio > 3.6) & (ratio < 4.4)), ratio


def test_fssh_event_impulses_close_the_budget():
    """Momentum rescaling at hops is booked: with nuclear/event_impulse the momentum budget of a
    hopping swarm closes far better than without it."""
    r = _quiet_run(scattering("tully1", 10.0, {"name": "fssh"}, ntraj=200, dt=0.5,
                              t_end=4000.0, stride=4))
    assert r["final/hops"].sum() > 20
    t, P, F = r["time"], r["nuclear/momentum_mean"], r["nuclear/force_mean"]
    with_ev = identity_residual(t, P, F, r["nuclear/event_impulse"])["integrated_relative"]
    without = identity_residual(t, P, F)["integrated_relative"]
    assert with_ev < 0.05 * without
    T, W = r["energy/kinetic"], r["energy/event_work"]
    assert identity_residual(t, T, r["energy/power"], W)["integrated_relative"] < \
        0.05 * identity_residual(t, T, r["energy/power"])["integrated_relative"]


def test_uniform_curvature_cyclotron_orbit():
    """Flat surfaces with a uniform Berry curvature B: FSSH with the Berry force moves on the
    cyclotron orbit, omega = -B/M (clockwise for B_xy > 0), |p| and E exactly conserved; without
    the force the trajectory is a straight line."""
    from mqcd.models import build_model
    B = build_model({"name": "uniform_curvature"}).curvature()
    for berry, omega in (("on", -B / 100.0), ("off", 0.0)):
        d = {"model": {"name": "uniform_curvature"},
             "initial": {"position": [0.0, 0.0], "momentum": [2.0, 0.0], "width": [0.5, 0.5],
                         "state": 0, "sampling": "fixed"},
             "method": {"name": "fssh", "berry_force": berry},
             "run": {"trajectories": 1, "dt": 0.5, "t_end": 600.0, "seed": 1},
             "output": {"stride": 2}}
        r = _quiet_run(d)
        p, t = r["nuclear/momentum_mean"], r["time"]
        ang = np.unwrap(np.arctan2(p[:, 1], p[:, 0]))
        assert np.polyfit(t, ang, 1)[0] == pytest.approx(omega, abs=1e-12)
        assert np.abs(np.hypot(p[:, 0], p[:, 1]) - 2.0).max() < 1e-11
        assert r["energy/drift_max"].max() < 1e-12
        if berry == "on":   # the recorded force is the magnetic one, B v, and does no work
            v = p / 100.0
            np.testing.assert_allclose(r["nuclear/force_mean"][:, 0], B * v[:, 1], atol=1e-12)
            assert np.abs(r["energy/power"]).max() < 1e-14


def test_geometric_diagnostic_for_ehrenfest():
    """[output] geometric = true adds the swarm estimate of T_geo to an Ehrenfest run: zero for
    the initial adiabatic swarm, positive once the packet has crossed."""
    d = scattering("tully1", 10.0, {"name": "ehrenfest"}, ntraj=200, dt=1.0, t_end=4000.0,
                   stride=200)
    d["output"]["geometric"] = True
    r = _quiet_run(d)
    g = r["energy/geometric"]
    assert g[0] < 1e-8 and g.max() > 1e-5 and np.all(g >= 0)
    assert math.isfinite(float(g.sum()))


def test_budgets_mpi_equal_serial(tmp_path):
    """The budgets are exact sums: 2 MPI ranks give the serial numbers bit for bit (a 2D
    complex model with surface hopping, the Berry force and hops: angular momentum, torque,
    event impulses)."""
    import test_mpi
    if test_mpi.MPIEXEC is None or not test_mpi._mpi4py_ok():
        pytest.skip("no mpiexec or mpi4py (pip install '.[test]')")
    deck = tmp_path / "d.toml"
    deck.write_text("""
[model]
name = "conical2d_complex"
[initial]
position = [0.3, 0.3]
momentum = [0.0, 8.0]
width = [0.15, 0.2]
state = 1
[method]
name = "fssh"
[run]
trajectories = 24
dt = 0.5
t_end = 200.0
seed = 4
[output]
stride = 8
angular_origin = [-0.5, 0.0]
""")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mqcd.run(str(deck), output=tmp_path / "s.h5")
    serial = load(tmp_path / "s.h5")
    par = test_mpi.run_mpi(deck, 2, tmp_path / "p.h5")
    for name in ("nuclear/force_mean", "energy/power", "nuclear/angular_momentum",
                 "nuclear/torque", "nuclear/event_impulse", "energy/event_work",
                 "nuclear/event_angular_impulse"):
        assert np.array_equal(serial[name], par[name]), name
    assert serial["final/hops"].sum() > 0


def test_compare_transfer_table_and_plot(tully3_exact, tmp_path, capsys):
    """``mqcd compare --json --transfer-plot``: the transfer numbers of each run beside the exact
    ones. The exact run's own momentum budget closes, a copy of it differs from it by nothing,
    an Ehrenfest run closes its own budget to the Verlet order but differs from exact (its mean
    force is not the exact one once the packet splits on Tully 3), and the figure is written."""
    import json
    from mqcd.analysis.transfer import geometric_peak
    from mqcd.cli import main
    write_result(tmp_path / "exact.h5", tully3_exact)
    write_result(tmp_path / "copy.h5", tully3_exact)
    d = scattering("tully3", 10.0, {"name": "ehrenfest"}, ntraj=40, t_end=3600.0, stride=4)
    d["output"]["geometric"] = True
    write_result(tmp_path / "eh.h5", _quiet_run(d))
    png = tmp_path / "transfer.png"
    main(["compare", str(tmp_path / "exact.h5"), str(tmp_path / "copy.h5"),
          str(tmp_path / "eh.h5"), "--json", "--transfer-plot", str(png)])
    rows = {r["label"]: r for r in json.loads(capsys.readouterr().out)["runs"]}
    ex, cp, eh = rows["exact.h5"], rows["copy.h5"], rows["eh.h5"]
    assert (ex["transfer_geometric_peak"], ex["transfer_geometric_peak_time"]) == \
        geometric_peak(tully3_exact)
    assert ex["transfer_residual_momentum"] < 1e-5
    assert ex["transfer_residual_kinetic"] < 1e-5
    for key in ("geometric", "kinetic_marginal", "force", "power"):
        assert cp[f"transfer_{key}_error_max"] == 0.0, key
    assert eh["transfer_residual_momentum"] < 1e-5
    top = np.abs(tully3_exact["nuclear/force_mean"]).max()
    assert 1e-3 * top < eh["transfer_force_error_max"] < top
    assert eh["transfer_geometric_peak"] > 0
    assert png.stat().st_size > 20_000
    text = mqcd.analysis.compare.compare_files([tmp_path / "exact.h5", tmp_path / "eh.h5"],
                                               labels=["exact", "ehrenfest"])
    assert "Energy and momentum transfer" in text and "| ehrenfest |" in text.split(
        "Energy and momentum transfer")[1]
