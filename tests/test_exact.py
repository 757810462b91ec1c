"""Physics checks of the exact split-operator reference (mqcd.exact).

The small models below are loaded by the deck reader from this very file (``[model] file``).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

from mqcd.exact import EXACT_KEYS, exact_plan, run_exact
from mqcd.io.deck import read_deck
from mqcd.models import Model

HERE = __file__


# ----------------------------------------------------------------------------- test models
class Harmonic1(Model):
    """One state, V = M w^2 x^2 / 2."""
    name = "test_harmonic1"
    nstates = 1
    ndof = 1
    mass = 2000.0
    interaction_radius = 5.0
    parameters = {"omega": (0.01, "hartree", "frequency")}

    def evaluate(self, x):
        x = np.atleast_2d(np.asarray(x, dtype=float))
        w = self.param_values["omega"]
        k = self.masses[0] * w * w
        H = (0.5 * k * x[:, 0] ** 2)[:, None, None]
        dH = (k * x[:, 0])[:, None, None, None]
        return H, dH


class Free1(Model):
    """One state, V = 0."""
    name = "test_free1"
    nstates = 1
    ndof = 1
    mass = 100.0
    scattering = True

    def evaluate(self, x):
        x = np.atleast_2d(np.asarray(x, dtype=float))
        n = x.shape[0]
        return np.zeros((n, 1, 1)), np.zeros((n, 1, 1, 1))


class ShiftedHarmonic1(Model):
    """Two displaced harmonic diabats with constant coupling (1D)."""
    name = "test_shifted1"
    nstates = 2
    ndof = 1
    mass = 2000.0
    interaction_radius = 4.0
    parameters = {"k": (0.05, "hartree/bohr^2", ""), "a": (0.5, "bohr", ""),
                  "gap": (0.01, "hartree", ""), "c": (0.005, "hartree", "")}

    def _h1(self, x):
        p = self.param_values
        v1 = 0.5 * p["k"] * (x - p["a"]) ** 2
        v2 = 0.5 * p["k"] * (x + p["a"]) ** 2 + p["gap"]
        H = np.empty((x.size, 2, 2))
        H[:, 0, 0], H[:, 1, 1] = v1, v2
        H[:, 0, 1] = H[:, 1, 0] = p["c"]
        dH = np.zeros((x.size, self.ndof, 2, 2))
        dH[:, 0, 0, 0] = p["k"] * (x - p["a"])
        dH[:, 0, 1, 1] = p["k"] * (x + p["a"])
        return H, dH

    def evaluate(self, x):
        x = np.atleast_2d(np.asarray(x, dtype=float))
        return self._h1(x[:, 0])


class ShiftedHarmonic2(ShiftedHarmonic1):
    """ShiftedHarmonic1 plus an uncoupled harmonic mode y (separable 2D model)."""
    name = "test_shifted2"
    ndof = 2
    parameters = dict(ShiftedHarmonic1.parameters, ky=(0.02, "hartree/bohr^2", ""))

    def evaluate(self, x):
        x = np.atleast_2d(np.asarray(x, dtype=float))
        H, dH = self._h1(x[:, 0])
        vy = 0.5 * self.param_values["ky"] * x[:, 1] ** 2
        H = H + vy[:, None, None] * np.eye(2)
        dH[:, 1] = (self.param_values["ky"] * x[:, 1])[:, None, None] * np.eye(2)
        return H, dH


class ComplexTully1(Model):
    """tully1 with the coupling multiplied by exp(i theta): unitarily equivalent to tully1."""
    name = "test_complex_tully1"
    nstates = 2
    ndof = 1
    mass = 2000.0
    scattering = True
    interaction_radius = 10.0
    dtype = np.complex128

    def evaluate(self, x):
        from mqcd.models import build_model
        H, dH = build_model({"name": "tully1"}).evaluate(x)
        ph = np.exp(0.7j)
        H = H.astype(complex)
        dH = dH.astype(complex)
        H[:, 0, 1] *= ph
        H[:, 1, 0] *= np.conj(ph)
        dH[:, :, 0, 1] *= ph
        dH[:, :, 1, 0] *= np.conj(ph)
        return H, dH


class ThreeD(Model):
    name = "test_3d"
    nstates = 1
    ndof = 3

    def evaluate(self, x):
        x = np.atleast_2d(x)
        return np.zeros((len(x), 1, 1)), np.zeros((len(x), 3, 1, 1))


def deck(model, position, momentum, width, *, state=0, dt=1.0, t_end=1000.0, stride=10,
         stop="time", exact=None, **model_params):
    m = {"name": model} if model[0].islower() else {"file": HERE, "class": model}
    m.update(model_params)
    return {"model": m,
            "initial": {"position": list(position), "momentum": list(momentum),
                        "width": list(width), "state": state},
            "run": {"trajectories": 1, "dt": dt, "t_end": t_end, "stop": stop, "seed": 3},
            "output": {"stride": stride},
            "exact": dict(exact or {})}


def tully(n, k, **kw):
    return deck(f"tully{n}", [-15.0], [float(k)], [10.0 / k], **kw)


# ----------------------------------------------------------------------------- tests
def test_exact_keys_declared_and_validated():
    assert {"box", "dx", "points", "dt", "absorb", "exit_norm"} <= set(EXACT_KEYS)
    with pytest.raises(ValueError, match="exit_norm"):
        read_deck(tully(1, 10, exact={"exit_norm": 2.0}), for_exact=True)
    with pytest.raises(ValueError, match="unknown"):
        read_deck(tully(1, 10, exact={"grid": 3}), for_exact=True)


def test_grid_rule_excludes_origin_and_resolves_momentum():
    plan, dt, nsub = exact_plan(tully(1, 10, t_end=5000.0))
    x = plan.axes()[0]
    assert np.min(np.abs(x)) == pytest.approx(plan.dx[0] / 2, rel=1e-9)   # x = 0 between points
    assert np.pi / plan.dx[0] >= 2 * 13.0 * 0.999                          # k_max = 10 + 6 * 0.5
    v_max = 13.0 / 2000.0
    assert plan.box[0][0] <= -15 - 8 - v_max * 5000 + 1e-9
    assert plan.box[0][1] >= -15 + 8 + v_max * 5000 - 1e-9
    assert dt * nsub == pytest.approx(10.0) and dt <= 1.0


def test_tully1_norm_energy_conservation_and_outputs():
    res = run_exact(tully(1, 10, t_end=4000.0, stride=50))
    norm = res["norm"]
    assert np.max(np.abs(norm - 1.0)) < 1e-11
    e = res["energy/total"]
    assert np.max(np.abs(e - e[0])) / abs(e[0]) < 1e-6
    assert e[0] == pytest.approx(10.0 ** 2 / 4000 + 0.5 ** 2 / 4000 - 0.01, rel=1e-6)
    nt = len(res["time"])
    assert res["time"][-1] == pytest.approx(4000.0)
    assert res["populations/adiabatic"].shape == (nt, 2)
    assert res["populations/adiabatic"][0] == pytest.approx([1.0, 0.0], abs=1e-12)
    np.testing.assert_allclose(res["populations/adiabatic"].sum(1), 1.0, atol=1e-11)
    np.testing.assert_allclose(res["populations/diabatic"].sum(1), 1.0, atol=1e-11)
    assert res["density/n"].shape == (nt, len(res["density/grid_x"]))
    assert res["coherence/indicator"][0] < 1e-12 and res["coherence/indicator"].max() > 1e-3
    assert np.all(res["coherence/indicator"] <= 0.25 + 1e-12)
    for name in ("time", "energy/total", "energy/kinetic", "energy/potential",
                 "nuclear/position_mean", "nuclear/momentum_mean", "density/grid_x", "density/n"):
        assert res.units[name], name
    T, R = res["branching/transmission"], res["branching/reflection"]
    assert T.sum() + R.sum() == pytest.approx(1.0, abs=1e-11)
    a = res.attrs
    assert a["method"] == "exact" and a["model"] == "tully1" and a["trajectories"] == 0
    assert a["seed"] == 3 and a["nstates"] == 2 and a["ndof"] == 1 and "[exact]" in a["deck"]
    assert a["stop_reason"] == "t_end" and a["dt"] == pytest.approx(1.0)


def test_energy_error_is_second_order_in_dt():
    errs = []
    for dt in (2.0, 1.0):
        res = run_exact(tully(1, 10, dt=dt, t_end=3000.0, stride=int(20 / dt),
                              exact={"dt": dt}))
        e = res["energy/total"]
        errs.append(np.max(np.abs(e - e[0])))
    assert 3.0 < errs[0] / errs[1] < 5.0


def test_harmonic_centre_follows_classical_trajectory():
    w, M, x0, p0 = 0.01, 2000.0, 0.7, 8.0
    sig = 1.5 * np.sqrt(1 / (2 * M * w))              # squeezed: centre still classical
    res = run_exact(deck("Harmonic1", [x0], [p0], [sig], dt=0.5, t_end=700.0, stride=20,
                         exact={"dt": 0.125}))
    t = res["time"]
    x = res["nuclear/position_mean"][:, 0]
    p = res["nuclear/momentum_mean"][:, 0]
    amp = np.hypot(x0, p0 / (M * w))
    # Strang splitting: O(dt^2) phase error, 2e-7 bohr at dt = 0.125 over 1.1 periods
    np.testing.assert_allclose(x, x0 * np.cos(w * t) + p0 / (M * w) * np.sin(w * t), atol=1e-6 * amp)
    np.testing.assert_allclose(p, -M * w * x0 * np.sin(w * t) + p0 * np.cos(w * t),
                               atol=1e-6 * M * w * amp)
    e = res["energy/total"]
    assert np.max(np.abs(e - e[0])) / e[0] < 1e-6       # bounded O(dt^2) oscillation, 3e-7 here


def test_free_gaussian_spreads_analytically():
    M, s0, p0 = 100.0, 0.5, 3.0
    res = run_exact(deck("Free1", [0.0], [p0], [s0], dt=2.0, t_end=200.0, stride=10))
    t = res["time"]
    xg = res["density/grid_x"]
    n = res["density/n"]
    dx = xg[1] - xg[0]
    mean = (n * xg).sum(1) * dx
    var = (n * xg ** 2).sum(1) * dx - mean ** 2
    np.testing.assert_allclose(mean, p0 * t / M, atol=1e-9)
    np.testing.assert_allclose(np.sqrt(var), s0 * np.sqrt(1 + (t / (2 * M * s0 ** 2)) ** 2),
                               rtol=1e-9)
    # momentum distribution is stationary
    assert res["energy/kinetic"] == pytest.approx(p0 ** 2 / (2 * M) + 1 / (8 * M * s0 ** 2))


def test_tully1_branching_self_converged():
    """Fixed time 9000 a.u. (main packet out): default vs dt/2 vs dx/2 vs absorbing boundary."""
    base = tully(1, 10, t_end=9000.0, stride=100)
    ref = run_exact(base)
    plan, dt, _ = exact_plan(base)

    def probs(res):
        return np.concatenate([res["branching/transmission"], res["branching/reflection"]])

    p0 = probs(ref)
    assert p0[0] == pytest.approx(0.845, abs=2e-3) and p0[1] == pytest.approx(0.155, abs=2e-3)
    for ex in ({"dt": dt / 2}, {"dx": [plan.dx[0] / 2], "box": list(plan.box[0])},
               {"absorb": True}):
        d = copy.deepcopy(base)
        d["exact"].update(ex)
        res = run_exact(d)
        assert np.max(np.abs(probs(res) - p0)) < 1e-4, ex
        if ex.get("absorb"):
            assert res["exact/absorbed"][-1].sum() > 0.5          # most of the norm absorbed
            assert res["norm"][-1] < 0.5
            np.testing.assert_allclose(res["populations/adiabatic"][-1],
                                       ref["populations/adiabatic"][-1], atol=1e-4)


def test_complex_hamiltonian_equivalent_to_real():
    d_real = tully(1, 12, t_end=3000.0, stride=100)
    d_cplx = copy.deepcopy(d_real)
    d_cplx["model"] = {"file": HERE, "class": "ComplexTully1"}
    a, b = run_exact(d_real), run_exact(d_cplx)
    for name in ("populations/adiabatic", "populations/diabatic", "energy/total",
                 "coherence/indicator"):
        np.testing.assert_allclose(b[name], a[name], atol=1e-10, err_msg=name)


def test_tully3_initial_state_and_exit_rule():
    res = run_exact(tully(3, 10, t_end=40000.0, stride=100, stop="exit",
                          exact={"absorb": True, "exit_norm": 1e-4}))
    # on the left the lower adiabatic state is the second diabatic state
    assert res["populations/adiabatic"][0] == pytest.approx([1.0, 0.0], abs=1e-10)
    assert res["populations/diabatic"][0] == pytest.approx([0.0, 1.0], abs=1e-4)
    a = res.attrs
    assert a["stop_reason"] == "exit" and a["t_final"] < 40000.0
    assert a["norm_not_out"] < 1e-4 and res["exact/norm_not_out"][-1] == a["norm_not_out"]
    assert res["exact/norm_not_out"][-2] >= 1e-4
    T, R = res["branching/transmission"], res["branching/reflection"]
    assert T.sum() + R.sum() == pytest.approx(1.0, abs=1e-9)
    assert R[1] > 0.15 and T[0] > 0.6       # reflection on the upper state is the model's point


def test_exit_rule_waits_for_tully1_resonance():
    """Near k = 10 part of the norm lingers; stopping at the first exit time would leave it."""
    res = run_exact(tully(1, 10, t_end=60000.0, stride=500, stop="exit",
                          exact={"absorb": True, "exit_norm": 1e-3, "dt": 2.0,
                                 "store_density": False}))
    inside = res["exact/norm_inside"]
    t = res["time"]
    assert res.attrs["stop_reason"] == "exit"
    assert res.attrs["norm_not_out"] < 1e-3
    # at t = 8000 the main packet has left but more than 1e-3 is still inside
    assert inside[np.searchsorted(t, 8000.0)] > 1e-3
    assert res.attrs["t_final"] > 12000.0


def test_coherence_indicator_counts_the_absorbed_norm():
    """With absorbing layers the indicator is a whole-wavefunction quantity: the absorbed parts
    keep the coherence they carried (normalised by the initial norm, not the norm left on the
    grid). Tully 3 k = 20 separates its packets before they reach the layers, so a box large
    enough that nothing is absorbed must give the same curve."""
    kw = dict(t_end=3000.0, stride=40, stop="time")
    ab = run_exact(tully(3, 20, exact={"absorb": True, "store_density": False}, **kw))
    big = run_exact(tully(3, 20, exact={"absorb": False, "box": [-200.0, 200.0],
                                        "store_density": False}, **kw))
    assert ab["norm"][-1] < 0.5                    # most of the packet has been absorbed
    assert big["norm"][-1] == pytest.approx(1.0, abs=1e-9)
    I_ab, I_big = ab["coherence/indicator"], big["coherence/indicator"]
    assert I_big.max() > 0.09
    assert np.max(np.abs(I_ab - I_big)) < 1e-3


def test_2d_separable_matches_1d_and_conserves():
    ex1 = {"box": [-6.0, 6.0], "points": [96], "dt": 0.5}
    ex2 = {"box": [-6.0, 6.0, -4.0, 4.0], "points": [96, 48], "dt": 0.5}
    d1 = deck("ShiftedHarmonic1", [1.2], [0.0], [0.25], state=1, dt=0.5, t_end=400.0, stride=10,
              exact=ex1)
    d2 = deck("ShiftedHarmonic2", [1.2, 0.4], [0.0, 2.0], [0.25, 0.3], state=1, dt=0.5,
              t_end=400.0, stride=10, exact=ex2)
    r1, r2 = run_exact(d1), run_exact(d2)
    assert np.max(np.abs(r2["norm"] - 1)) < 1e-12
    e = r2["energy/total"]
    assert np.max(np.abs(e - e[0])) / abs(e[0]) < 1e-5
    # the y mode is uncoupled: electronic dynamics and the x motion are those of the 1D model
    np.testing.assert_allclose(r2["populations/adiabatic"], r1["populations/adiabatic"], atol=1e-10)
    np.testing.assert_allclose(r2["populations/diabatic"], r1["populations/diabatic"], atol=1e-10)
    np.testing.assert_allclose(r2["coherence/indicator"], r1["coherence/indicator"], atol=1e-10)
    np.testing.assert_allclose(r2["nuclear/position_mean"][:, 0], r1["nuclear/position_mean"][:, 0],
                               atol=1e-9)
    assert r1["populations/adiabatic"][:, 0].max() > 0.05        # something happens
    # y follows its own classical trajectory
    wy = np.sqrt(0.02 / 2000.0)
    t = r2["time"]
    y = 0.4 * np.cos(wy * t) + 2.0 / (2000 * wy) * np.sin(wy * t)
    np.testing.assert_allclose(r2["nuclear/position_mean"][:, 1], y, atol=1e-5)
    assert r2["density/n"].shape == (len(t), 96, 48)
    assert "density/grid_y" in r2 and r2.attrs["ndof"] == 2


def test_conical2d_auto_grid_runs_and_conserves():
    d = deck("conical2d", [0.0, 0.0], [0.0, 0.0], [0.158, 0.204], state=1, dt=1.0, t_end=60.0,
             stride=10, exact={"points": [64, 64], "box": [-3.0, 3.0, -3.0, 3.0],
                               "store_density": False})
    res = run_exact(d)
    assert np.max(np.abs(res["norm"] - 1)) < 1e-12
    assert res["populations/adiabatic"][0] == pytest.approx([0.0, 1.0], abs=1e-10)
    assert abs(res["nuclear/position_mean"][-1, 1]) < 1e-6        # y -> -y symmetry
    assert "branching/transmission" not in res                     # not a scattering model


def test_three_dof_rejected():
    with pytest.raises(ValueError, match="1 or 2 nuclear degrees of freedom"):
        run_exact(deck("ThreeD", [0.0] * 3, [0.0] * 3, [1.0] * 3))
