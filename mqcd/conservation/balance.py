r"""Residuals of the balance laws (PSS eq. (2.17) / (5.20)) and of the virial identity.

* time derivatives of the recorded ensemble fields: the five-point central difference over
  consecutive, equally spaced records (error O(dt_rec^4)); residuals are evaluated at the
  interior records;
* space derivatives: spectral (FFT) on the periodic grid. The Gaussian-smoothed fields are
  band-limited when the grid spacing is at most ``width / 2`` (the Fourier factor at the
  Nyquist wavenumber is ``exp(-(pi w/h)^2/2)``: 2.7e-9 at ``w/2``, 5e-20 at ``w/3``); a coarser
  grid is refused;
* relative residuals: ``max |d_t rho + div(rho u)| / max |div(rho u)|``,
  ``max |d_t(rho u) + div Pi - F| / max |div Pi|`` and
  ``max |d_t E + div J - P| / max |div J|`` over grid and records (no external potential in the
  pair models: F = P = 0), with ``Pi = rho u u - sigma`` and ``J = E u + q - sigma u``;
* virial: the grid integral of the stress about zero velocity, ``-int Pi dy``, against the
  whole-box virial ``-(sum p p / M + ...)``, i.e. ``-sum_n p^n p^n / M + sum_p g_p d_p d_p /
  r_p`` computed from the particles (relative, max over records and components).
"""
from __future__ import annotations

import numpy as np

#: largest grid spacing, in kernel widths, for spectral derivatives: the Fourier factor of the
#: Gaussian at the Nyquist wavenumber is exp(-(pi w/h)^2/2) = 2.7e-9 at h = w/2 (the residual
#: floor, far below the 1e-6 the balance laws are checked to; w/3 gives 5e-20)
MAX_SPACING = 1.0 / 2.0


def check_grid(grid):
    """Refuse grids too coarse for spectral derivatives of the smoothed fields."""
    if grid.h > MAX_SPACING * grid.width * (1 + 1e-12):
        need = int(np.ceil(grid.box / (MAX_SPACING * grid.width)))
        raise ValueError(f"--grid {grid.ng}: spacing {grid.h:.4g} bohr is coarser than width/2 = "
                         f"{grid.width / 2:.4g} bohr; use --grid >= {need} or a larger --width")


def divergence(flux, grid):
    """Spectral divergence over the leading component axis: ``flux`` (..., dim, G) ->
    (..., G) (the component axis is the one before the flattened grid)."""
    dim, ng = grid.dim, grid.ng
    shape = flux.shape[:-2]
    f = flux.reshape(shape + (dim,) + (ng,) * dim)
    k = 2j * np.pi * np.fft.fftfreq(ng, d=grid.h)
    out = np.zeros(shape + (ng,) * dim)
    for a in range(dim):
        ax = len(shape) + 1 + a
        fa = np.take(f, a, axis=len(shape))
        fk = np.fft.fft(fa, axis=ax - 1)
        sh = [1] * fk.ndim
        sh[ax - 1] = ng
        if ng % 2 == 0:
            kk = k.copy()
            kk[ng // 2] = 0.0                      # Nyquist mode: no derivative
        else:
            kk = k
        out += np.fft.ifft(fk * kk.reshape(sh), axis=ax - 1).real
    return out.reshape(shape + (grid.size,))


def time_derivative(f, dt):
    """Five-point central difference along axis 0 at records 2 .. R-3."""
    if f.shape[0] < 5:
        raise ValueError(f"balance residuals need at least 5 consecutive records, got {f.shape[0]}")
    return (f[:-4] - 8.0 * f[1:-3] + 8.0 * f[3:-1] - f[4:]) / (12.0 * dt)


def _rel(res, ref):
    den = float(np.max(np.abs(ref)))
    return float(np.max(np.abs(res))) / den if den > 0 else float(np.max(np.abs(res)))


def residuals(series):
    """Relative residuals ``{"mass", "momentum", "energy", "virial"}`` of a
    :class:`~mqcd.conservation.fields.FieldSeries` (records equally spaced in time)."""
    grid = series.grid
    check_grid(grid)
    t = np.asarray(series.time, dtype=float)
    steps = np.diff(t)
    if steps.size == 0 or np.ptp(steps) > 1e-9 * max(abs(steps[0]), 1e-300):
        raise ValueError("balance residuals need equally spaced records (use every record of "
                         "one run, [output] stride constant)")
    dt = float(steps[0])
    d = series.data
    inner = slice(2, -2)
    div_mom = divergence(d["mom"], grid)
    r_mass = time_derivative(d["rho"], dt) + div_mom[inner]
    R, dim = d["Pi"].shape[0], grid.dim
    Pi = d["Pi"]
    div_Pi = np.stack([divergence(Pi[:, :, m, :], grid) for m in range(dim)], axis=1)
    r_mom = time_derivative(d["mom"], dt) + div_Pi[inner]
    div_J = divergence(d["J"], grid)
    r_en = time_derivative(d["E"], dt) + div_J[inner]
    integral = -Pi.sum(axis=-1) * grid.cell_volume
    box = -d["box_kinetic"] + d["box_bond"]
    return {"mass": _rel(r_mass, div_mom[inner]), "momentum": _rel(r_mom, div_Pi[inner]),
            "energy": _rel(r_en, div_J[inner]), "virial": _rel(integral - box, box)}


def box_stress(series):
    """Whole-box stress (R, dim, dim) in hartree/bohr^dim: the grid integral of the stress about
    zero velocity divided by the box volume; its negative trace over dim is the pressure."""
    return -series.data["Pi"].sum(axis=-1) * series.grid.cell_volume / series.grid.box ** series.grid.dim
