"""Exact-factorisation budgets of a grid wavefunction: energy, momentum and angular-momentum
transfer between electrons and nuclei (Li, Requist & Gross), per record of ``mqcd exact``.

For ``Psi(x, r) = sum_a psi_a(x) |a>`` the exact factorisation ``Psi = chi(x) Phi_x(r)`` gives
(atomic units, hbar = 1; LRG = Li, Requist & Gross, PRL 128, 113001 (2022); MB = Martinazzo &
Burghardt; "2019" = the LRG preprint with supplement, papers in ../shared/papers/):

* nuclear density ``n = sum_a |psi_a|^2`` and current ``j_k = Im(psi^dagger d_k psi)``; the
  mechanical momentum field ``pi_k = j_k / n = d_k S + A_k`` (2019 (S60)) and the nuclear velocity
  field ``v^k = pi_k / M_k`` (LRG text before (25): ``v = Re(v_hat chi / chi)``);
* the conditional density matrix ``rho = psi psi^dagger / n``, its Fubini-Study metric ``g_kj`` and
  Berry curvature ``B_kj`` (:mod:`mqcd.electronic.geometry`; LRG's ``C^{jk} = d_j A_k - d_k A_j``
  equals ``B_kj``, so that the magnetic force is ``sum_j B_kj v^j``, LRG (14), MB (58));
* the energy split ``E = T_marg + T_geo + E_BO`` (LRG text after (10)) with
  ``T_marg = sum_k (1/2M_k) int |(-i d_k + A_k) chi|^2 = sum_k (1/2M_k) int (j_k^2/n + (d_k n)^2/4n)``
  (LRG (5)), ``T_geo = sum_k (1/2M_k) int n g_kk`` (LRG (8)) and ``E_BO = int psi^dagger H_el psi``;
* the gauge-invariant part of the time-dependent potential energy surface
  ``eps_GI = Tr(rho H_el) + sum_k g_kk / 2M_k`` (MB, text after (58));
* the exact-factorisation force field (the real part of ``F_hat chi / chi``, 2019 (S61), (S68);
  MB (58) = (64)) ``F_k = -Tr(rho d_k H_el) - (1/n) sum_i xi^ii d_i (n g_ki)`` and its magnetic
  part ``F^mag_k = sum_j B_kj v^j`` (LRG (14)-(16): the intra- and internuclear curvature terms of
  all D coordinates together); the electric part ``E_k = F_k - F^mag_k`` (LRG (10)).

Ensemble identities recorded as rates (per remaining norm):

* ``dP_k/dt = Re<F_hat_k> = int n F_k = -<d_k H_el>`` (LRG (17), 2019 (26), (S69)). On the grid
  the propagated wavefunction obeys the discrete form ``dP_k/dt = <i [H_el, p_k]>`` with the
  spectral ``p_k``, recorded as ``nuclear/force_mean``; the continuum form ``-<d_k H_el>`` (analytic
  gradient) is ``exact/force_continuum`` and ``int n F_k`` is ``exact/force_ef_mean`` (equal to it
  up to ``int d_i (n g_ki) = 0``, MB text after (64)). For models whose ``H_el`` has a kink (Tully 1
  and 3: ``V_12'' `` jumps at x = 0) the continuum form differs from the grid's dynamics by an
  O(dx^2) spatial error (Tully 1, k = 10, default grid: 2.7e-3 of the peak force; halving dx: 6.7e-4);
  the discrete form holds to the propagator's O(dt^2) (3e-7 .. 7e-7 at dt = 0.5);
* ``dT_n/dt = <i [H_el, T_n]>`` (``energy/power``, the rate of the full nuclear kinetic energy
  ``energy/kinetic``, spectral ``T_n``), ``dT_marg/dt = int n sum_k F_k v^k`` (LRG (19), (25);
  ``energy/power_marginal``) and their difference ``dT_geo/dt`` (``energy/power_geometric``), for
  which no force-velocity form exists (LRG text after (10));
* 2D: ``L = int ((x_1 - o_1) j_2 - (x_2 - o_2) j_1)`` about the origin ``o`` (``[exact]
  angular_origin``) and ``dL/dt = <i [H_el, L]> + (1/M_1 - 1/M_2) Re<p_1 p_2>`` (``nuclear/torque``;
  LRG (18) for equal masses, where the last term vanishes; ``exact/torque_ef`` is
  ``int n (x - o) x F`` plus the same mass term).

The finite-difference rates of the same expectation values (``rates/*``) are added by the solver
(:func:`mqcd.analysis.transfer.time_derivative`), so the identities can be checked from the file.

Accuracy. The fields are evaluated on the solver grid refined ``upsample`` times by FFT zero
padding (exact for the band-limited wavefunction, :func:`mqcd.exact.factorization.spectral_derivatives`):
the integrands ``j^2/n``, ``n g`` and ``d_i(n g)`` contain ``1/n`` and are not band limited, so on
the solver grid itself their sums carry quadrature errors (Tully 3, k = 10, t = 3000: ``int n F``
off by 0.9 % of the force, dT_marg/dt by 2 %); on the twice-refined grid they agree with the
continuum values to ~1e-7 relative. ``T_marg + T_geo`` equals the FFT kinetic energy to round-off
on any grid (a pointwise identity, ``sum_a |d psi_a|^2 = j^2/n + (d n)^2/4n + n g``).
"""
from __future__ import annotations

import numpy as np
import scipy.fft

from ..electronic.geometry import geometry_from_fields
from ..fields.multiindex import index_of
from .factorization import (PointDerivatives, derivative_table, fields_from_derivatives,
                            spectral_derivatives)

#: the per-record scalars :class:`FactorizationRecorder` adds: name -> units
SCALAR_UNITS = {
    "energy/kinetic_marginal": "hartree",
    "energy/geometric": "hartree",
    "energy/born_oppenheimer": "hartree",
    "energy/electronic": "hartree",
    "exact/energy_split_residual": "hartree",
    "nuclear/force_mean": "hartree / bohr",
    "exact/force_continuum": "hartree / bohr",
    "exact/force_ef_mean": "hartree / bohr",
    "energy/power": "hartree / atomic_unit_of_time",
    "energy/power_marginal": "hartree / atomic_unit_of_time",
    "energy/power_geometric": "hartree / atomic_unit_of_time",
    "nuclear/angular_momentum": "electron_mass * bohr ** 2 / atomic_unit_of_time",
    "nuclear/torque": "hartree",
    "exact/torque_ef": "hartree",
}
#: optional grid fields (``[exact] factorization_fields``): name -> (units, leading dims)
FIELD_UNITS = {
    "velocity": ("bohr / atomic_unit_of_time", ("dof",)),
    "rho_diabatic": ("1", ("state", "state2")),
    "rho_adiabatic": ("1", ("state", "state2")),
    "metric": ("1 / bohr ** 2", ("dof", "dof2")),
    "berry_curvature": ("1 / bohr ** 2", ("dof", "dof2")),
    "tdpes_gauge_invariant": ("hartree", ()),
    "force": ("hartree / bohr", ("dof",)),
    "force_magnetic": ("hartree / bohr", ("dof",)),
}


class FactorizationRecorder:
    """Exact-factorisation scalars (and optionally grid fields) of the solver's wavefunction.

    Parameters
    ----------
    op : mqcd.exact.SplitOperator
        The solver's grid (axes, masses, eigenvectors, workers).
    model : mqcd.models.Model
        The electronic model (``H_el`` and ``d H_el`` are evaluated once on the grids).
    origin : sequence of float, optional
        Origin of the angular momentum (bohr, 2D); default the coordinate origin.
    fields : bool
        Also return the grid fields of :data:`FIELD_UNITS` (on the solver grid).
    upsample : int
        Refinement of the grid on which the fields and their integrals are evaluated (module
        docstring; 1 = the solver grid).
    """

    def __init__(self, op, model, origin=None, fields=False, upsample=2):
        self.op = op
        self.D, self.ns = op.D, op.ns
        self.u = int(upsample)
        self.masses = np.asarray(model.masses, dtype=np.float64)
        self.dx = [float(a[1] - a[0]) for a in op.axes]
        o = np.zeros(self.D) if origin is None or len(origin) == 0 else np.asarray(origin, float)
        if o.size != self.D:
            raise ValueError(f"[exact] angular_origin has {o.size} entries for {self.D} dof")
        self.origin = o
        self.fields = bool(fields)
        self.ops = derivative_table(self.D)
        self.idx = index_of(self.ops)
        # the grid's own H_el (the propagator's potential) and the spectral momenta
        self.H = np.ascontiguousarray(np.einsum("an...,n...,bn...->...ab", op.U, op.E,
                                                np.conj(op.U)).reshape(-1, self.ns, self.ns))
        self.Xc = np.stack([m.ravel() for m in op.mesh], axis=1)
        # the fine grid: x0 + j dx / u per dof
        fine = [a[0] + np.arange(self.u * a.size) * (d / self.u) for a, d in zip(op.axes, self.dx)]
        mesh = np.meshgrid(*fine, indexing="ij")
        self.fine_shape = mesh[0].shape
        self.X = np.ascontiguousarray(np.stack([m.ravel() for m in mesh], axis=1))
        Hf, dHf = model.evaluate(self.X)
        self.Hf = np.asarray(Hf, dtype=np.complex128)                # (Mf, a, b)
        self.dHf = np.asarray(dHf, dtype=np.complex128)              # (Mf, k, a, b)
        self.dvf = op.dvol / self.u ** self.D
        self.U = op.U.reshape(self.ns, self.ns, -1)                  # (a, n, M) coarse

    def _unit(self, k):
        a = [0] * self.D
        a[k] = 1
        return self.idx[tuple(a)]

    def _grid_forces(self, psi, norm):
        """The discrete identities ``<i [H_el, O]>`` (O = p_k, T_n, L) on the solver grid."""
        op, D = self.op, self.D
        dv = op.dvol
        ps = psi.reshape(self.ns, -1).T                               # (M, a)
        Hps = np.einsum("mab,mb->ma", self.H, ps).conj()              # (H psi)^dagger
        f = scipy.fft.fftn(psi, axes=op.fft_axes, workers=op.workers)
        pp = [scipy.fft.ifftn(f * op.p[k], axes=op.fft_axes, workers=op.workers)
              .reshape(self.ns, -1).T for k in range(D)]              # p_k psi (M, a)
        Tp = scipy.fft.ifftn(f * op.T, axes=op.fft_axes, workers=op.workers).reshape(self.ns, -1).T
        c = lambda a: -2.0 * float(np.sum(Hps * a).imag) * dv / norm  # noqa: E731  <i[H, O]>
        out = {"nuclear/force_mean": np.array([c(p) for p in pp]), "energy/power": c(Tp)}
        if D == 2:
            r = self.Xc - self.origin
            Lp = r[:, 0, None] * pp[1] - r[:, 1, None] * pp[0]
            xi = 1.0 / self.masses
            kin = (xi[0] - xi[1]) * float(np.sum(pp[0].conj() * pp[1]).real) * dv / norm
            out["nuclear/torque"] = c(Lp) + kin
            out["_kin"] = kin
        return out

    def record(self, psi, fields=None):
        """Scalars (dict name -> value) and, with ``fields`` (default: the constructor's), grid
        fields (dict name -> array shaped (..., *grid)) of the grid wavefunction ``psi``
        (a, *grid); per remaining norm."""
        op, D = self.op, self.D
        Mf = self.X.shape[0]
        dv = self.dvf
        norm = max(float(np.sum(np.abs(psi) ** 2) * op.dvol), 1e-300)
        out = self._grid_forces(psi, norm)
        kin = out.pop("_kin", 0.0)
        der = spectral_derivatives(psi, self.dx, self.ops, self.u, workers=op.workers)
        vals = np.ascontiguousarray(der.reshape(len(self.ops), self.ns, Mf).transpose(0, 2, 1))
        del der
        f = fields_from_derivatives(PointDerivatives(self.ops, vals), need_rho2=True)
        geo = geometry_from_fields(f, self.masses)
        ps = vals[0]                                                  # (Mf, a)
        dps = np.stack([vals[self._unit(k)] for k in range(D)], axis=1)   # (Mf, k, a)
        n = np.einsum("ma,ma->m", ps.conj(), ps).real
        ok = np.isfinite(f.n) & (n > 0)
        nn = np.where(ok, n, 1.0)
        j = np.einsum("ma,mka->mk", ps.conj(), dps).imag               # current (Mf, D)
        xi = 1.0 / self.masses
        e_el = np.einsum("ma,mab,mb->m", ps.conj(), self.Hf, ps).real        # n Tr(rho H)
        f_bo = -np.einsum("ma,mkab,mb->mk", ps.conj(), self.dHf, ps).real    # n (-Tr(rho dH))
        l1 = np.where(ok[:, None], f.dlogn, 0.0)
        T2 = np.where(ok[:, None], geo.T2, 0.0)
        Tgeo = np.where(ok, geo.T_geo, 0.0)
        F = np.where(ok[:, None], f_bo / nn[:, None] - T2, 0.0)       # EF force field
        t_marg = 0.5 * float(np.sum(xi * (j ** 2 / nn[:, None] + 0.25 * n[:, None] * l1 ** 2))
                             * dv) / norm
        t_geo = float(np.sum(n * Tgeo) * dv) / norm
        # E_BO on the solver grid (the same sum as energy/potential)
        c = op.adiabatic(psi)
        e_bo = float(np.sum(op.E * np.abs(c) ** 2) * op.dvol) / norm
        power_marg = float(np.sum(F * j * xi) * dv) / norm
        out.update({"energy/kinetic_marginal": t_marg, "energy/geometric": t_geo,
                    "energy/born_oppenheimer": e_bo, "energy/electronic": e_bo,
                    "exact/force_continuum": np.sum(f_bo, axis=0) * dv / norm,
                    "exact/force_ef_mean": np.sum(n[:, None] * F, axis=0) * dv / norm,
                    "energy/power_marginal": power_marg,
                    "energy/power_geometric": out["energy/power"] - power_marg})
        if D == 2:
            r = self.X - self.origin
            out["exact/torque_ef"] = float(np.sum(n * (r[:, 0] * F[:, 1] - r[:, 1] * F[:, 0]))
                                           * dv) / norm + kin
            out["nuclear/angular_momentum"] = float(np.sum(r[:, 0] * j[:, 1] - r[:, 1] * j[:, 0])
                                                    * dv) / norm
        if not (self.fields if fields is None else fields):
            return out, {}
        sub = (slice(None, None, self.u),) * D
        fine, g = self.fine_shape, op.shape

        def grid(a):          # (Mf, ...) on the fine grid -> (..., *solver grid)
            a = np.moveaxis(a, 0, -1).reshape(a.shape[1:] + fine)
            return np.ascontiguousarray(a[(Ellipsis,) + sub])

        v = j / nn[:, None] * xi
        B = np.where(ok[:, None, None], geo.B, 0.0)
        rho = grid(np.where(ok[:, None, None], f.rho, 0.0))              # (a, b, *g)
        Uc = op.U
        rho_adi = np.einsum("an...,ab...,bk...->nk...", np.conj(Uc), rho, Uc)
        fields = {"velocity": grid(v), "rho_diabatic": rho, "rho_adiabatic": rho_adi,
                  "metric": grid(np.where(ok[:, None, None], geo.g, 0.0)),
                  "berry_curvature": grid(B),
                  "tdpes_gauge_invariant": grid(np.where(ok, e_el / nn + Tgeo, np.nan)),
                  "force": grid(F), "force_magnetic": grid(np.einsum("mkj,mj->mk", B, v))}
        assert fields["velocity"].shape[-D:] == g
        return out, fields
