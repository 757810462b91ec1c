"""Nuclear Schrodinger equation with a scalar and a vector potential on a grid (the A.p term).

The exact-factorisation nuclear equation (LRG (5); 2019 (29), (S70)) is

    i d chi/dt = [ sum_k (p_k + A_k(x, t))^2 / (2 M_k) + eps(x, t) ] chi,    p_k = -i d_k,

(atomic units, hbar = 1). With a vector potential the kinetic and potential parts no longer
separate into a product of a momentum-space and a position-space factor, so the split-operator
scheme of mqcd/exact/propagator.py does not apply. This module propagates it with

* the operator applied on the grid as written, in the Hermitian form
  ``H chi = sum_k (1/2M_k) [p_k^2 chi + A_k (p_k chi) + p_k (A_k chi)] + (eps + sum_k A_k^2/2M_k) chi``
  with spectral ``p_k`` (FFT; ``(p + A)^2 = p^2 + A p + p A + A^2`` holds for any A, also when
  ``div A != 0``);
* the fourth-order commutator-free Magnus integrator CF4 for the time-dependent H
  (S. Blanes and P. C. Moan, Appl. Numer. Math. 56, 1519 (2006); A. Alvermann and H. Fehske,
  J. Comput. Phys. 230, 5930 (2011)):
  ``chi(t + h) = exp(-i h (a1 H(t1) + a2 H(t2))) exp(-i h (a2 H(t1) + a1 H(t2))) chi(t)``,
  ``t_{1,2} = t + (1/2 -+ sqrt(3)/6) h``, ``a_{1,2} = (3 -+ 2 sqrt(3)) / 12``; the combination of two
  Hamiltonians is again of the form above (kinetic weight ``a1 + a2``, vector potential
  ``a1 A(t1) + a2 A(t2)``, scalar the weighted sum);
* each exponential by the short-iterative Lanczos method (Krylov dimension grown until the
  error estimate ``h beta_m |[exp(-i h T_m)]_{m,1}|`` is below ``tol``; the small exponential with
  ``scipy.linalg.eigh_tridiagonal``). The error estimate makes the step exact to ``tol`` whatever the
  spectral range of H on the grid (large here: ``A^2/2M`` reaches tens of hartree at the box
  edge), so no step-size rule from the spectral radius is needed, unlike a Chebyshev expansion.

Written by hand: the Lanczos recurrence (scipy has no Krylov exponential of a LinearOperator
other than ``expm_multiply``, whose Taylor scaling would need the full spectral range).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.fft
from scipy.linalg import eigh_tridiagonal

CF4_C = (0.5 - math.sqrt(3.0) / 6.0, 0.5 + math.sqrt(3.0) / 6.0)
CF4_A = ((3.0 - 2.0 * math.sqrt(3.0)) / 12.0, (3.0 + 2.0 * math.sqrt(3.0)) / 12.0)


class VectorPotentialPropagator:
    """Grid, Hamiltonian and CF4-Lanczos propagator of one nuclear wavefunction.

    Parameters
    ----------
    model : object
        With ``masses`` (D,) (electron masses), ``vector_potential(X, t)`` -> (D, *grid) and
        ``scalar_potential(X, t)`` -> (*grid) (hartree), X the list of coordinate meshes (bohr).
    axes : list of 1-D arrays
        Uniform grid coordinates per dof (bohr; periodic box).
    tol : float
        Lanczos error bound per exponential (relative to the norm).
    max_krylov : int
        Largest Krylov dimension; a step that needs more raises (shorten the step).
    """

    def __init__(self, model, axes, tol=1e-12, max_krylov=60, workers=1):
        self.model = model
        self.axes = [np.asarray(a, dtype=np.float64) for a in axes]
        self.D = len(axes)
        self.shape = tuple(a.size for a in self.axes)
        self.dx = [float(a[1] - a[0]) for a in self.axes]
        self.dvol = float(np.prod(self.dx))
        self.mesh = np.meshgrid(*self.axes, indexing="ij")
        ks = [2 * np.pi * np.fft.fftfreq(n, d) for n, d in zip(self.shape, self.dx)]
        self.p = np.meshgrid(*ks, indexing="ij")
        self.M = np.broadcast_to(np.asarray(model.masses, dtype=np.float64), (self.D,))
        self.T = sum(pk ** 2 / (2.0 * self.M[k]) for k, pk in enumerate(self.p))
        self.tol = float(tol)
        self.max_krylov = int(max_krylov)
        self.workers = int(workers)
        self.krylov_used = 0

    # ------------------------------------------------------------------ the Hamiltonian
    def fields(self, t):
        """``(A, V)`` at time t: A (D, *grid) and ``V = eps + sum_k A_k^2 / 2M_k``."""
        A = np.asarray(self.model.vector_potential(self.mesh, t), dtype=np.float64)
        V = np.asarray(self.model.scalar_potential(self.mesh, t), dtype=np.float64)
        V = V + sum(A[k] ** 2 / (2.0 * self.M[k]) for k in range(self.D))
        return A, V

    def _fft(self, a):
        return scipy.fft.fftn(a, workers=self.workers)

    def _ifft(self, a):
        return scipy.fft.ifftn(a, workers=self.workers)

    def momentum(self, chi):
        """``[p_k chi]`` (spectral), one array per dof."""
        f = self._fft(chi)
        return [self._ifft(f * pk) for pk in self.p]

    def apply(self, chi, kin, A, V):
        """``H chi`` with kinetic weight ``kin``, vector potential A (D, *grid), scalar V."""
        f = self._fft(chi)
        out = self._ifft(f * (kin * self.T)) + V * chi
        for k in range(self.D):
            pchi = self._ifft(f * self.p[k])
            pAchi = self._ifft(self._fft(A[k] * chi) * self.p[k])
            out += (A[k] * pchi + pAchi) / (2.0 * self.M[k])
        return out

    # ------------------------------------------------------------------ Lanczos exponential
    def expmv(self, chi, h, kin, A, V):
        """``exp(-i h H) chi`` by short-iterative Lanczos (class docstring)."""
        beta0 = math.sqrt(float(np.vdot(chi, chi).real))
        if beta0 == 0.0:
            return chi.copy()
        Q = [chi / beta0]
        alpha, beta = [], []
        for m in range(1, self.max_krylov + 1):
            w = self.apply(Q[-1], kin, A, V)
            a = float(np.vdot(Q[-1], w).real)
            w = w - a * Q[-1] - (beta[-1] * Q[-2] if beta else 0.0)
            for q in Q:                                  # full reorthogonalisation (small m)
                w = w - np.vdot(q, w) * q
            b = math.sqrt(float(np.vdot(w, w).real))
            alpha.append(a)
            e, v = eigh_tridiagonal(np.array(alpha), np.array(beta)) if m > 1 else \
                (np.array(alpha), np.ones((1, 1)))
            c = v @ (np.exp(-1j * h * e) * v[0])         # exp(-i h T_m) e_1
            if b * abs(c[-1]) * max(h, 1.0) < self.tol or b < 1e-300:
                self.krylov_used = max(self.krylov_used, m)
                out = sum(ci * q for ci, q in zip(c, Q))
                return beta0 * out
            beta.append(b)
            Q.append(w / b)
        raise RuntimeError(f"Lanczos did not converge to {self.tol:g} within {self.max_krylov} "
                           f"vectors for the step h = {h:g}: use a shorter step")

    def step(self, chi, t, h):
        """One CF4 step from t to t + h (module docstring)."""
        (c1, c2), (a1, a2) = CF4_C, CF4_A
        A1, V1 = self.fields(t + c1 * h)
        A2, V2 = self.fields(t + c2 * h)
        chi = self.expmv(chi, h, a1 + a2, a2 * A1 + a1 * A2, a2 * V1 + a1 * V2)
        return self.expmv(chi, h, a1 + a2, a1 * A1 + a2 * A2, a1 * V1 + a2 * V2)

    def propagate(self, chi, t, t_end, h):
        """Propagate from t to t_end with steps of at most h; returns chi(t_end)."""
        n = max(1, math.ceil((t_end - t) / h - 1e-9))
        hh = (t_end - t) / n
        for j in range(n):
            chi = self.step(chi, t + j * hh, hh)
        return chi
