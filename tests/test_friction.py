"""Electrons at finite temperature, electronic friction and current-induced forces (issue 15;
docs/friction.md)."""
import json
import math

import numpy as np
import pytest
import scipy.integrate

from mqcd.friction import friction_at
from mqcd.friction.calculator import junction_force
from mqcd.friction.equilibrium import (equilibrium_density, fermi, free_energy,
                                       solve_chemical_potential)
from mqcd.friction.junction import loop_work, steady_state
from mqcd.friction.langevin import ou_step
from mqcd.friction.tensor import gamma_beta_lines
from mqcd.io.deck import DeckError, read_deck
from mqcd.models.newns_anderson import NewnsAnderson

G, GAMMA, KT = 0.004, 0.02, 0.005


def analytic_eta(g, gamma, eps_d, kT):
    """Wide-band result pi g^2 int A_d^2 (-f') (the issue's formula)."""
    A = lambda e: (gamma / (2 * math.pi)) / ((e - eps_d) ** 2 + 0.25 * gamma ** 2)  # noqa: E731
    if kT == 0:
        return math.pi * g * g * A(0.0) ** 2
    mf = lambda e: fermi(e, 0.0, kT) * (1 - fermi(e, 0.0, kT)) / kT  # noqa: E731
    return math.pi * g * g * scipy.integrate.quad(lambda e: A(e) ** 2 * mf(e), -40 * kT,
                                                  40 * kT, points=[0.0, eps_d], limit=400)[0]


@pytest.fixture(scope="module")
def metal():
    return NewnsAnderson(nbath=200, gamma=GAMMA, bandwidth=1.0, g=G, window=0.1,
                         window_fraction=0.6)


@pytest.mark.parametrize("x", [-3.0, 0.0, 2.0])
def test_eta_band_vs_wide_band_analytic(metal, x):
    """The discretised band (MB (121), broadened and extrapolated) within 2 % of the analytic
    wide-band friction; the continuum NEGF evaluation within 1e-6."""
    ref = analytic_eta(G, GAMMA, G * x, KT)
    band = friction_at(metal, [x], KT)
    wide = friction_at(metal, [x], KT, source="wide-band")
    assert abs(band.eta[0, 0] / ref - 1) < 0.02
    assert abs(wide.eta[0, 0] / ref - 1) < 1e-6
    assert band.B[0, 0] == 0.0 and wide.B[0, 0] == 0.0


def test_zero_temperature_limit_is_head_gordon_tully():
    """eta(kT) of the wide-band model tends to pi g^2 A_d(mu)^2 (HGT) as kT -> 0, and the
    continuum evaluation at kT = 0 is that value."""
    m = NewnsAnderson(nbath=2, gamma=GAMMA, g=G)
    hgt = analytic_eta(G, GAMMA, G * 1.0, 0.0)
    e0 = friction_at(m, [1.0], 0.0, source="wide-band").eta[0, 0]
    assert abs(e0 / hgt - 1) < 1e-6
    errs = [abs(friction_at(m, [1.0], t, source="wide-band").eta[0, 0] / hgt - 1)
            for t in (1e-3, 1e-4)]
    assert errs[1] < errs[0] and errs[1] < 1e-3


def test_detailed_balance_many_state():
    """MB (120): gamma_kj(omega) = -exp(beta omega) gamma_jk(-omega), line by line, to
    round-off, for a random Hermitian many-state H and two force operators."""
    rng = np.random.default_rng(3)
    ns, beta = 6, 7.0
    A = rng.normal(size=(ns, ns)) + 1j * rng.normal(size=(ns, ns))
    E, V = np.linalg.eigh(A + A.conj().T)
    D = []
    for _ in range(2):
        B = rng.normal(size=(ns, ns)) + 1j * rng.normal(size=(ns, ns))
        D.append(V.conj().T @ (B + B.conj().T) @ V)
    D = np.array(D)
    p = np.exp(-beta * (E - E.min()))
    p /= p.sum()
    om, W = gamma_beta_lines(E, p, D)
    # the line (n, m) at omega_nm against (m, n) at -omega_nm
    lhs = W
    rhs = -np.exp(beta * om)[None, None] * np.transpose(W, (1, 0, 3, 2))
    off = ~np.eye(ns, dtype=bool)
    scale = np.abs(W).max()
    assert np.abs(lhs - rhs)[:, :, off].max() < 1e-12 * scale


def test_free_energy_gradient_is_F0(metal):
    """F0 = -d(Phi_el + U0)/dx in equilibrium, to 1e-8, at fixed mu and at fixed N_el."""
    for n_el in (None, 100.3):
        def phi(x):
            return friction_at(metal, [x], KT, n_el=n_el).free_energy
        x, h = 1.3, 1e-4
        # fourth-order central difference
        dphi = (-phi(x + 2 * h) + 8 * phi(x + h) - 8 * phi(x - h) + phi(x - 2 * h)) / (12 * h)
        F0 = friction_at(metal, [x], KT, n_el=n_el).F0[0]
        assert abs(F0 + dphi) < 1e-8


def test_fermi_and_thermal_states():
    """Fermi density: trace N_el at fixed electron number, occupations f(eps); thermal: trace 1,
    ground state at kT = 0."""
    m = NewnsAnderson(nbath=20)
    H, _ = m.evaluate(np.array([[0.3], [-0.2]]))
    rho, mus = equilibrium_density(H, "fermi", 0.01, n_el=10.5)
    assert np.allclose(np.trace(rho, axis1=1, axis2=2).real, 10.5, atol=1e-11)
    E = np.linalg.eigvalsh(H[0])
    assert abs(solve_chemical_potential(E, 10.5, 0.01) - mus[0]) < 1e-12
    rho0, _ = equilibrium_density(H[:1], "thermal", 0.0)
    w, v = np.linalg.eigh(H[0])
    assert np.allclose(rho0[0], np.outer(v[:, 0], v[:, 0]), atol=1e-12)
    assert np.allclose(free_energy(E[None], "thermal", 0.0), E[0])


def test_junction_zero_bias_conservative_and_biased_not():
    """Two levels, two leads, dof 0 on level 0, dof 1 on level 1 and the bond: the loop work of F0 vanishes at zero bias (round-off and
    quadrature) and not under bias; B = 0 at zero bias, B != 0 under bias."""
    m = NewnsAnderson(levels=2, leads=2, ndof=2, g=0.01, g2=0.01, g_hop=0.01, hopping=0.01,
                      gamma=0.02, nbath=2)

    def work(bias):
        return loop_work(lambda x: junction_force(m, x, 0.001, bias=bias), [0.0, 0.0], 0.5,
                         24)
    w0, w1 = work(0.0), work(0.04)
    assert abs(w0) < 1e-9
    assert abs(w1) > 1e3 * max(abs(w0), 1e-12)
    r0 = friction_at(m, [0.0, 0.0], 0.001, source="wide-band")
    r1 = friction_at(m, [0.0, 0.0], 0.001, bias=0.04, source="wide-band")
    assert abs(r0.B[0, 1]) < 1e-9 * abs(r0.eta).max()
    assert abs(r1.B[0, 1]) > 1e-3 * abs(r1.eta).max()
    assert np.allclose(r1.B, -r1.B.T)


def test_steady_state_equilibrium_matches_band(metal):
    """At zero bias the wide-band steady state gives the band's level occupation and force."""
    x = 0.7
    hM, dhM = metal.molecule(np.array([[x]]))
    rho, F0, eta, B = steady_state(hM[0], dhM[0], metal.lead_widths(), [0.0], KT)
    band = friction_at(metal, [x], KT)
    dU = metal.masses[0] * metal.param_values["omega"] ** 2 * x
    assert abs((F0[0] - dU) - band.F0[0]) < 2e-3 * abs(band.F0[0])


def test_ou_step_keeps_canonical_momenta():
    """The exact O step with tensor friction and a pseudo-magnetic B maps p ~ N(0, kT M) to
    itself (stationary covariance), within the sampling error of 40000 draws."""
    rng = np.random.default_rng(0)
    n, kT, dt = 40000, 0.003, 50.0
    M = np.array([1000.0, 3000.0])
    eta = np.broadcast_to(np.array([[2.0, 0.5], [0.5, 1.0]]), (n, 2, 2)).copy()
    B = np.broadcast_to(np.array([[0.0, 0.8], [-0.8, 0.0]]), (n, 2, 2)).copy()
    p = rng.normal(size=(n, 2)) * np.sqrt(kT * M)
    ou_step(p, M, eta, B, kT, dt, rng.normal(size=(n, 2)))
    C = (p / np.sqrt(M)).T @ (p / np.sqrt(M)) / n / kT
    assert np.abs(C - np.eye(2)).max() < 5 * math.sqrt(2 / n)


def _deck(tmp_path, method="ehrenfest", extra_init="", extra_method="", n=1, t_end=40.0,
          model='name = "newns_anderson"\nnbath = 30\ngamma = 0.05\ng = 0.02\nomega = 0.005'):
    p = tmp_path / "d.toml"
    p.write_text(f"""
[model]
{model}
[initial]
sampling = "fixed"
position = [0.4]
momentum = [0.0]
width = [1.0]
electrons = "fermi"
kT = 0.003
{extra_init}
[method]
name = "{method}"
{extra_method}
[run]
trajectories = {n}
dt = 2.0
t_end = {t_end}
[output]
stride = 5
""")
    return p


def test_one_body_ehrenfest_run(tmp_path):
    """Mixed-state Ehrenfest on the one-body model: N_el and the occupation spectrum conserved,
    energy (Tr(rho h) + U0 + kinetic) conserved."""
    import mqcd
    res = mqcd.run(_deck(tmp_path), output=tmp_path / "o.h5")
    assert np.allclose(res["electrons/number"], res["electrons/number"][0], atol=1e-10)
    assert res["electrons/spectrum_error"].max() < 1e-10
    tot = res["energy/total"]
    assert abs(tot - tot[0]).max() < 1e-6


def test_deck_errors(tmp_path):
    with pytest.raises(DeckError, match="one-body"):
        read_deck(_deck(tmp_path, method="fssh"))
    with pytest.raises(DeckError, match="bias"):
        read_deck(_deck(tmp_path, extra_init="bias = 0.01"))
    with pytest.raises(DeckError, match="one-body model"):
        read_deck(_deck(tmp_path, model='name = "tully1"'))


def test_langevin_equipartition(tmp_path):
    """friction-langevin in the metal's free-energy well: <p^2>/(2M) = kT/2 within 10 % (~3
    standard errors of 400 trajectories over ~5 relaxation times) and <x> at the Boltzmann mean
    of the tabulated force's potential within 0.02 bohr (~4 s.e.); the 1 % check of
    <p^2>/M and var(x) with 40000 trajectories is tools/friction_figures.py equilibrium."""
    import mqcd
    deck = _deck(tmp_path, method="friction-langevin", n=400, t_end=2000.0,
                 extra_method='table_range = [-2.5, 2.5]\ntable_points = 25\n'
                              'source = "wide-band"\nfriction_scale = 40.0')
    res = mqcd.run(deck, output=tmp_path / "l.h5")
    kT = 0.003
    t = res["time"]
    late = t > 750.0
    kin = res["energy/kinetic"][late]
    assert abs(kin.mean() / (0.5 * kT) - 1) < 0.1     # ~3 standard errors
    # the Boltzmann distribution of the tabulated force's potential, by quadrature
    import scipy.interpolate
    F = scipy.interpolate.CubicSpline(res["friction/table_axis"], res["friction/table_F0"][:, 0])
    xs = np.linspace(-2.5, 2.5, 2001)
    phi = -scipy.integrate.cumulative_trapezoid(F(xs), xs, initial=0.0)
    w = np.exp(-(phi - phi.min()) / kT)
    xm = np.trapezoid(w * xs, xs) / np.trapezoid(w, xs)
    assert abs(res["nuclear/position_mean"][late, 0].mean() - xm) < 0.02


def test_langevin_independent_of_swarm_split(tmp_path):
    """Per-trajectory streams: trajectory i's path does not depend on the other trajectories
    (what makes MPI equal serial bit for bit)."""
    from mqcd.io.deck import read_deck
    from mqcd.methods import build_method
    from mqcd.api import build_swarm
    from mqcd.parallel import SerialComm
    deck = read_deck(_deck(tmp_path, method="friction-langevin", n=6, t_end=20.0,
                           extra_method='table_range = [-2.0, 2.0]\ntable_points = 11\n'
                                        'source = "wide-band"'))
    meth = build_method(deck, deck._model, SerialComm())

    class Block(SerialComm):
        def __init__(self, lo, hi):
            super().__init__()
            self.lo, self.hi = lo, hi

        def local_range(self, n):
            return self.lo, self.hi
    full = build_swarm(deck, meth.swarm_model, meth, SerialComm())
    part = build_swarm(deck, meth.swarm_model, meth, Block(3, 6))
    for _ in range(10):
        meth.step(full, 2.0)
        meth.step(part, 2.0)
    assert np.array_equal(full.x[3:], part.x) and np.array_equal(full.p[3:], part.p)


def test_cli_friction_json(tmp_path, capsys):
    from mqcd.cli import main
    d = _deck(tmp_path)
    assert main(["friction", str(d), "--x", "0.5", "--json", "-o", str(tmp_path / "f.h5")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(["x", "F0", "eta", "B"]) <= set(out) and len(out["eta"]) == 1
    assert main(["friction", str(d), "--x", "0.5", "1.0"]) == 2


def test_langevin_mpi_equals_serial(tmp_path):
    """friction-langevin under mpiexec -n 2 gives every dataset of the serial run bit for bit."""
    from test_mpi import assert_same_results, requires_mpi, run_mpi  # noqa: F401
    import mqcd
    from test_mpi import MPIEXEC, _mpi4py_ok
    if MPIEXEC is None or not _mpi4py_ok():
        pytest.skip("no working mpiexec")
    d = _deck(tmp_path, method="friction-langevin", n=21, t_end=60.0,
              extra_method='table_range = [-2.0, 2.0]\ntable_points = 21')
    serial = mqcd.run(d, output=tmp_path / "s.h5")
    assert_same_results(serial, run_mpi(d, 2, tmp_path / "m.h5"),
                        skip=("attrs",))
