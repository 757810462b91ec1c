"""One-dimensional two-state scattering models (atomic units).

* ``tully1``, ``tully2``, ``tully3``: J. C. Tully, J. Chem. Phys. 93, 1061 (1990), standard
  parameters (simple avoided crossing, dual avoided crossing, extended coupling with reflection).
* ``double_arch``: J. E. Subotnik and N. Shenvi, J. Chem. Phys. 134, 024105 (2011) (the A-FSSH paper), the model on
  which Ehrenfest and plain FSSH fail (two coupling regions, interference).

Couplings below ``FLUSH`` = 1e-100 hartree are set to exactly zero, so that far from the interaction
region neither they nor their squares are denormal numbers (which slow kernels down and lose
precision in eigenvector normalisation); the neglected values are physically irrelevant.
"""
import math

from numba import njit

from .base import Model

FLUSH = 1e-100


@njit(cache=True)
def _tully1(x, p, H, dH):
    A, B, C, D = p[0], p[1], p[2], p[3]
    for i in range(x.shape[0]):
        q = x[i, 0]
        e = math.exp(-B * abs(q))
        v11 = math.copysign(A * (1.0 - e), q)
        dv11 = A * B * e
        v12 = C * math.exp(-D * q * q)
        if v12 < FLUSH:
            v12 = 0.0
        H[i, 0, 0] = v11
        H[i, 1, 1] = -v11
        H[i, 0, 1] = v12
        H[i, 1, 0] = v12
        dH[i, 0, 0, 0] = dv11
        dH[i, 0, 1, 1] = -dv11
        dH[i, 0, 0, 1] = -2.0 * D * q * v12
        dH[i, 0, 1, 0] = -2.0 * D * q * v12


@njit(cache=True)
def _tully2(x, p, H, dH):
    A, B, C, D, E0 = p[0], p[1], p[2], p[3], p[4]
    for i in range(x.shape[0]):
        q = x[i, 0]
        g = A * math.exp(-B * q * q)
        v12 = C * math.exp(-D * q * q)
        if g < FLUSH:
            g = 0.0
        if v12 < FLUSH:
            v12 = 0.0
        H[i, 0, 0] = 0.0
        H[i, 1, 1] = E0 - g
        H[i, 0, 1] = v12
        H[i, 1, 0] = v12
        dH[i, 0, 0, 0] = 0.0
        dH[i, 0, 1, 1] = 2.0 * B * q * g
        dH[i, 0, 0, 1] = -2.0 * D * q * v12
        dH[i, 0, 1, 0] = -2.0 * D * q * v12


@njit(cache=True)
def _tully3(x, p, H, dH):
    A, B, C = p[0], p[1], p[2]
    for i in range(x.shape[0]):
        q = x[i, 0]
        e = math.exp(-C * abs(q))
        if q < 0.0:
            v12 = B * e
            dv12 = B * C * e
        else:
            v12 = B * (2.0 - e)
            dv12 = B * C * e
        H[i, 0, 0] = A
        H[i, 1, 1] = -A
        H[i, 0, 1] = v12
        H[i, 1, 0] = v12
        dH[i, 0, 0, 0] = 0.0
        dH[i, 0, 1, 1] = 0.0
        dH[i, 0, 0, 1] = dv12
        dH[i, 0, 1, 0] = dv12


@njit(cache=True)
def _double_arch(x, p, H, dH):
    A, B, C, Z = p[0], p[1], p[2], p[3]
    for i in range(x.shape[0]):
        q = x[i, 0]
        if q < -Z:
            a = math.exp(C * (q + Z))
            b = math.exp(C * (q - Z))
            v12 = B * (a - b)
            dv12 = B * C * (a - b)
        elif q > Z:
            a = math.exp(-C * (q - Z))
            b = math.exp(-C * (q + Z))
            v12 = B * (a - b)
            dv12 = -B * C * (a - b)
        else:
            a = math.exp(C * (q - Z))
            b = math.exp(-C * (q + Z))
            v12 = B * (2.0 - a - b)
            dv12 = B * C * (b - a)
        if abs(v12) < FLUSH:
            v12 = 0.0
            dv12 = 0.0
        H[i, 0, 0] = A
        H[i, 1, 1] = -A
        H[i, 0, 1] = v12
        H[i, 1, 0] = v12
        dH[i, 0, 0, 0] = 0.0
        dH[i, 0, 1, 1] = 0.0
        dH[i, 0, 0, 1] = dv12
        dH[i, 0, 1, 0] = dv12


class Tully1(Model):
    """Tully's simple avoided crossing."""
    name = "tully1"
    scattering = True
    interaction_radius = 10.0
    parameters = {"A": (0.01, "hartree", "diabatic asymptote"),
                  "B": (1.6, "1/bohr", "diabatic steepness"),
                  "C": (0.005, "hartree", "coupling strength"),
                  "D": (1.0, "1/bohr^2", "coupling range")}
    kernel = staticmethod(_tully1)


class Tully2(Model):
    """Tully's dual avoided crossing."""
    name = "tully2"
    scattering = True
    interaction_radius = 10.0
    parameters = {"A": (0.10, "hartree", "well depth"),
                  "B": (0.28, "1/bohr^2", "well range"),
                  "C": (0.015, "hartree", "coupling strength"),
                  "D": (0.06, "1/bohr^2", "coupling range"),
                  "E0": (0.05, "hartree", "asymptotic gap")}
    kernel = staticmethod(_tully2)


class Tully3(Model):
    """Tully's extended coupling with reflection (the lower adiabat on the left is diabat 2)."""
    name = "tully3"
    scattering = True
    interaction_radius = 12.0
    parameters = {"A": (6e-4, "hartree", "diabatic splitting"),
                  "B": (0.10, "hartree", "coupling strength"),
                  "C": (0.90, "1/bohr", "coupling steepness")}
    kernel = staticmethod(_tully3)


class DoubleArch(Model):
    """Subotnik-Shenvi double arch (two regions of extended coupling)."""
    name = "double_arch"
    scattering = True
    interaction_radius = 14.0
    parameters = {"A": (6e-4, "hartree", "diabatic splitting"),
                  "B": (0.10, "hartree", "coupling strength"),
                  "C": (0.90, "1/bohr", "coupling steepness"),
                  "Z": (4.0, "bohr", "half distance between the arches")}
    kernel = staticmethod(_double_arch)
