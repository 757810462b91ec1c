"""Lindhard density response of the non-interacting (Kohn-Sham) HEG, chi_s^h of NTG eq. (17).

Closed form (J. Lindhard, Kgl. Danske Videnskab. Selskab Mat.-Fys. Medd. 28, no. 8 (1954);
G. F. Giuliani and G. Vignale, *Quantum Theory of the Electron Liquid* (2005), Sec. 4.4.1, the
paper's Ref. [17]) for the spin-unpolarized gas, retarded (omega + i0), with
``z = q / 2kF`` and ``u = omega / (q vF)``:

    chi_0(q, omega) = -(kF / pi^2) [1/2 + (L(z - u) + L(z + u)) / (8 z)] + i Im chi_0,
    L(w) = (1 - w^2) ln|(w + 1)/(w - 1)|,
    Im chi_0 = -(kF / (8 pi z)) [(1 - (z-u)^2) theta(1 - |z-u|) - (1 - (z+u)^2) theta(1 - |z+u|)].

Limits used by the tests: chi_0(q -> 0, 0) = -kF / pi^2 (minus the density of states at the Fermi
level), Im chi_0 = -omega / (2 pi q) for q < 2 kF - omega / vF (the "stopping power" slope of App. E),
the f-sum rule int_0^inf omega Im chi_0 domega = -pi n q^2 / 2.

For complex frequencies (Im omega > 0) the same formula with principal-branch complex logarithms is
the analytic continuation of the retarded function (tested against a direct k-space integral).
Units: q in 1/bohr, omega in hartree, chi in 1/(hartree bohr^3).
"""
from __future__ import annotations

import numpy as np


def _log_ratio(w):
    """ln|(w + 1)/(w - 1)| for real w, accurate near w = 0 and for large |w|."""
    w = np.asarray(w, dtype=float)
    aw = np.abs(w)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where(aw < 1.0, aw, 1.0 / np.where(aw == 0.0, 1.0, aw))
        out = 2.0 * np.sign(w) * np.arctanh(np.where(aw == 1.0, 0.0, inner))
    return out


def _L(w):
    """(1 - w^2) ln|(w+1)/(w-1)|, continuous (= 0) at |w| = 1."""
    w = np.asarray(w, dtype=float)
    return np.where(np.abs(w) == 1.0, 0.0, (1.0 - w * w) * _log_ratio(w))


def chi0(q, omega, kF: float):
    """Retarded Lindhard function chi_0(q, omega) (complex), spin-unpolarized.

    Parameters
    ----------
    q : array_like
        Wave vector, 1/bohr, > 0 (q = 0 gives the limit: -kF/pi^2 at omega = 0, else 0).
    omega : array_like
        Frequency, hartree. Real: retarded value on the real axis (omega + i0). Complex with
        Im omega > 0: analytic continuation into the upper half plane.
    kF : float
        Fermi wave vector, 1/bohr.

    Returns
    -------
    numpy.ndarray (complex)
        chi_0 in 1/(hartree bohr^3), broadcast over q and omega.
    """
    q = np.asarray(q, dtype=float)
    omega = np.asarray(omega)
    if np.iscomplexobj(omega) and np.any(omega.imag != 0):
        return _chi0_complex(q, omega, kF)
    omega = np.real(omega).astype(float)
    q, omega = np.broadcast_arrays(q, omega)
    qs = np.where(q > 0, q, 1.0)
    z = qs / (2.0 * kF)
    u = omega / (qs * kF)
    zm, zp = z - u, z + u
    F = 0.5 + (_L(zm) + _L(zp)) / (8.0 * z)
    im = -(kF / (8.0 * np.pi * z)) * (np.where(np.abs(zm) < 1.0, 1.0 - zm ** 2, 0.0)
                                      - np.where(np.abs(zp) < 1.0, 1.0 - zp ** 2, 0.0))
    out = -(kF / np.pi ** 2) * F + 1j * im
    q0 = q <= 0
    if np.any(q0):
        out = np.where(q0, np.where(omega == 0, -kF / np.pi ** 2, 0.0) + 0j, out)
    return out


def _chi0_complex(q, omega, kF):
    q, omega = np.broadcast_arrays(q, omega.astype(complex))
    z = q / (2.0 * kF)
    u = omega / (q * kF)

    def Lc(w):
        return (1.0 - w * w) * np.log((w + 1.0) / (w - 1.0))
    F = 0.5 + (Lc(z - u) + Lc(z + u)) / (8.0 * z)
    return -(kF / np.pi ** 2) * F


def chi0_static(q, kF: float):
    """Static Lindhard function chi_0(q, 0) = -(kF/pi^2) [1/2 + (1 - z^2)/(4z) ln|(1+z)/(1-z)|] (real)."""
    q = np.asarray(q, dtype=float)
    qs = np.where(q > 0, q, 1.0)
    z = qs / (2.0 * kF)
    F = 0.5 + _L(z) / (4.0 * z)
    return np.where(q > 0, -(kF / np.pi ** 2) * F, -kF / np.pi ** 2)


def dchi0_domega0(q, kF: float):
    """Im d chi_0 / d omega at omega = 0: -1/(2 pi q) for q < 2kF, 0 for q > 2kF (1/(hartree^2 bohr^3)).

    The real part of chi_0 is even in omega, so its derivative vanishes at omega = 0; this is the
    factor of App. E, eq. (E1), of the non-interacting gas.
    """
    q = np.asarray(q, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(q < 2.0 * kF, -1.0 / (2.0 * np.pi * q), 0.0)
