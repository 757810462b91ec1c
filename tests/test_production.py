"""Issue 16: vibronic/excitonic/scattering models, thermal and diabatic initial conditions, the
canonical multi-surface ensemble and its weights, and the many-state electronic kernels."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg

import mqcd
from mqcd.electronic import batched
from mqcd.electronic.propagate import _propagaten, propagate_adiabatic
from mqcd.ensemble import swarm as swarm_mod
from mqcd.ensemble.initial import initial_conditions
from mqcd.ensemble.thermal import Surface
from mqcd.io.deck import DeckError, deck_model, read_deck
from mqcd.models import build_model
from mqcd.models.exciton import CM, FMO, Holstein
from mqcd.models.lvc import LVC, ParameterFileError
from mqcd.models.shin_metiu import ShinMetiu

ROOT = Path(__file__).resolve().parents[1]
PYRAZINE = ROOT / "inputs" / "pyrazine_raab1999.toml"


def lvc_data(ns=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"units": "hartree", "energies": list(np.linspace(-0.02, 0.02, ns)),
            "frequencies": [0.004, 0.006, 0.005],
            "kappa": [[a, k, float(rng.normal(0, 0.003))] for a in range(ns) for k in range(2)],
            "lambda": [[a, b, 2, float(rng.normal(0, 0.002))] for a in range(ns)
                       for b in range(a + 1, ns)]}


def deck(model, initial, n=200, method="ehrenfest", dt=2.0, t_end=40.0, **mopts):
    return {"model": model, "initial": initial, "method": {"name": method, **mopts},
            "run": {"trajectories": n, "dt": dt, "t_end": t_end, "seed": 3},
            "output": {"stride": 5}}


# ----------------------------------------------------------------------------- models
def test_lvc_matrix_elements_follow_the_file():
    data = {"units": "eV", "states": ["A", "B"], "modes": ["t", "c"], "energies": [-0.1, 0.2],
            "frequencies": [0.1, 0.2], "kappa": [["A", "t", 0.05], ["B", "t", -0.07]],
            "lambda": [["A", "B", "c", 0.03]], "couplings": [["A", "B", 0.01]],
            "gamma": [["A", "A", "t", "c", 0.02], ["A", "B", "t", "t", 0.004]]}
    m = LVC(data=data)
    ev = 1.0 / 27.211386245988
    q = np.array([[0.3, -0.7]])
    H, dH = m.evaluate(q)
    t, c = q[0]
    v0 = 0.5 * 0.1 * t * t + 0.5 * 0.2 * c * c
    H11 = -0.1 + v0 + 0.05 * t + 0.02 * t * c
    H22 = 0.2 + v0 - 0.07 * t
    H12 = 0.01 + 0.03 * c + 0.004 * t * t
    assert np.allclose(H[0], np.array([[H11, H12], [H12, H22]]) * ev, rtol=1e-12, atol=0)
    assert np.allclose(m.masses, 1.0 / (np.array([0.1, 0.2]) * ev))
    assert np.allclose(dH[0, 1, 0, 0], (0.2 * c + 0.02 * t) * ev)
    assert np.allclose(dH[0, 0, 0, 1], 0.008 * t * ev)


def test_lvc_parameter_file_errors_name_the_entry(tmp_path):
    bad = {"energies": [0.0, 0.1], "frequencies": [0.01], "kappa": [["S9", 0, 0.1]]}
    with pytest.raises(ParameterFileError, match=r"kappa entry 0: state 'S9'"):
        LVC(data=bad)
    with pytest.raises(ValueError, match="masses are fixed"):
        LVC(data={"energies": [0.0], "frequencies": [0.01]}, mass=3.0)
    f = tmp_path / "m.toml"
    f.write_text("energies = [0.0, 0.1]\nfrequencies = [0.01]\nlambda = [[0, 1, 0, 0.01]]\n")
    m = build_model({"name": "lvc", "parameter_file": "m.toml"}, base_dir=tmp_path)
    assert m.nstates == 2 and m.ndof == 1


def test_pyrazine_model_is_bounded_and_published_gap():
    m = LVC(parameter_file=PYRAZINE)
    assert (m.nstates, m.ndof) == (2, 24)
    H, _ = m.evaluate(np.zeros((1, 24)))
    assert abs((H[0, 1, 1] - H[0, 0, 0]) * 27.211386245988 - 0.846) < 1e-9   # 2 Delta
    h = 1e-4                                   # both diabatic surfaces have positive curvature
    for a in range(2):
        hess = np.empty((24, 24))
        for k in range(24):
            e = np.zeros((1, 24))
            e[0, k] = h
            hess[k] = (m.evaluate(e)[1][0, :, a, a] - m.evaluate(-e)[1][0, :, a, a]) / (2 * h)
        assert np.linalg.eigvalsh(0.5 * (hess + hess.T)).min() > 0


def test_shin_metiu_basis_reproduces_the_grid_energies():
    m = ShinMetiu()
    err = 0.0
    for R in np.linspace(-9.0, 9.0, 19):
        ref = scipy.linalg.eigh(m.grid_hamiltonian(R), eigvals_only=True, subset_by_index=[0, 2])
        E = np.linalg.eigvalsh(m.evaluate([[R]])[0][0])[:3]
        err = max(err, np.abs(E - ref).max())
    assert err < 2e-6, err


def test_fmo_and_holstein_baths():
    m = FMO(modes=12)
    assert m.ndof == 84 and m.nstates == 7
    assert np.allclose(m.reorganisation_energies(), 35.0 * CM, rtol=1e-12)
    # equal shares of lambda, frequencies at the midpoints of the arctan quantiles
    w = m.omega[:12]
    wc = m.param_values["omega_c_cm"] * CM
    assert np.allclose((2 / np.pi) * np.arctan(w / wc), (np.arange(12) + 0.5) / 12)
    h = Holstein(sites=5, J=0.5, omega=0.3, g=1.2, periodic=1)
    assert np.allclose(h.reorganisation_energies(), 1.2 ** 2 * 0.3)
    H, _ = h.evaluate(np.zeros((1, 5)))
    assert H[0, 0, 4] == -0.5 and H[0, 1, 3] == 0.0 and H[0, 2, 3] == -0.5


# ----------------------------------------------------------------------------- batched kernels
def random_batch(n, N=150, seed=0, scale=0.05):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(N, n, n)) * scale
    H0 = A + A.transpose(0, 2, 1)
    B = rng.normal(size=(N, n, n)) * scale * 0.02
    H1 = H0 + B + B.transpose(0, 2, 1)
    psi = rng.normal(size=(N, n)) + 1j * rng.normal(size=(N, n))
    psi /= np.linalg.norm(psi, axis=1)[:, None]
    rho = 0.7 * psi[:, :, None] * psi.conj()[:, None, :] + 0.3 * np.eye(n) / n    # mixed
    return H0, H1, rho


@pytest.mark.parametrize("n", [3, 5, 16])
def test_batched_jacobi_matches_lapack_and_is_lane_independent(n):
    H0, H1, _ = random_batch(n)
    E0, V0 = np.linalg.eigh(H0)
    E = np.empty_like(E0)
    V = np.ascontiguousarray(V0).copy()
    batched.jacobi_eigh(H1, E, V, True)                    # warm start from H0's eigenvectors
    assert np.allclose(E, np.linalg.eigvalsh(H1), rtol=0, atol=1e-14)
    assert np.abs(np.einsum("nka,nkb->nab", V, V) - np.eye(n)).max() < 1e-13
    resid = np.einsum("nka,nkl,nlb->nab", V, H1, V) - E[:, :, None] * np.eye(n)
    assert np.abs(resid).max() < 1e-13
    Ec, Vc = np.empty_like(E), np.empty_like(V)
    batched.jacobi_eigh(H1, Ec, Vc, False)                 # cold start
    assert np.allclose(Ec, E, rtol=0, atol=1e-14)
    sub = np.array([7, 3, 100, 42])                        # same lanes, other chunk mates
    Es, Vs = np.empty((4, n)), np.ascontiguousarray(V0[sub])
    batched.jacobi_eigh(np.ascontiguousarray(H1[sub]), Es, Vs, True)
    assert np.array_equal(Es, E[sub]) and np.array_equal(Vs, V[sub])


@pytest.mark.parametrize("n", [3, 8])
@pytest.mark.parametrize("dt", [1.0, 300.0])          # 300: X norms > 1, scaling and squaring
def test_batched_exponential_equals_the_eigendecomposition_path(n, dt):
    H0, H1, rho = random_batch(n, seed=n)
    G = np.zeros((1, 1, 1), dtype=np.complex128)
    for nsub in (1, 3):
        ref = rho.copy()
        _propagaten(ref, H0, H1, G, False, dt, nsub)
        r = rho.copy()
        batched.propagate_taylor(r, H0, H1, dt, nsub)
        assert np.abs(r - ref).max() < 1e-12
    tr = np.trace(r, axis1=1, axis2=2).real
    assert np.abs(tr - 1).max() < 1e-13
    assert np.abs(np.einsum("nab,nba->n", r, r) - np.einsum("nab,nba->n", rho, rho)).max() < 1e-13


def test_split_step_is_exact_for_constant_H_and_second_order():
    n = 4
    H0, H1, rho = random_batch(n, seed=9)
    E, V = np.linalg.eigh(H0)
    r, ref = rho.copy(), rho.copy()
    P = propagate_adiabatic(r, E, V, E, V, 7.0)
    _propagaten(ref, H0, H0, np.zeros((1, 1, 1), complex), False, 7.0, 1)
    assert np.abs(r - ref).max() < 1e-13
    assert np.allclose(P, np.einsum("nka,nkl,nla->na", V, r, V).real, atol=1e-14)
    # varying H: the split and midpoint rules differ by O(dt^3) per step
    errs = []
    for dt in (4.0, 2.0):
        Hb = H0 + (H1 - H0) * dt / 4.0
        E1, V1 = np.linalg.eigh(Hb)
        a, b = rho.copy(), rho.copy()
        propagate_adiabatic(a, E, V, E1, V1, dt)
        _propagaten(b, H0, Hb, np.zeros((1, 1, 1), complex), False, dt, 50)
        errs.append(np.abs(a - b).max())
    assert 6.0 < errs[0] / errs[1] < 10.0, errs


@pytest.fixture
def lvc3(tmp_path):
    import json
    f = tmp_path / "lvc3.json"
    f.write_text(json.dumps(lvc_data(3)))
    return {"name": "lvc", "parameter_file": str(f)}


def test_many_state_fssh_is_gauge_invariant_and_conserves_energy(lvc3, monkeypatch):
    ini = {"sampling": "wigner-thermal", "temperature": 0.0, "state": 2}
    d = deck(lvc3, ini, n=40, method="fssh", dt=4.0, t_end=2000.0)
    ref = mqcd.run(d)
    assert ref.attrs["energy_drift"] < 1e-6
    rng = np.random.default_rng(0)
    orig = swarm_mod._diagonalize

    def random_signs(H, E=None, V=None):
        E, V = orig(H, E, V)
        return E, V * rng.choice([-1.0, 1.0], size=(V.shape[0], 1, V.shape[2]))
    monkeypatch.setattr(swarm_mod, "diagonalize", random_signs)   # LAPACK + random signs
    res = mqcd.run(d)
    assert np.array_equal(res["final/active_state"], ref["final/active_state"])
    assert np.abs(res["populations/adiabatic"] - ref["populations/adiabatic"]).max() < 1e-9


# ----------------------------------------------------------------------------- initial states
def test_wigner_thermal_moments_and_zero_temperature_limit():
    n = 20000
    d = read_deck(deck({"name": "spin_boson", "modes": 4}, {"sampling": "wigner-thermal",
                                                              "kT": 0.4}, n=n))
    m = deck_model(d)
    ic = initial_conditions(d, m, np.arange(n))
    coth = 1 / np.tanh(m.omega / 0.8)
    se = np.sqrt(2.0 / n)
    assert np.all(np.abs(np.mean(ic.x ** 2, 0) / (coth / (2 * m.omega)) - 1) < 5 * se)
    assert np.all(np.abs(np.mean(ic.p ** 2, 0) / (coth * m.omega / 2) - 1) < 5 * se)
    # T = 0 is the ground-state Wigner function: the same draws as sampling = "wigner"
    m2 = LVC(parameter_file=ROOT / "inputs" / "lvc_pyrazine_2mode.toml")
    sig = 1 / np.sqrt(2 * m2.masses * m2.harmonic_reference()[1])
    base = {"name": "lvc", "parameter_file": str(ROOT / "inputs" / "lvc_pyrazine_2mode.toml")}
    a = read_deck(deck(base, {"sampling": "wigner-thermal", "temperature": 0.0}, n=50))
    b = read_deck(deck(base, {"sampling": "wigner", "position": [0.0, 0.0],
                              "momentum": [0.0, 0.0], "width": sig.tolist()}, n=50))
    ia, ib = (initial_conditions(x, deck_model(x), np.arange(50)) for x in (a, b))
    assert np.allclose(ia.x, ib.x, rtol=1e-14) and np.allclose(ia.p, ib.p, rtol=1e-14)
    ex = read_deck(deck(base, {"sampling": "wigner-thermal", "temperature": 0.0}), for_exact=True)
    assert np.allclose(ex.initial["width"], sig)


def test_gibbs_weights_against_quadrature_and_in_every_average():
    model = {"name": "spin_boson", "modes": 1, "epsilon": 0.25, "Delta": 0.3, "alpha": 2.0,
             "omega_c": 1.0}
    kT, n = 0.5, 4000
    d = read_deck(deck(model, {"sampling": "gibbs", "kT": kT, "gibbs_allocation": "equal"},
                       n=n, method="fssh", dt=0.05, t_end=0.5))
    m = deck_model(d)
    ic = initial_conditions(d, m, np.arange(n))
    ens = ic.report["gibbs"]
    Z = []
    for j in range(2):
        s = Surface(m, j, "adiabatic")
        Z.append(scipy.integrate.quad(lambda x: np.exp(-s(np.array([[x]]))[0][0] / kT),
                                      -15, 15, limit=400)[0])
    q_ref = np.array(Z) / sum(Z)
    assert np.all(np.abs(ens.q - q_ref) < 4 * ens.q_se), (ens.q, q_ref, ens.q_se)
    assert np.array_equal(ens.counts, [n // 2, n // 2])
    assert np.allclose(ic.weight[: n // 2], 2 * ens.q[0]) and np.allclose(ic.weight.mean(), 1)
    res = mqcd.run(d)
    assert np.allclose(res["populations/adiabatic"][0], ens.q, atol=1e-12)
    assert np.allclose(res["populations/active"][0], ens.q, atol=1e-12)
    assert np.array_equal(res["final/weight"], ic.weight)


def test_boltzmann_effective_sample_size_and_moments():
    n = 4000
    d = read_deck(deck({"name": "spin_boson", "modes": 3},
                       {"sampling": "boltzmann", "kT": 0.5, "basis": "diabatic", "state": 0},
                       n=n))
    m = deck_model(d)
    ic = initial_conditions(d, m, np.arange(n))
    info = ic.report["boltzmann"]
    assert info["ess"] > 0.5 * info["samples"] and info["rhat"] < 1.05
    mu, var = -m.coupling / m.omega ** 2, 0.5 / m.omega ** 2
    assert np.all(np.abs(ic.x.mean(0) - mu) < 4.5 * np.sqrt(var / info["ess"]))
    assert np.all(np.abs(ic.x.var(0) / var - 1) < 4.5 * np.sqrt(2 / info["ess"]))


def test_diabatic_and_coherent_initial_states(lvc3):
    rho_in = [[0.5, [0.1, 0.2], 0.0], [[0.1, -0.2], 0.3, 0.0], [0.0, 0.0, 0.2]]
    d = read_deck(deck(lvc3, {"sampling": "wigner-thermal", "temperature": 0.0,
                              "basis": "diabatic", "density_matrix": rho_in}, n=3000))
    m = deck_model(d)
    ic = initial_conditions(d, m, np.arange(3000))
    want = np.array([[0.5, 0.1 + 0.2j, 0], [0.1 - 0.2j, 0.3, 0], [0, 0, 0.2]])
    assert np.allclose(ic.rho, want)
    # active states drawn from the adiabatic populations
    H, _ = m.evaluate(ic.x)
    E, V = np.linalg.eigh(H)
    P = np.einsum("nka,kl,nla->na", V, want, V).real.mean(0)
    frac = np.bincount(ic.active, minlength=3) / 3000
    assert np.all(np.abs(frac - P) < 4 * np.sqrt(P * (1 - P) / 3000))
    # a coherent adiabatic superposition: V^dagger rho V = c c^dagger with the phase convention
    c = np.array([0.6, 0.8j, 0.0])
    d2 = read_deck(deck(lvc3, {"sampling": "wigner-thermal", "temperature": 0.0,
                               "amplitudes": [0.6, [0.0, 0.8], 0.0]}, n=20))
    ic2 = initial_conditions(d2, m, np.arange(20))
    from mqcd.ensemble.electronic import fix_phases
    H, _ = m.evaluate(ic2.x)
    Vf = fix_phases(np.linalg.eigh(H)[1])
    ad = np.einsum("nka,nkl,nlb->nab", Vf.conj(), ic2.rho, Vf)
    assert np.allclose(ad, np.outer(c, c.conj()), atol=1e-12)


@pytest.mark.parametrize("initial, message", [
    ({"sampling": "wigner-thermal", "temperature": 10.0, "kT": 0.1}, "not both"),
    ({"sampling": "wigner-thermal"}, "needs temperature"),
    ({"sampling": "wigner-thermal", "kT": 0.1, "width": [1.0, 1.0, 1.0]}, "width is not used"),
    ({"sampling": "wigner"}, "position is required"),
    ({"sampling": "wigner-thermal", "kT": 0.1,
      "density_matrix": [[1, 0, 0], [0, -0.5, 0], [0, 0, 0.5]]}, "negative eigenvalue"),
    ({"sampling": "wigner-thermal", "kT": 0.1, "amplitudes": [1, 0]}, "3 entries"),
    ({"sampling": "gibbs", "kT": 0.1, "gibbs_states": [0, 5]}, "gibbs_states"),
])
def test_bad_initial_sections_are_refused(lvc3, initial, message):
    with pytest.raises(DeckError, match=message):
        read_deck(deck(lvc3, initial))


def test_exact_solver_refuses_mixed_or_diabatic_starts(lvc3, tmp_path):
    from mqcd.api import run_exact_file
    for ini in ({"sampling": "wigner-thermal", "temperature": 0.0, "basis": "diabatic"},
                {"sampling": "wigner-thermal", "temperature": 300.0}):
        read_deck(deck(lvc3, ini), for_exact=True)           # check-model reads it like this
        with pytest.raises(DeckError, match="mqcd exact propagates one wavefunction"):
            run_exact_file(deck(lvc3, ini), tmp_path / "x.h5")
        assert not (tmp_path / "x.h5").exists()


@pytest.mark.skipif(not (Path(sys.executable).parent / "mpiexec").exists(),
                    reason="mpiexec of the venv not available")
def test_thermal_and_weighted_runs_mpi_equal_serial(tmp_path, lvc3):
    from mqcd.io.deck import _to_text
    d = deck(lvc3, {"sampling": "gibbs", "kT": 0.002, "mcmc_burn_in": 200,
                    "mcmc_thinning": 4}, n=37, method="fssh", dt=4.0, t_end=200.0,
             decoherence="edc")
    path = tmp_path / "g.toml"
    path.write_text(_to_text(d))
    serial = mqcd.run(d)
    env = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "PMI_RANK")}
    out = tmp_path / "g_mpi.h5"
    subprocess.run([str(Path(sys.executable).parent / "mpiexec"), "-n", "2", sys.executable,
                    "-m", "mqcd", "run", str(path), "-o", str(out), "--quiet"], check=True,
                   env=env, timeout=300)
    par = mqcd.load(out)
    for k in ("populations/adiabatic", "populations/active", "final/weight", "final/position",
              "initial/gibbs_q"):
        assert np.array_equal(serial[k], par[k]), k
