"""Issue 17: continuum fields of many-particle trajectories on several surfaces (PSS).

Balance laws on the computed fields (their residuals fall as dt^2, the integrator's error), the
virial identity and the strain derivative of the eigenvalue, the classical Irving-Kirkwood stress
for pair-additive surfaces, parallel surfaces (exact q_j, fields = q-weighted single-surface
fields), the file/CLI path."""
import json

import numpy as np
import pytest
import scipy.integrate

import mqcd
from mqcd.cli import main
from mqcd.conservation import Grid, ensemble_fields, fields_from_file, residuals
from mqcd.conservation.balance import divergence
from mqcd.conservation.fields import trajectory_fields
from mqcd.conservation.micro import configuration
from mqcd.models import build_model

CHAIN = {"name": "pair_chain", "natoms": 8, "box": 32.0, "c12": 3e-4}
BOX = {"name": "pair_box", "natoms": 32, "box": 11.4, "cutoff": 5.5, "switch": 1.0,
       "c12": 2e-4}


def run_deck(model, dt=1.0, nsteps=12, ntraj=4, kT=0.003, allocation="equal", seed=5,
             states=None):
    initial = {"sampling": "gibbs", "kT": kT, "gibbs_allocation": allocation,
               "mcmc_chains": 4, "mcmc_burn_in": 200, "gibbs_samples": 256}
    if states is not None:
        initial["gibbs_states"] = states
    return {"model": model, "initial": initial, "method": {"name": "adiabatic"},
            "run": {"trajectories": ntraj, "dt": dt, "t_end": dt * nsteps, "seed": seed},
            "output": {"stride": 1, "trajectories": True}}


def series_of(res, model, grid, weights="equal", **kw):
    w = None if weights == "equal" else res["final/weight"]
    return ensemble_fields(model, res["trajectories/position"], res["trajectories/momentum"],
                           res["trajectories/surface"], grid, weights=w,
                           times=res["trajectories/time"], **kw)


@pytest.fixture(scope="module")
def chain_runs():
    return {dt: mqcd.run(run_deck(CHAIN, dt=dt, nsteps=int(round(12 / dt))))
            for dt in (1.0, 0.5)}


def test_balance_laws_converge_as_dt_squared(chain_runs):
    """d_t rho + div(rho u) = 0, d_t(rho u) + div Pi = 0, d_t E + div J = 0 on the grid, both
    surfaces weighted equally (so the excited one counts); the residual is the integrator's
    (velocity Verlet: O(dt^2)) and falls by 4 when dt halves; the non-pair-local heat flux is
    0.5% of div J, so dropping it would fail the energy law by orders of magnitude."""
    model = build_model(CHAIN)
    grid = Grid(box=32.0, dim=1, ng=128, width=1.0)
    r = {dt: residuals(series_of(res, model, grid)) for dt, res in chain_runs.items()}
    assert set(chain_runs[0.5]["trajectories/surface"][0]) == {0, 1}
    for law in ("mass", "momentum", "energy"):
        assert r[0.5][law] < 2e-6, (law, r)
        assert 3.0 < r[1.0][law] / r[0.5][law] < 5.5, (law, r)
    assert r[0.5]["virial"] < 1e-13
    s = series_of(chain_runs[0.5], model, grid)
    nl = np.abs(divergence(s["J_nonlocal"], grid)).max() / np.abs(divergence(s["J"], grid)).max()
    assert nl > 1e-3


def test_star_paths_same_divergence(chain_runs):
    """PSS Sec. 7 non-uniqueness: the O(N) star paths of the non-local heat flux differ from
    the all-pairs sum (3.12) by a divergence-free field."""
    model = build_model(CHAIN)
    grid = Grid(box=32.0, dim=1, ng=128, width=1.0)
    res = chain_runs[1.0]
    a = series_of(res, model, grid, paths="pairs")
    b = series_of(res, model, grid, paths="star")
    diff = divergence(a["J"] - b["J"], grid)
    assert np.abs(diff).max() < 1e-11 * np.abs(divergence(a["J"], grid)).max()
    assert np.abs(a["J_nonlocal"] - b["J_nonlocal"]).max() > 1e-3 * np.abs(a["J_nonlocal"]).max()
    # the spanning-tree routing of the star: the same divergence, another field
    t = series_of(res, model, grid, paths="tree")
    diff = divergence(t["J"] - b["J"], grid)
    assert np.abs(diff).max() < 1e-11 * np.abs(divergence(a["J"], grid)).max()
    assert np.abs(t["J_nonlocal"] - b["J_nonlocal"]).max() > 1e-3 * np.abs(a["J_nonlocal"]).max()


def _strain_derivative(model_dict, xrow, surface, eps=1e-6):
    """d lambda_j / d epsilon for x -> (1 + eps) x, box -> (1 + eps) box (central FD)."""
    out = []
    for e in (eps, -eps):
        m = build_model({**model_dict, "box": model_dict["box"] * (1 + e)})
        H, _ = m.evaluate((1 + e) * xrow[None, :])
        out.append(np.linalg.eigvalsh(H[0].real)[surface])
    return (out[0] - out[1]) / (2 * eps)


@pytest.mark.parametrize("mdict", [CHAIN, BOX], ids=["chain", "box3d"])
def test_virial_identity_and_strain_derivative(mdict):
    """The grid integral of the momentum flux equals the whole-box virial (kinetic +
    configurational) to round-off, and the configurational virial is the strain derivative of
    the eigenvalue (independent finite differences of the model energy)."""
    model = build_model(mdict)
    rng = np.random.default_rng(1)
    from mqcd.models.pairs import lattice
    x = lattice(model.natoms, model.dim, model.box) + rng.normal(0, 0.1, model.ndof)
    p = rng.normal(0, np.sqrt(model.masses[0] * 0.003), model.ndof)
    grid = Grid(box=model.box, dim=model.dim, ng=128 if model.dim == 1 else 40,
                width=1.0 if model.dim == 1 else 1.0)
    for surface, der in ((0, "hellmann-feynman"), (1, "minimum-norm")):
        cfg = configuration(model, x, p, surface, der)
        f = trajectory_fields(cfg, grid, "star")
        integral = f["Pi"].sum(axis=-1) * grid.cell_volume
        box = f["box_kinetic"] - f["box_bond"]
        assert np.abs(integral - box).max() < 1e-12 * np.abs(box).max()
        fd = _strain_derivative(mdict, x, surface)
        assert np.trace(f["box_bond"]) == pytest.approx(fd, rel=1e-7, abs=1e-12)


def test_pair_additive_equals_irving_kirkwood():
    """c12 = 0: the surfaces are pair-additive; the bond stress with the minimum-norm
    derivatives (1D: unique) equals the classical Irving-Kirkwood expression
    -sum_p phi_j'(r) r int_0^1 eta ds, evaluated here with scipy quadrature and finite
    differences of the pair function."""
    mdict = {**CHAIN, "c12": 0.0, "natoms": 6, "box": 24.0}
    model = build_model(mdict)
    rng = np.random.default_rng(2)
    from mqcd.models.pairs import lattice
    x = lattice(6, 1, 24.0) + rng.normal(0, 0.15, 6)
    p = np.zeros(6)
    w = 1.0
    grid = Grid(box=24.0, dim=1, ng=96, width=w)
    y = grid.points()
    for surface in (0, 1):
        cfg = configuration(model, x, p, surface, "minimum-norm")
        f = trajectory_fields(cfg, grid, "star")
        H, _ = model.evaluate(x[None, :])
        diabatic = 0 if np.argmin(np.diag(H[0].real)) == surface else 1
        ref = np.zeros(grid.ng)
        for i, j, d in zip(cfg.i, cfg.j, cfg.d[:, 0]):
            r = abs(d)
            h = 1e-5
            dphi = (model.pair_matrices([r + h])[0][0, diabatic, diabatic]
                    - model.pair_matrices([r - h])[0][0, diabatic, diabatic]) / (2 * h)
            for g in range(grid.ng):
                def eta(s):
                    z = y[g] - x[j] - s * d
                    z -= 24.0 * np.round(z / 24.0)
                    return np.exp(-z * z / (2 * w * w)) / np.sqrt(2 * np.pi) / w
                ref[g] -= dphi * d * d / r * scipy.integrate.quad(eta, 0, 1, epsabs=1e-14)[0]
        assert np.abs(f["Pi_bond"][0, 0] - ref).max() < 1e-9 * np.abs(ref).max()


def test_minimum_norm_3d_same_divergence_as_irving_kirkwood():
    """3D, pair-additive: more pairs than coordinates, so the minimum-norm derivatives differ
    from phi'(r) (PSS Sec. 7), but the stress differs from Irving-Kirkwood's only by a
    divergence-free field with the same volume integral."""
    mdict = {**BOX, "c12": 0.0}
    model = build_model(mdict)
    from mqcd.models.pairs import lattice
    rng = np.random.default_rng(3)
    x = lattice(model.natoms, 3, model.box) + rng.normal(0, 0.1, model.ndof)
    p = np.zeros(model.ndof)
    grid = Grid(box=model.box, dim=3, ng=40, width=1.0)
    mn = trajectory_fields(configuration(model, x, p, 0, "minimum-norm"), grid, "star")
    ik = trajectory_fields(configuration(model, x, p, 0, "hellmann-feynman"), grid, "star")
    dmn = np.stack([divergence(mn["Pi"][:, m], grid) for m in range(3)])
    dik = np.stack([divergence(ik["Pi"][:, m], grid) for m in range(3)])
    assert np.abs(dmn - dik).max() < 1e-10 * np.abs(dik).max()
    assert np.abs(mn["Pi"] - ik["Pi"]).max() > 1e-4 * np.abs(ik["Pi"]).max()
    assert np.allclose(mn["box_bond"], ik["box_bond"], rtol=1e-10, atol=1e-14)


def test_parallel_surfaces():
    """v12 = 0, equal pair functions, constant gap: q_1/q_0 = exp(-gap/kT) exactly; the mixed
    fields are sum_j q_j (fields of surface j); a separate single-surface run reproduces the
    ground-surface block exactly; per-particle energies differ by gap/N on surface 1."""
    gap, kT = 0.004, 0.003
    mdict = {**CHAIN, "c12": 0.0, "r2": 4.0, "gap": gap}
    model = build_model(mdict)
    mixed = mqcd.run(run_deck(mdict, ntraj=6, nsteps=6, kT=kT))
    q = mixed["initial/gibbs_q"]
    assert q[1] / q[0] == pytest.approx(np.exp(-gap / kT), rel=1e-12)
    grid = Grid(box=32.0, dim=1, ng=128, width=1.0)
    S = mixed["trajectories/surface"]
    whole = series_of(mixed, model, grid, weights="stored")
    blocks = [series_of(mixed, model, grid, weights="stored", select=S[0] == j) for j in (0, 1)]
    for k in ("rho", "mom", "E", "Pi", "J"):
        combo = q[0] * blocks[0][k] + q[1] * blocks[1][k]
        assert np.abs(whole[k] - combo).max() <= 1e-12 * np.abs(whole[k]).max()
    ground = mqcd.run(run_deck(mdict, ntraj=3, nsteps=6, kT=kT, states=[0]))
    alone = series_of(ground, model, grid)
    for k in ("rho", "mom", "E", "Pi", "J"):
        assert np.abs(alone[k] - blocks[0][k]).max() <= 1e-12 * np.abs(alone[k]).max()
    pe = mixed["trajectories/particle_energy"][0]
    for t in np.nonzero(S[0] == 1)[0]:
        cfg = configuration(model, mixed["trajectories/position"][0, t],
                            mixed["trajectories/momentum"][0, t], 0)
        assert np.allclose(pe[t] - cfg.lam, gap / 8, rtol=0, atol=1e-13)


def test_cli_fields(tmp_path, chain_runs, capsys):
    deck = run_deck(CHAIN, dt=1.0, nsteps=8)
    out = tmp_path / "chain.h5"
    mqcd.run(deck, output=out)
    assert main(["fields", str(out), "--grid", "128", "--width", "1.0", "--json",
                 "-o", str(tmp_path / "f.h5")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info["residuals"]) == {"mass", "momentum", "energy", "virial"}
    assert info["residuals"]["virial"] < 1e-13
    assert info["mass_electron_mass"] == pytest.approx(8 * 50000.0, rel=1e-12)
    assert main(["fields", str(out), "--grid", "128", "--width", "1.0", "--json",
                 "--weights", "bar", "--records", "0:5"]) == 0
    q = json.loads(capsys.readouterr().out)["q"]
    assert len(q) == 2 and sum(q) == pytest.approx(1.0) and 0 < q[1] < 0.5
    s = fields_from_file(out, 128, 1.0, records="0:5", surface=0)
    assert s.time.size == 5
    # user mistakes: clear messages, exit code 2, nothing computed
    assert main(["fields", str(out), "--grid", "16", "--width", "1.0"]) == 2
    assert "--grid >= 64" in capsys.readouterr().err
    plain = tmp_path / "plain.h5"
    mqcd.run({**deck, "output": {"stride": 1}}, output=plain)
    assert main(["fields", str(plain), "--grid", "128", "--width", "1.0"]) == 2
    assert "trajectories = true" in capsys.readouterr().err


def test_bar_on_gaussian_energy_gaps():
    """Bennett's acceptance ratio on a case with a known answer: u ~ N(mu, s^2) on surface 0
    implies u ~ N(mu - s^2, s^2) on surface 1 and -ln(Z_1/Z_0) = mu - s^2/2."""
    from mqcd.conservation.thermo import bar_q
    rng = np.random.default_rng(4)
    mu, sd, n = 2.0, 1.5, 200_000
    q1, df = bar_q(rng.normal(mu, sd, n), rng.normal(mu - sd ** 2, sd, n // 4))
    assert df == pytest.approx(mu - sd ** 2 / 2, abs=0.02)
    assert q1 == pytest.approx(1 / (1 + np.exp(mu - sd ** 2 / 2)), rel=0.02)


def test_chain_exact_parallel_surfaces_and_virial():
    """The transfer-integral EOS: parallel surfaces have q_1/q_0 = exp(-gap/kT) and equal
    pressures; the pressure is kT d ln Z / dL, which must equal the mean virial
    (N kT - <sum r phi'(r)>)/L of samples of the ring's bond-length distribution."""
    from mqcd.conservation.thermo import chain_exact
    kT, gap = 0.003, 0.002
    par = build_model({**CHAIN, "c12": 0.0, "r2": 4.0, "gap": gap})
    q, P = chain_exact(par, kT)
    assert q[1] / q[0] == pytest.approx(np.exp(-gap / kT), rel=1e-9)
    assert P[1] == pytest.approx(P[0], rel=1e-9)
    # virial check with an independent route: bond lengths of the ring by rejection-free
    # Gibbs sampling of consecutive pairs (their sum fixed) on a fine grid
    m = build_model({**CHAIN, "c12": 0.0})
    N, L = m.natoms, m.box
    r = np.linspace(3.5, 5.5, 4001)
    phi, dphi = m.pair_matrices(r)
    f, fp = phi[:, 0, 0], dphi[:, 0, 0]
    rng = np.random.default_rng(0)
    bonds = np.full(N, L / N)
    acc = []
    for sweep in range(3000):
        for k in range(N):
            k2 = (k + 1) % N
            s = bonds[k] + bonds[k2]
            ok = (r > s - 5.5) & (r < s - 3.5)
            other = np.interp(s - r[ok], r, f)
            w = np.exp(-(f[ok] + other - (f[ok] + other).min()) / kT)
            c = np.cumsum(w)
            bonds[k] = r[ok][np.searchsorted(c, rng.random() * c[-1])]
            bonds[k2] = s - bonds[k]
        if sweep >= 300:
            acc.append(np.sum(bonds * np.interp(bonds, r, fp)))
    acc = np.array(acc)
    virial = (N * kT - acc.mean()) / L
    blocks = acc[: len(acc) // 30 * 30].reshape(30, -1).mean(axis=1)
    se = blocks.std(ddof=1) / np.sqrt(30) / L
    assert abs(chain_exact(m, kT)[1][0] - virial) < 4 * se + 1e-6


def test_gibbs_q_of_a_many_particle_ring_against_the_transfer_integral():
    """The gibbs sampler's q_j for an 8-atom ring whose surfaces differ in bond length (a free-
    energy gap of a few kT, q_1 ~ 0.2), against the exact transfer integral: within 4 of its
    standard errors, which must be small (< 5% of q_1) for the check to mean something. The
    importance-sampling estimate of each Z_j used before gave q_1 = 0.011 here."""
    from mqcd.conservation.thermo import bar_q, chain_exact
    from mqcd.ensemble.thermal import gibbs_ensemble
    kT = 0.003
    m = build_model({**CHAIN, "c12": 0.0, "r2": 4.05, "gap": 0.001})
    ens = gibbs_ensemble(m, {"sampling": "gibbs", "kT": kT, "basis": "adiabatic",
                             "mcmc_chains": 32, "mcmc_burn_in": 1000, "mcmc_thinning": 10,
                             "gibbs_samples": 1024}, kT, 5, 8)
    q_ex = chain_exact(m, kT)[0]
    assert np.all(ens.q_se < 0.05 * q_ex[1]), (ens.q_se, q_ex)
    assert np.all(np.abs(ens.q - q_ex) < 4 * ens.q_se), (ens.q, ens.q_se, q_ex)
    # two surfaces: the sampler's MBAR is BAR of the energy gaps at its samples
    assert bar_q(np.zeros(3), np.zeros(5))[0] == pytest.approx(0.5, rel=1e-12)


def test_chain_diagnostics_ignore_the_free_centre_of_mass():
    """The pair models do not change under a common shift of all atoms: the MCMC diagnostics
    trace coordinates relative to the atoms' mean (a random-walking centre of mass would make
    R-hat flag chains that sample every observable), other models keep the raw coordinates."""
    from mqcd.ensemble.thermal import diagnostic_coordinates
    from mqcd.models import build_model
    for name, dim in (("pair_chain", 1), ("pair_box", 3)):
        model = build_model({"name": name})
        rel = diagnostic_coordinates(model)
        x = np.random.default_rng(1).normal(size=(3, model.ndof))
        shift = np.tile(np.arange(1.0, dim + 1.0), model.ndof // dim)
        np.testing.assert_allclose(rel(x + 7.5 * shift), rel(x), atol=1e-12)
        V0, _ = model.evaluate(x[:1] + 4.0)
        V1, _ = model.evaluate(x[:1] + 4.0 + 0.3 * shift)
        np.testing.assert_allclose(V1, V0, atol=1e-12)      # the invariance it relies on
    assert diagnostic_coordinates(build_model({"name": "tully1"})) is None
