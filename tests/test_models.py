"""Models: built-in values, gradients (check_model), user models, multi-dimensional built-ins."""
import warnings
from pathlib import Path

import numpy as np
import pytest

from mqcd.models import BUILTIN, Model, build_model, load_user_model
from mqcd.models.check import check_model, format_report
from mqcd.models.multidim import ohmic_bath

ROOT = Path(__file__).resolve().parents[1]


def H_of(model, x):
    H, _ = model.evaluate(np.atleast_2d(np.asarray(x, dtype=np.float64)))
    return H


# ----------------------------------------------------------------------------- check_model
#: constructor arguments of built-ins that need them (a parameter file)
NEEDS = {"lvc": {"parameter_file": ROOT / "inputs" / "lvc_pyrazine_2mode.toml"}}


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_passes_check_model(name):
    rep = check_model(BUILTIN[name](**NEEDS.get(name, {})))
    assert rep["ok"], format_report(rep)
    assert rep["hermitian_ok"] and rep["fd_ok"] and rep["shapes_ok"] and rep["finite_ok"]
    assert rep["npoints"] == 64 and len(rep["fd_abs_error"]) == rep["ndof"]
    assert "RESULT: OK" in format_report(rep)


def test_check_model_at_given_points_and_other_parameters():
    m = build_model({"name": "spin_boson", "modes": 7, "epsilon": -0.3, "alpha": 0.5})
    x = np.random.default_rng(3).normal(size=(5, 7))
    rep = check_model(m, x=x)
    assert rep["ok"], format_report(rep)
    assert rep["npoints"] == 5 and rep["ndof"] == 7
    rep = check_model(m, x=np.zeros((3, 6)))          # wrong number of columns
    assert not rep["ok"] and "ndof" in rep["failures"][0]


class WrongSign(Model):
    """Tully-1-like model whose coupling gradient has the wrong sign."""
    name = "wrong_sign"
    parameters = {"C": (0.005, "hartree", "coupling"), "D": (1.0, "1/bohr^2", "range")}

    def evaluate(self, x):
        x = np.atleast_2d(x)
        C, D = self.params
        q = x[:, 0]
        v12 = C * np.exp(-D * q * q)
        H = np.zeros((len(q), 2, 2))
        dH = np.zeros((len(q), 1, 2, 2))
        H[:, 0, 0], H[:, 1, 1] = 0.01 * np.tanh(q), -0.01 * np.tanh(q)
        H[:, 0, 1] = H[:, 1, 0] = v12
        dH[:, 0, 0, 0], dH[:, 0, 1, 1] = 0.01 / np.cosh(q) ** 2, -0.01 / np.cosh(q) ** 2
        dH[:, 0, 0, 1] = dH[:, 0, 1, 0] = +2.0 * D * q * v12      # correct: -2 D q v12
        return H, dH


def test_wrong_gradient_sign_fails_with_error_reported():
    rep = check_model(WrongSign())
    assert not rep["ok"]
    assert not rep["fd_ok"]
    assert rep["hermitian_ok"] and rep["shapes_ok"]          # only the gradient is wrong
    w = rep["fd_worst"]
    assert w["dof"] == 0 and {w["i"], w["j"]} == {0, 1}       # the coupling element
    assert w["analytic"] == pytest.approx(-w["finite_difference"], rel=1e-6)
    assert rep["worst_error"] > 0.1
    text = format_report(rep)
    assert "FAILED" in text and "finite differences" in text and "dof [0]" in text


def test_non_hermitian_and_bad_shape_are_reported():
    class NotHermitian(WrongSign):
        def evaluate(self, x):
            H, dH = super().evaluate(x)
            dH[:, 0, 0, 1] = -dH[:, 0, 0, 1]                  # gradient right, now asymmetric
            H[:, 0, 1] += 1e-3
            return H, dH

    rep = check_model(NotHermitian())
    assert not rep["ok"] and not rep["hermitian_ok"]
    assert any("Hermitian" in f for f in rep["failures"])

    class BadShape(WrongSign):
        def evaluate(self, x):
            H, dH = super().evaluate(x)
            return H[0], dH[0]                                 # would broadcast silently

    rep = check_model(BadShape())
    assert not rep["ok"] and not rep["shapes_ok"]
    assert any("shape" in f for f in rep["failures"])


class ComplexCoupling(Model):
    """Complex Hermitian model H = [[x, i g x], [-i g x, -x]] (numpy)."""
    name = "complex_coupling"
    parameters = {"g": (0.01, "hartree/bohr", "imaginary coupling gradient")}
    dtype = np.complex128

    def evaluate(self, x):
        q = np.atleast_2d(x)[:, 0]
        g = self.param_values["g"]
        H = np.zeros((len(q), 2, 2), dtype=complex)
        dH = np.zeros((len(q), 1, 2, 2), dtype=complex)
        H[:, 0, 0], H[:, 1, 1] = 0.01 * q, -0.01 * q
        H[:, 0, 1], H[:, 1, 0] = 1j * g * q, -1j * g * q
        dH[:, 0, 0, 0], dH[:, 0, 1, 1] = 0.01, -0.01
        dH[:, 0, 0, 1], dH[:, 0, 1, 0] = 1j * g, -1j * g
        return H, dH


def test_complex_model_passes_and_real_dtype_is_reported():
    rep = check_model(ComplexCoupling())
    assert rep["ok"], format_report(rep)

    class DeclaredReal(ComplexCoupling):
        dtype = np.float64

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)   # imaginary part dropped
        rep = check_model(DeclaredReal())
    assert not rep["ok"] and not rep["dtype_ok"]
    assert any("complex128" in f for f in rep["failures"])


def test_batch_mixing_kernel_is_caught():
    class Mixing(WrongSign):
        def evaluate(self, x):
            H, dH = super().evaluate(x)
            return H + 1e-3 * np.mean(x), dH                   # depends on the other points

    rep = check_model(Mixing())
    assert not rep["batch_ok"] and not rep["ok"]


def test_numpy_user_model_from_file():
    path = ROOT / "inputs" / "my_model.py"
    cls = load_user_model(path.name, "MyModel", base_dir=path.parent)
    m = build_model({"file": str(path), "class": "MyModel", "C": 0.008})
    assert type(m).__name__ == cls.__name__ == "MyModel" and isinstance(m, Model)
    assert m.kernel is None and m.param_values["C"] == 0.008
    rep = check_model(m)
    assert rep["ok"], format_report(rep)
    x = np.linspace(-12, 12, 41)[:, None]
    H, dH = m.evaluate(x)
    assert H.shape == (41, 2, 2) and dH.shape == (41, 1, 2, 2)
    assert H[20, 0, 1] == pytest.approx(0.008)               # x = 0: H12 = C
    # the dynamics entry point fills preallocated arrays from the numpy evaluate()
    H2, dH2 = m.allocate(41)
    m.evaluate_into(x, H2, dH2)
    np.testing.assert_array_equal(H2, H)
    np.testing.assert_array_equal(dH2, dH)
    # the numba version of the same model agrees with the numpy one
    fast = build_model({"file": str(path), "class": "MyModelNumba", "C": 0.008})
    assert fast.kernel is not None and check_model(fast)["ok"]
    Hf, dHf = fast.evaluate(x)
    np.testing.assert_allclose(Hf, H, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(dHf, dH, rtol=1e-14, atol=1e-16)


# ----------------------------------------------------------------------------- Tully models
def test_tully1_values():
    m = BUILTIN["tully1"]()
    A, C = 0.01, 0.005
    H = H_of(m, [[-30.0], [0.0], [30.0]])
    assert H[2, 0, 0] == pytest.approx(A, abs=1e-15) and H[0, 0, 0] == pytest.approx(-A, abs=1e-15)
    np.testing.assert_allclose(H[:, 1, 1], -H[:, 0, 0])
    assert H[1, 0, 1] == C and H[1, 0, 0] == 0.0
    assert H[0, 0, 1] == 0.0 and H[2, 0, 1] == 0.0             # flushed to exactly 0
    x = np.linspace(-5, 5, 11)[:, None]
    np.testing.assert_allclose(H_of(m, x)[:, 0, 0], -H_of(m, -x)[:, 0, 0])   # odd V11


def test_tully2_values():
    m = BUILTIN["tully2"]()
    A, C, E0 = 0.10, 0.015, 0.05
    H = H_of(m, [[0.0], [40.0], [200.0]])
    assert H[0, 1, 1] == pytest.approx(E0 - A) and H[0, 0, 1] == pytest.approx(C)
    assert H[0, 0, 0] == 0.0
    assert H[1, 1, 1] == pytest.approx(E0, abs=1e-15) and H[1, 0, 1] == pytest.approx(0, abs=1e-40)
    assert H[2, 1, 1] == E0 and H[2, 0, 1] == 0.0              # flushed to exactly 0


def test_tully3_values():
    m = BUILTIN["tully3"]()
    A, B = 6e-4, 0.10
    H = H_of(m, [[-40.0], [0.0], [40.0]])
    assert H[2, 0, 1] == pytest.approx(2 * B, rel=1e-12)       # x -> +inf: 2B
    assert H[0, 0, 1] == pytest.approx(0.0, abs=1e-15)         # x -> -inf: 0
    assert H[1, 0, 1] == pytest.approx(B)                      # continuous at 0
    np.testing.assert_allclose(H[:, 0, 0], A)
    np.testing.assert_allclose(H[:, 1, 1], -A)
    e = 1e-9
    assert H_of(m, [[-e]])[0, 0, 1] == pytest.approx(H_of(m, [[e]])[0, 0, 1], abs=1e-9)


def test_double_arch_continuity_and_symmetry():
    m = BUILTIN["double_arch"]()
    Z = m.param_values["Z"]
    e = 1e-10
    for z in (-Z, Z):
        lo, hi = H_of(m, [[z - e], [z + e]])
        assert lo[0, 1] == pytest.approx(hi[0, 1], abs=1e-10)
        _, dH = m.evaluate([[z - e], [z + e]])
        assert dH[0, 0, 0, 1] == pytest.approx(dH[1, 0, 0, 1], abs=1e-9)
    x = np.linspace(-15, 15, 61)[:, None]
    np.testing.assert_allclose(H_of(m, x)[:, 0, 1], H_of(m, -x)[:, 0, 1], rtol=1e-12, atol=1e-18)
    B, C = m.param_values["B"], m.param_values["C"]
    assert H_of(m, [[0.0]])[0, 0, 1] == pytest.approx(2 * B * (1 - np.exp(-C * Z)))
    assert H_of(m, [[60.0]])[0, 0, 1] == pytest.approx(0.0, abs=1e-20)
    assert H_of(m, [[1000.0]])[0, 0, 1] == 0.0 and H_of(m, [[-1000.0]])[0, 0, 1] == 0.0


# ----------------------------------------------------------------------------- conical2d
def test_conical2d_degenerate_at_intersection_and_linear_gap():
    m = BUILTIN["conical2d"]()
    p = m.param_values
    xc = m.intersection()
    assert xc == pytest.approx([-p["Delta"] / p["kappa"], 0.0])
    assert m.ndof == 2 and not m.scattering and m.masses.tolist() == [2000.0, 2000.0]

    def gap(pts):
        E = np.linalg.eigvalsh(H_of(m, pts))
        return E[:, 1] - E[:, 0]

    assert gap(xc[None])[0] == pytest.approx(0.0, abs=1e-15)
    for d in (np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.6, -0.8])):
        r = np.array([1e-4, 2e-4, 4e-4, 8e-4])
        g = gap(xc + r[:, None] * d)
        slope = 2.0 * np.hypot(p["kappa"] * d[0], p["lam"] * d[1])
        np.testing.assert_allclose(g / r, slope, rtol=1e-10)            # linear, cone slope
        np.testing.assert_allclose(gap(xc - r[:, None] * d), g, rtol=1e-10)
    # away from the seam point the states are non-degenerate
    assert gap(np.array([[0.0, 0.0]]))[0] == pytest.approx(2 * p["Delta"])


def test_conical2d_parameters_move_the_intersection():
    m = build_model({"name": "conical2d", "Delta": 0.02, "kappa": 0.08})
    xc = m.intersection()
    assert xc[0] == pytest.approx(-0.25)
    E = np.linalg.eigvalsh(H_of(m, xc[None]))
    assert E[0, 1] - E[0, 0] == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="kappa"):
        build_model({"name": "conical2d", "kappa": 0.0})


# ----------------------------------------------------------------------------- spin_boson
def test_spin_boson_structure():
    m = build_model({"name": "spin_boson", "modes": 12, "epsilon": 0.5, "Delta": 0.2})
    assert m.ndof == 12 and m.masses.shape == (12,) and np.all(m.masses == 1.0)
    assert not m.scattering
    H = H_of(m, np.zeros((1, 12)))[0]
    np.testing.assert_allclose(H, [[0.5, 0.2], [0.2, -0.5]])
    x = np.random.default_rng(0).normal(size=(4, 12))
    H = H_of(m, x)
    vb = 0.5 * np.sum(m.omega ** 2 * x ** 2, axis=1)
    vc = x @ m.coupling
    np.testing.assert_allclose(H[:, 0, 0], vb + 0.5 + vc)
    np.testing.assert_allclose(H[:, 1, 1], vb - 0.5 - vc)
    np.testing.assert_allclose(H[:, 0, 1], 0.2)
    for bad in ({"modes": 2.5}, {"modes": 0}, {"omega_c": 0.0}, {"alpha": -1.0}):
        with pytest.raises(ValueError):
            build_model({"name": "spin_boson", **bad})


def test_spin_boson_discretisation_reproduces_ohmic_bath():
    alpha, wc, f = 0.3, 2.0, 400
    m = build_model({"name": "spin_boson", "alpha": alpha, "omega_c": wc, "modes": f})
    w, c = m.omega, m.coupling
    np.testing.assert_allclose((w, c), ohmic_bath(alpha, wc, f))
    assert np.all(np.diff(w) > 0) and np.all(w > 0)
    # reorganisation energy lambda = sum c^2/(2 w^2) = (1/pi) int J(w)/w dw = alpha wc / 2;
    # exact for this discretisation (each mode carries lambda/f), tolerance: rounding only
    lam = alpha * wc / 2
    assert m.reorganisation_energy() == pytest.approx(lam, rel=1e-12)
    # cumulative reorganisation lambda(w) = lambda (1 - exp(-w/wc)) within lambda / f
    # (midpoint rule in u = 1 - exp(-w/wc))
    grid = np.linspace(0.0, 8 * wc, 200)
    disc = np.array([np.sum((c ** 2 / (2 * w ** 2))[w < g]) for g in grid])
    assert np.max(np.abs(disc - lam * (1 - np.exp(-grid / wc)))) <= lam / f + 1e-14
    # integral of J: (pi/2) sum c^2/w -> int J dw = (pi/2) alpha wc^2, converging like ln(f)/f
    total = 0.5 * np.pi * np.sum(c ** 2 / w)
    assert total == pytest.approx(0.5 * np.pi * alpha * wc ** 2, rel=2e-2)
    # binned spectral weight: sum of (pi/2) c^2/w over the modes in a bin vs the integral of
    # J(w) = (pi/2) alpha w exp(-w/wc) over the bin. Each mode stands for one cell of the
    # discretisation, and the two bin edges cut cells, so the difference is at most about one
    # mode's weight.
    weight = 0.5 * np.pi * c ** 2 / w
    edges = np.linspace(0.0, 3 * wc, 13)
    hist, _ = np.histogram(w, bins=edges, weights=weight)
    F = lambda v: -0.5 * np.pi * alpha * wc ** 2 * (1 + v / wc) * np.exp(-v / wc)  # antiderivative
    exact = F(edges[1:]) - F(edges[:-1])
    one_mode = np.array([weight[(w >= a) & (w < b)].max() for a, b in zip(edges[:-1], edges[1:])])
    assert np.all(np.abs(hist - exact) <= one_mode)
    assert np.max(np.abs(hist - exact) / exact) < 0.1
    x = np.linspace(0.1, 5, 7)
    np.testing.assert_allclose(m.spectral_density(x), 0.5 * np.pi * alpha * x * np.exp(-x / wc))


def test_spin_boson_many_modes_reorganisation_other_parameters():
    for alpha, wc, f in ((0.05, 0.5, 50), (1.2, 10.0, 1000)):
        m = build_model({"name": "spin_boson", "alpha": alpha, "omega_c": wc, "modes": f})
        assert m.reorganisation_energy() == pytest.approx(alpha * wc / 2, rel=1e-12)
        assert m.ndof == f
