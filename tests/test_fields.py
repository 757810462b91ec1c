"""Swarm fields (mqcd.fields) and rho-field geometry (mqcd.electronic.geometry).

Everything is checked against analytic fields: densities with known ln n derivatives and a pure
state psi(x) = (cos theta, e^{i phi} sin theta) with known derivatives of rho = |psi><psi|.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))

from fields_convergence import pure_state_field, sample_density  # noqa: E402

from mqcd.electronic import geometry as geo  # noqa: E402
from mqcd.fields import (FieldOptions, FieldWorkspace, bandwidth, effective_count,  # noqa: E402
                         estimate_fields, normal_reference_constant)
from mqcd.fields.conservative import t2_conservative  # noqa: E402
from mqcd.fields.crossval import select_regression_scale  # noqa: E402

SX = np.array([[0, 1], [1, 0]], complex)
SY = np.array([[0, -1j], [1j, 0]])
SZ = np.array([[1, 0], [0, -1]], complex)


# --------------------------------------------------------------------------- analytic helpers
def bloch_field(x):
    """Pure state in D dims through its Bloch vector r(Theta(x), phi(x)); returns rho, d rho,
    d d rho (exact) and r, d r for the closed forms g = (1/4) dr.dr, B = -(1/2) r.(dr x dr)."""
    N, D = x.shape
    a = np.linspace(0.7, 1.1, D)
    b = np.linspace(0.5, -0.4, D)
    s = 0.7 * (x @ a)
    th = np.tanh(s)
    T = 1.2 + 0.8 * th
    dT = 0.8 * (1 - th ** 2)[:, None] * 0.7 * a
    d2T = 0.8 * (-2 * th * (1 - th ** 2))[:, None, None] * 0.49 * a[:, None] * a[None, :]
    P = x @ b + 0.3 * (x ** 2).sum(1)
    dP = b + 0.6 * x
    d2P = np.broadcast_to(0.6 * np.eye(D), (N, D, D))
    st, ct, sp, cp = np.sin(T), np.cos(T), np.sin(P), np.cos(P)
    z = 0 * st
    r = np.stack([st * cp, st * sp, ct], -1)
    rT = np.stack([ct * cp, ct * sp, -st], -1)
    rP = np.stack([-st * sp, st * cp, z], -1)
    rTT = np.stack([-st * cp, -st * sp, -ct], -1)
    rTP = np.stack([-ct * sp, ct * cp, z], -1)
    rPP = np.stack([-st * cp, -st * sp, z], -1)
    dr = rT[:, None] * dT[..., None] + rP[:, None] * dP[..., None]
    d2r = (rTT[:, None, None] * (dT[:, :, None] * dT[:, None, :])[..., None]
           + rTP[:, None, None] * (dT[:, :, None] * dP[:, None, :]
                                   + dP[:, :, None] * dT[:, None, :])[..., None]
           + rPP[:, None, None] * (dP[:, :, None] * dP[:, None, :])[..., None]
           + rT[:, None, None] * d2T[..., None] + rP[:, None, None] * d2P[..., None])

    def mat(v):
        return 0.5 * (v[..., 0, None, None] * SX + v[..., 1, None, None] * SY + v[..., 2, None, None] * SZ)

    return np.eye(2) / 2 + mat(r), mat(dr), mat(d2r), r, dr


def hermitian_err(a):
    return np.abs(a - np.conj(np.swapaxes(a, -1, -2))).max()


def bulk_rms(a, bulk):
    return float(np.sqrt(np.mean(np.abs(a[bulk]) ** 2)))


# --------------------------------------------------------------------------- bandwidth rule
def test_bandwidth_rule():
    assert normal_reference_constant(1, 0) == pytest.approx(1.0592, abs=1e-4)  # Silverman's 1.06
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2)) * [1.0, 3.0]
    h = bandwidth(x, deriv=1)
    assert h[1] / h[0] == pytest.approx(np.std(x[:, 1]) / np.std(x[:, 0]))
    # rate N^(-1/(D + 2r + 4)) with the effective count of a weighted swarm
    w = np.ones(4000)
    w[:2000] = 0.0
    assert effective_count(w) == pytest.approx(2000)
    h16 = bandwidth(np.tile(x, (16, 1)), deriv=1)
    assert (h / h16) == pytest.approx(np.full(2, 16 ** (1 / 8)))


def test_fisher_spread_gaussian_and_split_swarm():
    from mqcd.fields.estimate import fisher_spread
    rng = np.random.default_rng(1)
    N = 20000
    x = rng.normal(size=(N, 2)) * [1.0, 2.5]
    s, _ = fisher_spread(x, np.full(N, 1 / N), N)
    assert s == pytest.approx([1.0, 2.5], rel=0.03)          # normal reference unchanged
    # a swarm split into two packets 40 bohr apart (widths 1 and 1.5, weights 0.6 / 0.4)
    c = rng.random(N) < 0.6
    x = np.where(c, 20 + rng.normal(size=N), -20 + 1.5 * rng.normal(size=N))[:, None]
    s, _ = fisher_spread(x, np.full(N, 1 / N), N)
    assert s[0] == pytest.approx((0.6 / 1.0 + 0.4 / 2.25) ** -0.5, rel=0.03)  # not ~20
    f = estimate_fields(x, need=("density",))
    n = (0.6 * np.exp(-0.5 * (x[:, 0] - 20) ** 2) / np.sqrt(2 * np.pi)
         + 0.4 * np.exp(-0.5 * ((x[:, 0] + 20) / 1.5) ** 2) / (1.5 * np.sqrt(2 * np.pi)))
    bulk = n > 0.05 * n.max()
    assert bulk_rms(f.n / n - 1, bulk) < 0.06
    g = estimate_fields(x, opts=FieldOptions(spread="std"), need=("density",))
    assert bulk_rms(g.n / n - 1, bulk) > 0.5                  # what the plain std rule gives


def test_fisher_spread_of_a_fluid_element_start_in_3d():
    """The fluid-element start in D > 1 is a scrambled Halton sequence (coordinate j in base
    2, 3, 5): a strided 1-in-k subsample with k = 3 or 5 sits in one slab of that coordinate. The
    spread's subsample (N = 5e4 > spread_sample = 2e4: one in three rows) must still give the
    packet width in every dof (with the stride: 0.50, 0.096, 0.50 bohr)."""
    from mqcd.ensemble.initial import sample_phase_space
    from mqcd.fields.distributed import subsample_rows
    from mqcd.fields.estimate import fisher_spread
    N = 50000
    ini = {"position": [0.0] * 3, "momentum": [0.0] * 3, "width": [0.5] * 3,
           "sampling": "hydrodynamic"}
    x, _ = sample_phase_space(ini, np.zeros((N, 2), np.uint64), indices=np.arange(N), ntotal=N)
    s, _ = fisher_spread(x, np.full(N, 1 / N), N)
    assert s == pytest.approx([0.5] * 3, rel=0.03)
    assert np.ptp(x[::3, 1]) < 0.5 * np.ptp(x[:, 1])          # what a stride would have seen
    # the subsample depends on the global index only: rank blocks give the same rows
    whole = subsample_rows(0, N, 3, 3)
    parts = np.concatenate([subsample_rows(a, b, 3, 3) for a, b in [(0, 777), (777, 31000),
                                                                   (31000, N)]])
    assert np.array_equal(whole, parts) and abs(whole.size / (N / 3) - 1) < 0.02
    assert np.array_equal(subsample_rows(0, N, 3, 1), np.arange(0, N, 3))   # 1D: the stride


# --------------------------------------------------------------------------- convergence
@pytest.mark.parametrize("kind", ["gauss", "bimodal"])
def test_density_converges(kind):
    errs = []
    for N in (2000, 32000):
        e = []
        for seed in range(3):
            x, n, dlogn = sample_density(kind, N, 1, np.random.default_rng(seed))
            f = estimate_fields(x, need=("density",))
            bulk = n > 0.05 * n.max()
            e.append([bulk_rms(f.n / n - 1, bulk), bulk_rms(f.dlogn - dlogn, bulk)])
        errs.append(np.mean(e, axis=0))
    ratio = errs[1] / errs[0]
    # expected N^(-2/7) bias/variance balance: factor 0.45 for 16 N; allow sampling scatter
    assert np.all(ratio < 0.75), (errs, ratio)


def test_rho_derivatives_converge():
    errs = []
    for N in (2000, 32000):
        e = []
        for seed in range(2):
            x, n, _ = sample_density("gauss", N, 1, np.random.default_rng(seed))
            rho, drho, lap = pure_state_field(x)
            f = estimate_fields(x, rho, need=("rho2",))
            bulk = n > 0.05 * n.max()
            e.append([bulk_rms(f.drho - drho, bulk), bulk_rms(np.einsum("njjab->nab", f.d2rho) - lap, bulk)])
        errs.append(np.mean(e, axis=0))
    ratio = errs[1] / errs[0]
    # smoothing bias ~ h_r^2 ~ N^(-2/9): factor 0.54 for 16 N
    assert np.all(ratio < 0.75), (errs, ratio)


def test_cross_validation_prefers_small_bandwidth_for_single_valued_field():
    x, n, _ = sample_density("gauss", 3000, 1, np.random.default_rng(7))
    rho, drho, _ = pure_state_field(x)
    best, scores = select_regression_scale(x, rho)
    assert best < 0.5
    bulk = n > 0.05 * n.max()
    f_cv = estimate_fields(x, rho, opts=FieldOptions(regression_scale=best), need=("rho",))
    e_cv = bulk_rms(f_cv.drho - drho, bulk)
    e_rule = bulk_rms(estimate_fields(x, rho, need=("rho",)).drho - drho, bulk)
    assert e_cv < 0.3 * e_rule


# --------------------------------------------------------------------------- paths agree
def _field(x):
    th = 0.6 + 0.5 * np.tanh(x[:, 0]) + 0.3 * np.sin(x[:, -1])
    ph = 0.8 * x.sum(1)
    psi = np.stack([np.cos(th), np.exp(1j * ph) * np.sin(th)], -1)
    return psi[:, :, None] * psi[:, None, :].conj()


NEED3 = ("density", "logn3", "rho2")


def _compare(f, ref, bulk):
    """Errors normalised by the natural scales: n relative, ln n derivatives times h^k, rho
    derivatives relative to their largest magnitude."""
    h = ref.h_density.min()
    out = [np.abs(f.n / ref.n - 1)[bulk].max(),
           np.abs(f.dlogn - ref.dlogn)[bulk].max() * h,
           np.abs(f.d2logn - ref.d2logn)[bulk].max() * h ** 2,
           np.abs(f.d3logn - ref.d3logn)[bulk].max() * h ** 3,
           np.abs(f.rho - ref.rho)[bulk].max()]
    for a, b in ((f.drho, ref.drho), (f.d2rho, ref.d2rho)):
        out.append(np.abs(a - b)[bulk].max() / np.abs(b).max())
    return np.array(out)


@pytest.mark.parametrize("D,N", [(1, 1500), (2, 1200), (3, 2000)])
def test_tree_and_grid_match_pairs(D, N):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, D)) * np.linspace(1, 2, D)
    rho = _field(x)
    ref = estimate_fields(x, rho, opts=FieldOptions(method="pairs"), need=NEED3)
    tree = estimate_fields(x, rho, opts=FieldOptions(method="tree", cutoff=9.0), need=NEED3)
    grid = estimate_fields(x, rho, opts=FieldOptions(method="grid"), need=NEED3)
    assert (ref.method, tree.method, grid.method) == ("pairs", "tree", "grid")
    everywhere = np.ones(N, bool)
    assert _compare(tree, ref, everywhere).max() < 1e-10
    # grid: stated tolerance 2e-3 (relative, see docs/theory/fields.md) in the bulk
    bulk = ref.n > 0.05 * ref.n.max()
    e = _compare(grid, ref, bulk)
    assert e.max() < 2e-3, e


def test_tree_matches_pairs_in_five_dimensions():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 5))
    rho = _field(x)
    ref = estimate_fields(x, rho, opts=FieldOptions(method="pairs"), need=NEED3)
    tree = estimate_fields(x, rho, opts=FieldOptions(method="tree", cutoff=9.0), need=NEED3)
    assert _compare(tree, ref, np.ones(400, bool)).max() < 1e-10
    assert tree.d2rho.shape == (400, 5, 5, 2, 2) and tree.d3logn.shape == (400, 5, 5, 5)


def test_adaptive_paths_agree():
    rng = np.random.default_rng(5)
    x, _, _ = sample_density("bimodal", 1500, 1, rng)
    rho = _field(x)
    opts = dict(adaptive=True)
    ref = estimate_fields(x, rho, opts=FieldOptions(method="pairs", **opts), need=NEED3)
    tree = estimate_fields(x, rho, opts=FieldOptions(method="tree", cutoff=9.0, **opts), need=NEED3)
    grid = estimate_fields(x, rho, opts=FieldOptions(method="grid", **opts), need=NEED3)
    assert ref.lam.min() < 0.9 and ref.lam.max() > 1.5
    assert _compare(tree, ref, np.ones(1500, bool)).max() < 1e-10
    bulk = ref.n > 0.05 * ref.n.max()
    # bandwidth classes 2^(1/16) apart (variance-matched mixtures): stated tolerance 5e-3
    e = _compare(grid, ref, bulk)
    assert e.max() < 5e-3, e


def test_auto_choice():
    rng = np.random.default_rng(6)
    assert estimate_fields(rng.normal(size=(100, 1)), need=("density",)).method == "pairs"
    assert estimate_fields(rng.normal(size=(3000, 2)), need=("density",)).method == "grid"
    f = estimate_fields(rng.normal(size=(3000, 4)) * [1, 1, 30, 30], need=("density",))
    assert f.method in ("tree", "pairs") and f.method_reason


# --------------------------------------------------------------------------- exact properties
@pytest.mark.parametrize("method", ["pairs", "grid"])
def test_hermitian_trace_and_symmetry(method):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(900, 2))
    # a random mixed Hermitian trace-1 field (3 states), rough on purpose
    A = rng.normal(size=(900, 3, 3)) + 1j * rng.normal(size=(900, 3, 3))
    rho = A @ np.conj(np.swapaxes(A, 1, 2))
    rho /= np.trace(rho, axis1=1, axis2=2)[:, None, None]
    f = estimate_fields(x, rho, opts=FieldOptions(method=method), need=("rho2",))
    for a in (f.rho, f.drho, f.d2rho):
        assert hermitian_err(a) < 1e-15
    assert np.abs(np.trace(f.rho, axis1=-2, axis2=-1) - 1).max() < 1e-12
    assert np.abs(np.trace(f.drho, axis1=-2, axis2=-1)).max() < 1e-9
    assert np.abs(np.trace(f.d2rho, axis1=-2, axis2=-1)).max() < 1e-8
    assert np.abs(f.d2rho - np.swapaxes(f.d2rho, 1, 2)).max() == 0.0


def test_linear_field_reproduced_exactly():
    rng = np.random.default_rng(9)
    D = 2
    x = rng.normal(size=(700, D))
    A0 = np.array([[0.6, 0.1 + 0.2j], [0.1 - 0.2j, 0.4]])
    A = np.array([[[1.0, 0.3 - 0.2j], [0.3 + 0.2j, -1.0]], [[0.2, -0.5j], [0.5j, -0.2]]])
    rho = A0 + np.einsum("nj,jab->nab", x, A)
    bulk = np.linalg.norm(x, axis=1) < 1.5
    everywhere = slice(None)
    for method, tol, sel in (("pairs", 1e-10, everywhere), ("tree", 1e-10, everywhere), ("grid", 2e-3, bulk)):
        # exact for any weights: the local quadratic contains the linear field (ridge = 0); the
        # grid's moments carry its interpolation error, amplified where the fit is ill-posed
        f = estimate_fields(x, rho, opts=FieldOptions(method=method, ridge=0.0, cutoff=9.0), need=("rho2",))
        assert np.abs(f.drho - A[None])[sel].max() < tol * np.abs(A).max()
        assert np.abs(f.rho - rho)[sel].max() < tol * np.abs(rho).max()
        assert np.abs(f.d2rho)[sel].max() < tol
    # the default ridge (0.1 trajectories) biases the slope only where few trajectories inform it
    f = estimate_fields(x, rho, need=("rho",))
    assert np.abs(f.drho - A[None])[bulk].max() < 0.05 * np.abs(A).max()


def test_weights_equal_duplicates_and_order_invariance():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(300, 1))
    rho = _field(x)
    w = np.ones(300)
    w[:50] = 2.0
    # explicit bandwidths and no ridge: both depend on the effective count, which differs
    opts = FieldOptions(method="pairs", h_density=[0.3], h_regression=[0.4], ridge=0.0)
    f1 = estimate_fields(x, rho, opts=opts, weights=w, need=NEED3)
    xd = np.concatenate([x, x[:50]])
    f2 = estimate_fields(xd, np.concatenate([rho, rho[:50]]), opts=opts, need=NEED3)
    assert np.allclose(f1.dlogn, f2.dlogn[:300], rtol=1e-12, atol=1e-12)
    assert np.allclose(f1.d2rho, f2.d2rho[:300], rtol=1e-10, atol=1e-12)
    perm = rng.permutation(300)
    f3 = estimate_fields(x[perm], rho[perm], opts=opts, weights=w[perm], need=NEED3)
    assert np.allclose(f3.d3logn, f1.d3logn[perm], rtol=1e-10, atol=1e-10)


def test_evaluation_points_and_workspace():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2000, 1))
    rho = _field(x)
    at = np.linspace(-1, 1, 7)[:, None]
    fa = estimate_fields(x, rho, opts=FieldOptions(method="grid"), at=at)
    fp = estimate_fields(x, rho, opts=FieldOptions(method="pairs"), at=at)
    assert fa.n.shape == (7,) and np.abs(fa.n / fp.n - 1).max() < 1e-3
    ws = FieldWorkspace()
    a = estimate_fields(x, rho, workspace=ws)
    keep = a.drho.copy()
    b = estimate_fields(x, rho, workspace=ws)
    assert b.drho is a.drho and np.array_equal(keep, b.drho)


# --------------------------------------------------------------------------- geometry
def test_metric_and_curvature_closed_forms():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(40, 3))
    rho, drho, d2rho, r, dr = bloch_field(x)
    g = geo.metric(rho, drho)
    B = geo.berry_curvature(rho, drho)
    assert np.abs(g - 0.25 * np.einsum("nka,nja->nkj", dr, dr)).max() < 1e-14
    cross = np.cross(dr[:, :, None, :], dr[:, None, :, :])
    assert np.abs(B + 0.5 * np.einsum("na,nkja->nkj", r, cross)).max() < 1e-14
    # 1-D form for psi = (cos t, e^{i p} sin t): g = t'^2 + sin^2 t cos^2 t p'^2
    x1 = np.linspace(-2, 2, 9)[:, None]
    rho1, drho1, _ = pure_state_field(x1)
    s = np.tanh(x1[:, 0])
    t = 0.6 + 0.5 * s + 0.2 * x1[:, 0]
    dt = 0.2 + 0.5 * (1 - s ** 2)
    dp = 0.8 + 0.6 * x1[:, 0]
    g1 = geo.metric(rho1, drho1)[:, 0, 0]
    assert np.abs(g1 - (dt ** 2 + np.sin(t) ** 2 * np.cos(t) ** 2 * dp ** 2)).max() < 1e-13
    assert np.abs(geo.berry_curvature(rho1, drho1)).max() < 1e-14  # antisymmetric: 0 in 1-D


def test_metric_derivative_and_t_terms():
    rng = np.random.default_rng(13)
    D = 2
    x = rng.normal(size=(30, D))
    M = np.array([1.0, 3.0])
    rho, drho, d2rho, _, _ = bloch_field(x)
    dg = geo.metric_derivative(rho, drho, d2rho)
    eps = 1e-5
    # analytic density n ~ exp(-x.S.x/2) and the field g at displaced points
    S = np.array([[1.0, 0.3], [0.3, 2.0]])
    logn = lambda y: -0.5 * np.einsum("ni,ij,nj->n", y, S, y)  # noqa: E731
    dlogn = -x @ S
    T2_fd = np.zeros((30, D))
    for i in range(D):
        e = np.zeros(D)
        e[i] = eps
        gp = geo.metric(*bloch_field(x + e)[:2])
        gm = geo.metric(*bloch_field(x - e)[:2])
        assert np.abs((gp - gm) / (2 * eps) - dg[:, i]).max() < 1e-8
        ngp = np.exp(logn(x + e))[:, None, None] * gp
        ngm = np.exp(logn(x - e))[:, None, None] * gm
        T2_fd += ((ngp - ngm) / (2 * eps))[:, :, i] / M[i] / np.exp(logn(x))[:, None]
    g = geo.metric(rho, drho)
    T1 = geo.t1_term(dg, M)
    T2 = geo.t2_term(dg, g, dlogn, M)
    assert np.abs(T2 - T1 - np.einsum("nki,ni,i->nk", g, dlogn, 1 / M)).max() < 1e-14
    assert np.abs(T2 - T2_fd).max() < 1e-7


def test_correction_operators():
    rng = np.random.default_rng(14)
    D = 2
    x = rng.normal(size=(25, D))
    M = np.array([2.0, 5.0])
    rho, drho, d2rho, _, _ = bloch_field(x)
    S = np.array([[1.0, 0.3], [0.3, 2.0]])
    dlogn = -x @ S
    dHg = geo.geometric_correction(d2rho, M)
    dHq = geo.quantum_coupling_correction(drho, dlogn, M)
    dH = geo.combined_correction(drho, d2rho, dlogn, M)
    for a in (dHg, dHq, dH):
        assert hermitian_err(a) < 1e-15
        assert np.abs(np.trace(a, axis1=1, axis2=2)).max() < 1e-14
    # pure state: Tr(rho dH_qc) = 0 and Tr(rho dH_geo) = sum_i xi^ii g_ii
    g = geo.metric(rho, drho)
    assert np.abs(np.einsum("nab,nba->n", rho, dHq)).max() < 1e-14
    assert np.abs(np.einsum("nab,nba->n", rho, dHg) - np.einsum("nii,i->n", g, 1 / M)).max() < 1e-13
    # MB(67): -(1/(2n)) sum_i xi^ii d_i(n d_i rho), by finite differences
    eps = 1e-5
    n = lambda y: np.exp(-0.5 * np.einsum("ni,ij,nj->n", y, S, y))  # noqa: E731
    ref = 0
    for i in range(D):
        e = np.zeros(D)
        e[i] = eps
        fp = n(x + e)[:, None, None] * bloch_field(x + e)[1][:, i]
        fm = n(x - e)[:, None, None] * bloch_field(x - e)[1][:, i]
        ref = ref - 0.5 / M[i] * (fp - fm) / (2 * eps) / n(x)[:, None, None]
    assert np.abs(dH - ref).max() < 1e-8
    # the combined correction from the swarm estimate is Hermitian and traceless as well
    xs = rng.normal(size=(1500, 1))
    f = estimate_fields(xs, _field(xs), masses=[2000.0])
    G = f.geometry()
    assert hermitian_err(G.dH) < 1e-15 and np.abs(np.trace(G.dH, axis1=1, axis2=2)).max() < 1e-12


def test_quantum_force_matches_minus_gradient_of_quantum_potential():
    # two-Gaussian mixture in 1-D: Q = -(1/(2M)) R''/R, F_q = -Q'
    M = 3.0
    mu, sd = np.array([-1.0, 1.2]), np.array([0.7, 1.0])

    def n(y):
        return (np.exp(-0.5 * ((y[:, None] - mu) / sd) ** 2) / sd).sum(1)

    def logn_derivs(y, e=1e-3):
        f = lambda z: np.log(n(z))  # noqa: E731
        l1 = (f(y + e) - f(y - e)) / (2 * e)
        l2 = (f(y + e) - 2 * f(y) + f(y - e)) / e ** 2
        l3 = (f(y + 2 * e) - 2 * f(y + e) + 2 * f(y - e) - f(y - 2 * e)) / (2 * e ** 3)
        return l1, l2, l3

    y = np.linspace(-2, 2, 9)
    l1, l2, l3 = logn_derivs(y)
    Fq = geo.quantum_force(l1[:, None], l2[:, None, None], l3[:, None, None, None], [M])[:, 0]

    def Q(z, e=1e-4):
        R = lambda u: np.sqrt(n(u))  # noqa: E731
        return -(R(z + e) - 2 * R(z) + R(z - e)) / e ** 2 / R(z) / (2 * M)

    e = 1e-3
    assert np.abs(Fq + (Q(y + e) - Q(y - e)) / (2 * e)).max() < 1e-4 * np.abs(Fq).max()


def test_swarm_average_of_combined_force_vanishes():
    M = [2000.0]
    ratios = []
    for N in (2000, 32000):
        x, _, _ = sample_density("gauss", N, 1, np.random.default_rng(N))
        rho, _, _ = pure_state_field(x)
        f = estimate_fields(x, rho, masses=M)
        G = f.geometry()
        rms = np.sqrt(np.mean(G.T2 ** 2))
        ratios.append(abs(G.T2.mean()) / rms)
        # the symmetric-pair estimator honours the identity exactly
        tc = t2_conservative(f, x, G.g, M)
        assert abs(tc.mean()) < 1e-12 * rms
        assert np.sqrt(np.mean((tc - G.T2) ** 2)) < 0.6 * rms
    assert ratios[0] < 0.3 and ratios[1] < 0.7 * ratios[0], ratios


def test_ten_dimensions():
    rng = np.random.default_rng(15)
    x = rng.normal(size=(300, 10))
    rho = _field(x)
    f = estimate_fields(x, rho, masses=np.full(10, 1000.0), need=("density", "logn3", "rho2"))
    assert f.method in ("pairs", "tree")
    assert f.d2rho.shape == (300, 10, 10, 2, 2) and f.d3logn.shape == (300, 10, 10, 10)
    assert np.all(np.isfinite(f.d2rho)) and hermitian_err(f.d2rho) < 1e-15
    G = f.geometry()
    assert G.T2.shape == (300, 10) and G.Fq.shape == (300, 10) and np.all(np.isfinite(G.T2))


def test_two_state_geometry_fast_path_matches_generic():
    from mqcd.electronic.geometry import geometry_from_fields
    rng = np.random.default_rng(16)
    x = rng.normal(size=(600, 2))
    A = rng.normal(size=(600, 2, 2)) + 1j * rng.normal(size=(600, 2, 2))
    rho = A @ np.conj(np.swapaxes(A, 1, 2))
    rho /= np.trace(rho, axis1=1, axis2=2)[:, None, None]   # mixed states
    f = estimate_fields(x, rho, masses=[3.0, 7.0], need=("density", "logn3", "rho2"))
    a = geometry_from_fields(f, f.masses)
    b = geometry_from_fields(f, f.masses, generic=True)
    for name in ("g", "B", "dg", "T1", "T2", "u", "dH_geo", "dH_qc", "dH", "Fq", "T_geo"):
        va, vb = getattr(a, name), getattr(b, name)
        assert np.abs(va - vb).max() <= 1e-12 * max(1.0, np.abs(vb).max()), name


def test_grid_memory_batches_give_the_same_sums(monkeypatch):
    """Depositing and transforming the source fields a few at a time (the memory bound) changes
    nothing: 3D quadratic regression with batches of 3 fields equals the one-batch result."""
    from mqcd.fields import grid as grid_mod
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 1.0, (3000, 3))
    psi = np.stack([np.cos(0.4 * x[:, 0]), np.sin(0.4 * x[:, 0]) * np.exp(1j * x[:, 1])], axis=1)
    rho = psi[:, :, None] * np.conj(psi)[:, None, :]
    opts = FieldOptions(method="grid")
    ref = estimate_fields(x, rho, None, opts, need=("density", "rho2"))
    h = np.stack([ref.h_density, ref.h_regression])
    G = grid_mod.grid_cells(x, h.min(axis=0), h.max(axis=0), opts.grid_spacing, opts.grid_pad,
                            opts.grid_order)
    kw = dict(grid_mod.grid_sums.__kwdefaults__)
    kw["max_batch_doubles"] = 3 * G
    monkeypatch.setattr(grid_mod.grid_sums, "__kwdefaults__", kw)
    got = estimate_fields(x, rho, None, opts, need=("density", "rho2"))
    assert got.method == "grid"
    for name in ("n", "dlogn", "drho", "d2rho"):
        assert np.allclose(getattr(got, name), getattr(ref, name), rtol=1e-12, atol=1e-14), name


def test_all_pairs_fallback_is_counted_and_reported(monkeypatch):
    """A swarm whose grid would need too many cells and whose neighbour lists too many pairs is
    summed over all pairs, O(N^2) per step: a warning says so at once (once per process, before
    the slow sum), the estimator counts such estimates and the run's problems (end-of-run
    warning, ``mqcd summary``) say so; a small swarm summed over pairs by design is neither
    warned about nor counted."""
    import types
    import warnings

    import mqcd.fields.estimate as estimate_module
    monkeypatch.setattr(estimate_module, "_WARNED_ALL_PAIRS", [False])

    from mqcd.analysis.summary import run_problems
    from mqcd.fields import FieldOptions, estimate_fields
    from mqcd.fields.base import SwarmEstimator
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 1))
    est = SwarmEstimator({}, types.SimpleNamespace(masses=[1.0]), None, None, ("density",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small = estimate_fields(x[:50], None, np.ones(1), FieldOptions(), need=("density",))
    tight = FieldOptions(max_grid_cells=10, tree_max_fraction=0.0)
    with pytest.warns(RuntimeWarning, match="3000 trajectories falls back to all pairs"):
        big = estimate_fields(x, None, np.ones(1), tight, need=("density",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # once per process
        estimate_fields(x, None, np.ones(1), tight, need=("density",))
    assert big.method == "pairs" and small.method == "pairs"
    est.note_path(small)
    assert est.all_pairs_steps == 0
    est.note_path(big)
    assert est.all_pairs_steps == 1 and "max_grid_cells" in est.all_pairs_reason
    msgs = run_problems({"steps": 10, "fields_all_pairs_steps": est.all_pairs_steps,
                         "fields_all_pairs_reason": est.all_pairs_reason})
    assert any("O(N^2)" in m and "1 of 10 steps" in m for m in msgs)
    assert not any("O(N^2)" in m for m in run_problems({"steps": 10}))
