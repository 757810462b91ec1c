r"""The three scattering models of J. E. Subotnik, J. Phys. Chem. A 115, 12083 (2011) (atomic units).

* ``subotnik_x``: three states, one dof ("model X"): three tanh diabats crossing pairwise at
  x = -xp, 0, +xp with Gaussian couplings, so that a packet meets three avoided crossings, one of
  which it passes twice in different states (the decoherence test).
* ``subotnik_s``: three states, one dof ("model S"): two diabats that cross twice (at x = -xp and
  x = +xp, like a smoothed Tully 2) and a third, tanh-shaped, that crosses both at x = 0.
* ``subotnik_2d``: two states, two dof: a tanh avoided crossing in x whose upper diabat is bent
  along y by ``W cos(G y + pi/2)`` (a crossing seam curved in the plane), coupling ``C exp(-D x^2)``.

Diabats (``t(z) = tanh(z)``, ``g(z) = exp(-z^2)``):

    X:  H11 = A t(B x) + A t(B (x + xp)),     H22 = -A t(B (x - xp)) - A t(B x),
        H33 = -A t(B (x + xp)) + A t(B (x - xp)),
        H12 = C g(x),  H13 = C g(x + xp),  H23 = C g(x - xp)
    S:  H11 = A [t(B (x - xp)) - t(B (x + xp))] + A,  H22 = -A [t(B (x - xp)) - t(B (x + xp))] - A,
        H33 = 2 A t(D x),
        H12 = C [g(x + xp) + g(x - xp)],  H13 = H23 = C g(x)
    2D: H11 = -F t(B x),  H22 = A t(B (x - 1) + W cos(G y + pi/2)) + 3A/4,  H12 = C exp(-D x^2)

with the paper's default parameters below (mass 2000). Couplings below 1e-100 hartree are set to 0
(as in mqcd/models/tully.py). The diabats of models X and S were cross-checked point by point
against mudslide 0.12's implementations of the same paper (``tools/peer_models.py``).
"""
import math

from numba import njit

from .base import Model

FLUSH = 1e-100


@njit(cache=True, inline="always")
def _sech2(z):
    c = math.cosh(z)
    return 1.0 / (c * c) if c < 1e150 else 0.0


@njit(cache=True, inline="always")
def _gauss(z):
    g = math.exp(-z * z)
    return g if g >= FLUSH else 0.0


@njit(cache=True)
def _model_x(x, p, H, dH):
    A, B, C, xp = p[0], p[1], p[2], p[3]
    for i in range(x.shape[0]):
        q = x[i, 0]
        zm, z0, zp = q - xp, q, q + xp
        tm, t0, tp = A * math.tanh(B * zm), A * math.tanh(B * z0), A * math.tanh(B * zp)
        dm, d0, dp = A * B * _sech2(B * zm), A * B * _sech2(B * z0), A * B * _sech2(B * zp)
        gm, g0, gp = C * _gauss(zm), C * _gauss(z0), C * _gauss(zp)
        H[i, 0, 0] = t0 + tp
        H[i, 1, 1] = -(tm + t0)
        H[i, 2, 2] = tm - tp
        H[i, 0, 1] = H[i, 1, 0] = g0
        H[i, 0, 2] = H[i, 2, 0] = gp
        H[i, 1, 2] = H[i, 2, 1] = gm
        dH[i, 0, 0, 0] = d0 + dp
        dH[i, 0, 1, 1] = -(dm + d0)
        dH[i, 0, 2, 2] = dm - dp
        dH[i, 0, 0, 1] = dH[i, 0, 1, 0] = -2.0 * z0 * g0
        dH[i, 0, 0, 2] = dH[i, 0, 2, 0] = -2.0 * zp * gp
        dH[i, 0, 1, 2] = dH[i, 0, 2, 1] = -2.0 * zm * gm


@njit(cache=True)
def _model_s(x, p, H, dH):
    A, B, C, D, xp = p[0], p[1], p[2], p[3], p[4]
    for i in range(x.shape[0]):
        q = x[i, 0]
        zm, zp = q - xp, q + xp
        s = A * (math.tanh(B * zm) - math.tanh(B * zp))
        ds = A * B * (_sech2(B * zm) - _sech2(B * zp))
        g = C * (_gauss(zp) + _gauss(zm))
        dg = -2.0 * C * (zp * _gauss(zp) + zm * _gauss(zm))
        g0 = C * _gauss(q)
        H[i, 0, 0] = s + A
        H[i, 1, 1] = -s - A
        H[i, 2, 2] = 2.0 * A * math.tanh(D * q)
        H[i, 0, 1] = H[i, 1, 0] = g
        H[i, 0, 2] = H[i, 2, 0] = g0
        H[i, 1, 2] = H[i, 2, 1] = g0
        dH[i, 0, 0, 0] = ds
        dH[i, 0, 1, 1] = -ds
        dH[i, 0, 2, 2] = 2.0 * A * D * _sech2(D * q)
        dH[i, 0, 0, 1] = dH[i, 0, 1, 0] = dg
        dH[i, 0, 0, 2] = dH[i, 0, 2, 0] = -2.0 * q * g0
        dH[i, 0, 1, 2] = dH[i, 0, 2, 1] = -2.0 * q * g0


@njit(cache=True)
def _model_2d(x, p, H, dH):
    A, B, C, D, F, G, W = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    for i in range(x.shape[0]):
        q = x[i, 0]
        y = x[i, 1]
        z = B * (q - 1.0) + W * math.cos(G * y + 0.5 * math.pi)
        v12 = C * math.exp(-D * q * q)
        if v12 < FLUSH:
            v12 = 0.0
        H[i, 0, 0] = -F * math.tanh(B * q)
        H[i, 1, 1] = A * math.tanh(z) + 0.75 * A
        H[i, 0, 1] = H[i, 1, 0] = v12
        s = _sech2(z)
        dH[i, 0, 0, 0] = -F * B * _sech2(B * q)
        dH[i, 0, 1, 1] = A * B * s
        dH[i, 0, 0, 1] = dH[i, 0, 1, 0] = -2.0 * D * q * v12
        dH[i, 1, 0, 0] = 0.0
        dH[i, 1, 1, 1] = -A * s * W * G * math.sin(G * y + 0.5 * math.pi)
        dH[i, 1, 0, 1] = dH[i, 1, 1, 0] = 0.0


class SubotnikX(Model):
    """Subotnik's model X: three states, three avoided crossings in one dof (scattering)."""
    name = "subotnik_x"
    nstates = 3
    ndof = 1
    scattering = True
    interaction_radius = 12.0
    parameters = {"A": (0.03, "hartree", "diabatic asymptote of each tanh"),
                  "B": (1.6, "1/bohr", "tanh steepness"),
                  "C": (0.005, "hartree", "coupling strength (Gaussian exp(-z^2), z in bohr)"),
                  "xp": (7.0, "bohr", "distance of the outer crossings from x = 0")}
    kernel = staticmethod(_model_x)


class SubotnikS(Model):
    """Subotnik's model S: two diabats crossing twice and a third crossing both (scattering)."""
    name = "subotnik_s"
    nstates = 3
    ndof = 1
    scattering = True
    interaction_radius = 12.0
    parameters = {"A": (0.015, "hartree", "diabatic energy scale"),
                  "B": (1.0, "1/bohr", "tanh steepness of diabats 1, 2"),
                  "C": (0.005, "hartree", "coupling strength (Gaussian exp(-z^2), z in bohr)"),
                  "D": (0.5, "1/bohr", "tanh steepness of diabat 3"),
                  "xp": (7.0, "bohr", "positions +-xp of the outer crossings")}
    kernel = staticmethod(_model_s)


class Subotnik2D(Model):
    """Subotnik's two-dimensional model: a tanh crossing in x with a seam bent along y."""
    name = "subotnik_2d"
    nstates = 2
    ndof = 2
    scattering = True
    interaction_radius = 8.0
    parameters = {"A": (0.2, "hartree", "amplitude of diabat 2"),
                  "B": (0.6, "1/bohr", "tanh steepness along x"),
                  "C": (0.015, "hartree", "coupling strength"),
                  "D": (0.3, "1/bohr^2", "coupling range along x"),
                  "F": (0.05, "hartree", "amplitude of diabat 1"),
                  "G": (0.3, "1/bohr", "wave number of the seam's bend along y"),
                  "W": (2.0, "1", "amplitude of the seam's bend (in units of 1/B bohr)")}
    kernel = staticmethod(_model_2d)
