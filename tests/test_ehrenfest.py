"""Ehrenfest: conservation, integrator order, limits and independent reference integrations."""
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import mqcd
from mqcd.io.deck import deck_model, read_deck
from mqcd.electronic.adiabatic import eigh

from conftest import make_deck


def test_trace_and_purity_conserved_over_full_run():
    res = mqcd.run(make_deck(ntraj=300, t_end=6000.0))
    assert res["diagnostics/trace_error_max"].max() < 1e-12
    assert 1.0 - res["diagnostics/purity_min"].min() < 1e-12
    rho = res["final/rho_diabatic"]
    assert np.abs(rho - np.conj(rho.transpose(0, 2, 1))).max() < 1e-14


def test_three_state_trace_purity():
    """The N-state (LAPACK) path conserves trace and purity too (spin-boson-like 3-state model)."""
    from mqcd.models import Model

    class Three(Model):
        name = "three"
        nstates = 3
        ndof = 1
        mass = 2000.0

        def evaluate(self, x):
            q = x[:, 0]
            H = np.zeros((len(q), 3, 3))
            dH = np.zeros((len(q), 1, 3, 3))
            H[:, 0, 0], H[:, 1, 1], H[:, 2, 2] = 0.01 * np.tanh(q), -0.01 * np.tanh(q), 0.002
            c = 0.005 * np.exp(-q ** 2)
            H[:, 0, 1] = H[:, 1, 0] = H[:, 1, 2] = H[:, 2, 1] = c
            dH[:, 0, 0, 0], dH[:, 0, 1, 1] = 0.01 / np.cosh(q) ** 2, -0.01 / np.cosh(q) ** 2
            dH[:, 0, 0, 1] = dH[:, 0, 1, 0] = dH[:, 0, 1, 2] = dH[:, 0, 2, 1] = -2 * q * c
            return H, dH

    from mqcd.api import build_swarm
    from mqcd.methods import build_method
    from mqcd.parallel import SerialComm
    deck = read_deck(make_deck(ntraj=50, x0=-6.0))
    m = Three()
    meth = build_method(deck, m)
    sw = build_swarm(deck, m, meth, SerialComm())
    for _ in range(2000):
        meth.step(sw, 0.5)
    tr = np.einsum("nii->n", sw.rho).real
    pur = np.einsum("nij,nji->n", sw.rho, sw.rho).real
    assert np.abs(tr - 1).max() < 1e-12 and np.abs(pur - 1).max() < 1e-12


def test_energy_drift_scales_as_dt_squared():
    drifts = []
    for dt in (1.0, 0.5, 0.25):
        res = mqcd.run(make_deck(ntraj=100, dt=dt, t_end=3000.0, x0=-8.0))
        drifts.append(res["energy/drift_max"].max())
    r1, r2 = drifts[0] / drifts[1], drifts[1] / drifts[2]
    assert 3.0 < r1 < 5.0 and 3.0 < r2 < 5.0, drifts


def _reference_rhs_diabatic(model):
    def rhs(t, y):
        x, p = y[0], y[1]
        c = y[2:4] + 1j * y[4:6]
        H, dH = model.evaluate(np.array([[x]]))
        H, dH = H[0], dH[0, 0]
        dc = -1j * H @ c
        F = -np.real(np.conj(c) @ dH @ c)
        return np.concatenate([[p / model.masses[0], F], dc.real, dc.imag])
    return rhs


def _reference_rhs_adiabatic(model):
    """MB(102)-(104): Ehrenfest in the adiabatic basis (test-only second implementation)."""
    def rhs(t, y):
        x, p = y[0], y[1]
        rho = (y[2:6] + 1j * y[6:10]).reshape(2, 2)
        H, dH = model.evaluate(np.array([[x]]))
        E, V = eigh(H)
        E, V = E[0], V[0]
        Mk = V.T @ dH[0, 0] @ V
        d = np.zeros((2, 2))
        d[0, 1] = Mk[0, 1] / (E[1] - E[0])
        d[1, 0] = Mk[1, 0] / (E[0] - E[1])
        v = p / model.masses[0]
        drho = -1j * (np.diag(E) @ rho - rho @ np.diag(E)) - v * (d @ rho - rho @ d)
        F = -sum(rho[n, n].real * Mk[n, n] for n in range(2))
        F += sum((rho[n, m] * (E[m] - E[n]) * d[m, n]).real for n in range(2) for m in range(2)
                 if n != m)
        return np.concatenate([[v, F], drho.real.ravel(), drho.imag.ravel()])
    return rhs


def test_single_trajectory_matches_solve_ivp_diabatic_and_adiabatic_bases():
    deck = make_deck(ntraj=1, dt=0.1, t_end=4000.0, sampling="fixed", x0=-8.0)
    res = mqcd.run(deck)
    model = deck_model(read_deck(deck))
    t = res["time"]
    pops = res["populations/adiabatic"]
    # diabatic-basis reference (same equations, adaptive RK, tight tolerance)
    H, _ = model.evaluate(np.array([[-8.0]]))
    _, V = eigh(H)
    c0 = V[0, :, 0].astype(complex)
    y0 = np.concatenate([[-8.0, 10.0], c0.real, c0.imag])
    sol = solve_ivp(_reference_rhs_diabatic(model), (0, t[-1]), y0, t_eval=t, rtol=1e-11,
                    atol=1e-12, method="DOP853")
    ref = []
    for j in range(len(t)):
        c = sol.y[2:4, j] + 1j * sol.y[4:6, j]
        H, _ = model.evaluate(np.array([[sol.y[0, j]]]))
        _, V = eigh(H)
        ref.append(np.abs(V[0].T @ c) ** 2)
    assert np.abs(pops - np.array(ref)).max() < 1e-4
    # adiabatic-basis reference MB(102)-(104)
    rho0 = np.diag([1.0, 0.0]).astype(complex)
    y0 = np.concatenate([[-8.0, 10.0], rho0.real.ravel(), rho0.imag.ravel()])
    sol = solve_ivp(_reference_rhs_adiabatic(model), (0, t[-1]), y0, t_eval=t, rtol=1e-11,
                    atol=1e-12, method="DOP853")
    ref_ad = np.stack([sol.y[2], sol.y[5]], axis=1)
    assert np.abs(pops - ref_ad).max() < 1e-4
    assert abs(res["final/position"][0, 0] - sol.y[0, -1]) < 1e-3


def test_zero_coupling_is_classical_dynamics_on_one_surface():
    deck = make_deck(model={"name": "tully1", "C": 0.0}, ntraj=1, dt=0.25, t_end=3000.0,
                     sampling="fixed", x0=-8.0)
    res = mqcd.run(deck)
    A, B, M = 0.01, 1.6, 2000.0

    def rhs(t, y):
        return [y[1] / M, -A * B * np.exp(-B * abs(y[0]))]
    sol = solve_ivp(rhs, (0, res["time"][-1]), [-8.0, 10.0], t_eval=res["time"], rtol=1e-12,
                    atol=1e-12, method="DOP853")
    assert np.abs(res["nuclear/position_mean"][:, 0] - sol.y[0]).max() < 1e-4
    assert np.abs(res["populations/diabatic"][:, 0] - 1.0).max() < 1e-14


def test_streams_do_not_depend_on_swarm_size():
    a = mqcd.run(make_deck(ntraj=10, t_end=50.0))
    b = mqcd.run(make_deck(ntraj=25, t_end=50.0))
    assert np.array_equal(a["final/position"], b["final/position"][:10])
    c = mqcd.run(make_deck(ntraj=10, t_end=50.0, seed=2))
    assert not np.allclose(a["final/position"], c["final/position"])


def test_wigner_sampling_statistics():
    from mqcd.ensemble.initial import sample_phase_space
    from mqcd.ensemble.streams import trajectory_keys
    keys = trajectory_keys(7, range(40000))
    x, p = sample_phase_space({"position": [-15.0], "momentum": [10.0], "width": [2.0],
                               "sampling": "wigner"}, keys)
    assert abs(x.mean() + 15.0) < 0.05 and abs(x.std() - 2.0) < 0.03
    assert abs(p.mean() - 10.0) < 0.01 and abs(p.std() - 0.25) < 0.005


def test_library_result_equals_file(tmp_path):
    out = tmp_path / "r.h5"
    res = mqcd.run(make_deck(ntraj=20, t_end=200.0), output=out)
    back = mqcd.load(out)
    for k in res.keys():
        assert np.array_equal(np.asarray(res[k]), np.asarray(back[k])), k
        assert back.units[k] == res.units[k]
    for k in ("mqcd_version", "method", "model", "deck", "seed"):
        assert k in back.attrs
    with pytest.raises(FileExistsError):
        mqcd.run(make_deck(ntraj=2, t_end=10.0), output=out)


def test_cli_summary_json_and_check_model(tmp_path):
    out = tmp_path / "r.h5"
    mqcd.run(make_deck(ntraj=50, t_end=7000.0, stop="exit"), output=out)
    r = subprocess.run([sys.executable, "-m", "mqcd", "summary", str(out), "--json"],
                       capture_output=True, text=True)
    s = json.loads(r.stdout)
    assert {"populations", "transmission", "reflection", "method", "model", "trajectories"} <= set(s)
    assert abs(sum(s["transmission"]) + sum(s["reflection"]) - 1.0) < 1e-12
    assert abs(sum(s["populations"]) - 1.0) < 1e-12
