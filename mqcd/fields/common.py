"""What the kernel estimator (estimate.py) and its cross-validation (crossval.py) share: the
options of the estimators, the Hermitian packing of rho and the spread of the swarm for the
bandwidth rules. A module of its own so that neither of the two imports the other at load time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
from numba import njit

from .bandwidth import effective_count, normal_reference_constant, spread
from .distributed import Distributed, exact_sums, subsample_rows
from .engine import METHODS, EngineSettings, Group, choose_method, kernel_sums
from .multiindex import full_symmetric_index, multi_indices

NEED_TOKENS = ("density", "logn2", "logn3", "rho", "rho2")
DEFAULT_NEED = ("density", "rho2")


@dataclass
class FieldOptions:
    """Options of :func:`estimate_fields` (every numerical constant of the estimators).

    Attributes
    ----------
    method : ``"auto" | "grid" | "tree" | "pairs"``
        ``"auto"``: pairs when ``N^2 < pairs_below**2`` (sources only), grid for ``D <= 3`` (unless it would need
        more than ``max_grid_cells`` cells), otherwise tree (or pairs when more than
        ``tree_max_fraction`` of the swarm lies within the cutoff).
    density_deriv : int, default 1
        Derivative order the density bandwidth is tuned for: ``h_n ~ N^(-1/(D + 2 r + 4))``
        (1: optimal for ``grad ln n``, the osmotic velocity; 3: for the quantum force).
    density_scale : float or ``"cv"``, default 1.0
        Multiplier of the normal-reference density bandwidth. ``"cv"``: chosen on every call by
        least-squares cross-validation (:func:`mqcd.fields.crossval.select_density_scale`, 11
        candidates, two kernel sums each); for densities far from Gaussian packets.
    regression_deriv : int, default 2
        Derivative order the regression bandwidth is tuned for (2: second derivatives of rho,
        ``h_r ~ N^(-1/(D+8))``).
    regression_scale : float or ``"cv"``, default 1.0
        Multiplier of the normal-reference regression bandwidth. ``"cv"``: chosen on every call by
        leave-one-out cross-validation (:func:`mqcd.fields.crossval.select_regression_scale`, eight
        extra regressions); much smaller bandwidths win when the trajectories' rho is a
        single-valued function of x.
    spread : ``"fisher" | "std" | "silverman"``, default ``"fisher"``
        Per-dof spread entering the bandwidth rule (:mod:`mqcd.fields.bandwidth`); ``"fisher"``
        (:func:`fisher_spread`) equals the standard deviation for Gaussian swarms and the packet
        width for swarms split into separated packets.
    spread_iterations : int, default 2
        Pilot passes of the Fisher-information spread (measured: within 1 % of the fixed point
        after two passes on Gaussian, bimodal and split swarms).
    spread_sample : int, default 20000
        The Fisher-information spread is computed from every k-th trajectory, at most this many
        (a swarm average: its sampling error is below 1 % there; keeps the cost independent of N).
    spread_sample_pairs : int, default 2000
        The same cap when the pilot runs on the pair or tree path (cost ``O(sample^2)`` per pass;
        sampling error of the spread about 2 %).
    h_density, h_regression : None or (D,) array (bohr)
        Explicit bandwidths overriding the rules.
    order : int, default 2
        Degree of the local polynomial (1: local linear, no second derivatives; 2: local quadratic).
    ridge : float, default 0.1
        Ridge on the non-constant regression coefficients (dimensionless: offsets in units of
        ``h_r``), measured in trajectories: the penalty equals the kernel weight of ``ridge``
        trajectories sitting at the target. Relative bias of the derivatives about
        ``ridge / n_loc`` with ``n_loc = N_eff n(x) (2 pi)^(D/2) prod(h_r)`` the effective number
        of trajectories under the kernel: negligible in the bulk of a large swarm, strong damping
        where only a few trajectories inform the fit (the swarm's edge).
    adaptive : bool, default False
        Abramson sample-point adaptive bandwidths ``h lam_I`` for both the density and the
        regression, ``lam_I = (n_pilot(x_I)/g)^(-adaptive_alpha)`` from a fixed-bandwidth pilot.
    adaptive_alpha : float, default 0.5
        Abramson's sensitivity exponent.
    adaptive_lam_max : float, default 4.0
        ``lam_I`` is clipped to ``[1/adaptive_lam_max, adaptive_lam_max]``: bounds the dynamic range
        of the kernels (and, on the grid path, the number of bandwidth classes and the padding),
        so isolated tail trajectories get at most 4 times the global bandwidth.
    cutoff : float, default 6.0
        Tree path: pairs beyond ``cutoff`` (scaled) bandwidths are dropped (``exp(-18) = 1.5e-8``
        of the kernel peak).
    grid_spacing : float, default 0.4
        Grid path: spacing in units of the smallest bandwidth in use (``<= 0.5``). The grid error
        falls like ``spacing^4``: relative to the all-pairs sums about 1e-3 at 0.4, 6e-4 at 1/3,
        4e-3 at 0.5 (bulk, 1-3 D, docs/theory/fields.md); in 3-D the cost grows like
        ``spacing^-3``.
    grid_order : int, default 4
        Grid path: B-spline order of deposition/interpolation (2 = cloud-in-cell, 4 = cubic).
    grid_pad : float, default 6.0
        Grid path: periodic padding in (largest) bandwidths; the periodic images of a kernel are
        ``exp(-18) = 1.5e-8`` of its peak, far below the grid tolerance.
    class_ratio : float, default 2**(1/16)
        Grid path with ``adaptive``: ratio of neighbouring bandwidth classes. The grid-vs-pairs
        difference of the adaptive estimates grows like ``(class_ratio - 1)^2``: about 4e-3
        (relative, second derivatives of rho) at 2^(1/16), 2.4e-2 at 2^(1/8).
    pairs_below : int or None, default None
        ``"auto"`` uses all pairs when ``N < pairs_below``. None: the crossover measured on
        the development machine (2-core EPYC, one thread) between the all-pairs cost and the
        grid's fixed (FFT) cost: 128 (D = 1), 400 (D = 2), 4000 (D >= 3).
    max_grid_cells : int, default 2**24 (the grid path works on batches of fields, so its memory is
        bounded by the cells times a few batches, ~1 GB at the default)
        ``"auto"`` does not use the grid above this many cells (32 MiB per grid field).
    tree_max_fraction : float, default 0.3
        ``"auto"`` prefers all pairs to the tree when a probe finds more than this fraction of the
        swarm within the cutoff of a trajectory (measured: building the lists costs about as much
        per neighbour pair as the kernel work of all pairs at this fraction).
    workers : int, default 1
        Threads for ``scipy.fft``.
    source_factors : (N,) array or None
        Given per-source bandwidth factors (source ``s`` uses ``h * source_factors[s]`` for the
        density and the regression alike), e.g. the per-mode widths of
        :mod:`mqcd.fields.density`; overrides ``adaptive``.
    """

    method: str = "auto"
    density_deriv: int = 1
    density_scale: Union[float, str] = 1.0
    regression_deriv: int = 2
    regression_scale: Union[float, str] = 1.0
    spread: str = "fisher"
    spread_iterations: int = 2
    spread_sample: int = 20000
    spread_sample_pairs: int = 2000
    h_density: Optional[np.ndarray] = None
    h_regression: Optional[np.ndarray] = None
    order: int = 2
    ridge: float = 0.1
    adaptive: bool = False
    adaptive_alpha: float = 0.5
    adaptive_lam_max: float = 4.0
    cutoff: float = 6.0
    grid_spacing: float = 0.4
    grid_order: int = 4
    grid_pad: float = 6.0
    class_ratio: float = 2.0 ** 0.0625
    pairs_below: Optional[int] = None
    max_grid_cells: int = 1 << 24
    tree_max_fraction: float = 0.3
    workers: int = 1
    source_factors: Optional[np.ndarray] = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.order not in (1, 2):
            raise ValueError("order must be 1 (local linear) or 2 (local quadratic)")
        for name in ("density_scale", "regression_scale"):
            v = getattr(self, name)
            if not (v == "cv" or (isinstance(v, (int, float)) and v > 0)):
                raise ValueError(f"{name} must be a positive number or 'cv'")
        for name in ("cutoff", "grid_pad", "adaptive_lam_max", "class_ratio"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.class_ratio <= 1.0:
            raise ValueError("class_ratio must exceed 1")
        if self.ridge < 0:
            raise ValueError("ridge must be >= 0")
        if not 0 < self.grid_spacing <= 0.5:
            raise ValueError("grid_spacing must be in (0, 0.5]")
        if self.grid_order not in (2, 3, 4):
            raise ValueError("grid_order must be 2, 3 or 4")
        if self.spread not in ("fisher", "std", "silverman"):
            raise ValueError("spread must be 'fisher', 'std' or 'silverman'")
        if self.spread_iterations < 1:
            raise ValueError("spread_iterations must be >= 1")
        if self.density_deriv < 0 or self.regression_deriv < 0:
            raise ValueError("density_deriv and regression_deriv must be >= 0")

    def engine(self) -> EngineSettings:
        return EngineSettings(cutoff=float(self.cutoff), grid_spacing=float(self.grid_spacing),
                              grid_order=int(self.grid_order), grid_pad=float(self.grid_pad),
                              class_ratio=float(self.class_ratio), workers=int(self.workers))



# --------------------------------------------------------------------------- Hermitian packing
# Real components of an ns x ns Hermitian matrix, in this order: the ns diagonal entries, then
# Re and Im of the upper triangle (row-major), ns^2 numbers in all.
@njit(cache=True)
def _pack(rho, w, F, col0):
    N, ns, _ = rho.shape
    nu = ns * (ns - 1) // 2
    for i in range(N):
        wi = w[i]
        for a in range(ns):
            F[i, col0 + a] = wi * rho[i, a, a].real
        k = 0
        for a in range(ns):
            for b in range(a + 1, ns):
                z = rho[i, a, b]
                F[i, col0 + ns + k] = wi * z.real
                F[i, col0 + ns + nu + k] = wi * z.imag
                k += 1


@njit(cache=True)
def _unpack(v, ns):
    R = v.shape[0]
    nu = ns * (ns - 1) // 2
    out = np.empty((R, ns, ns), dtype=np.complex128)
    for i in range(R):
        for a in range(ns):
            out[i, a, a] = v[i, a]
        k = 0
        for a in range(ns):
            for b in range(a + 1, ns):
                z = complex(v[i, ns + k], v[i, ns + nu + k])
                out[i, a, b] = z
                out[i, b, a] = z.conjugate()
                k += 1
    return out


def pack_hermitian(rho):
    """``(N, ns, ns)`` complex Hermitian -> ``(N, ns^2)`` real: diagonal, Re upper, Im upper
    (only the upper triangle is read)."""
    rho = np.ascontiguousarray(rho, dtype=np.complex128)
    F = np.empty((rho.shape[0], rho.shape[1] ** 2))
    _pack(rho, np.ones(rho.shape[0]), F, 0)
    return F


def unpack_hermitian(v, ns):
    """Inverse of :func:`pack_hermitian` on the last axis: ``(..., ns^2)`` -> ``(..., ns, ns)``."""
    v = np.asarray(v, dtype=np.float64)
    lead = v.shape[:-1]
    out = _unpack(np.ascontiguousarray(v.reshape(-1, ns * ns)), ns)
    return out.reshape(lead + (ns, ns))


def fisher_spread(x, w, neff, opts: Optional["FieldOptions"] = None, iterations=None, dist=None):
    """Per-dof spread ``s_j = (F_j)^(-1/2)`` from the Fisher information of the swarm density.

    ``F_j = int n (d_j ln n)^2 = int n (-d_j^2 ln n)`` equals ``1/sigma_j^2`` for a Gaussian, so
    the normal-reference rule is unchanged for Gaussian swarms; for a swarm split into separated
    packets it is a (harmonic) mean of the packet widths instead of their separation. Estimated as
    ``F_j = sum_I w_I (-d_j^2 ln n_p(x_I))`` with a pilot kernel density ``n_p`` of bandwidth
    ``h_p`` (second-derivative rule, ``r = 2``); the pilot's own smoothing is removed exactly for
    Gaussian data by ``s_j^2 = 1 / F_j - h_p,j^2``. Starts from the standard deviation and repeats
    ``iterations`` times (the pilot bandwidth follows the current ``s``). If the estimate is not
    positive in some dof (no curvature information, e.g. a nearly uniform swarm) that dof keeps its
    previous value.

    Parameters: x (N, D) positions; w (N,) normalised weights; neff effective count; opts
    (method and numerical settings of the pilot passes); iterations (default
    ``opts.spread_iterations``); dist (:class:`mqcd.fields.distributed.Distributed` or None):
    ``x`` and ``w`` are this rank's rows, the subsample is the same global rows as in a serial
    run, the pilot sums are distributed and every swarm sum is exact (bit-for-bit the serial
    spread).

    Returns ``(s (D,), history list of (D,) arrays)``.
    """
    opts = FieldOptions() if opts is None else opts
    settings = opts.engine()
    iterations = opts.spread_iterations if iterations is None else int(iterations)
    comm = None if dist is None else dist.comm
    N, D = (x.shape if dist is None else (dist.n, x.shape[1]))
    s = spread(x, w, "std", comm)
    hp0 = normal_reference_constant(D, 2) * s * neff ** (-1.0 / (D + 8))
    method0, _ = choose_method(opts.method, N, N, D, x if dist is None else dist, hp0, hp0,
                               settings, opts.pairs_below, opts.max_grid_cells,
                               opts.tree_max_fraction)
    cap = opts.spread_sample if method0 == "grid" else opts.spread_sample_pairs
    if N > cap:
        # the spread is a swarm average: a deterministic 1-in-k subsample is plenty (a stride
        # in 1D, hashed global indices in D > 1: mqcd.fields.distributed.subsample_rows)
        step = -(-N // cap)
        idx = subsample_rows(0, N, step, D) if dist is None else dist.subsample(step, D)
        x = np.ascontiguousarray(x[idx])
        w = w[idx] / exact_sums(w[idx], comm)
        neff = effective_count(w, comm)
        N = len(idx)
        if dist is not None:
            dist = Distributed(comm, x)
            N = dist.n
    hist = [s.copy()]
    ops = multi_indices(D, 2)
    i2 = full_symmetric_index(ops, 2)
    jj = np.array([i2[j, j] for j in range(D)])
    for _ in range(iterations):
        hp = normal_reference_constant(D, 2) * s * neff ** (-1.0 / (D + 8))
        if not np.all(hp > 0):
            break
        method, _ = choose_method(opts.method, N, N, D, x if dist is None else dist, hp, hp,
                                  settings, opts.pairs_below, opts.max_grid_cells,
                                  opts.tree_max_fraction)
        S = kernel_sums(x, x, w[:, None], [Group(ops, 0, 1, hp, "deriv")], method, settings,
                        dist=dist)[0][:, :, 0]
        n = S[:, 0]
        l1 = S[:, 1:1 + D] / n[:, None]
        kappa = exact_sums(w[:, None] * (l1 ** 2 - S[:, jj] / n[:, None]), comm)
        s2 = np.where(kappa > 0, 1.0 / np.where(kappa > 0, kappa, 1.0), 0.0) - hp ** 2
        s = np.where((kappa > 0) & (s2 > 0), np.sqrt(np.maximum(s2, 0.0)), s)
        hist.append(s.copy())
    return s, hist


def swarm_spread(x, w, neff, opts: "FieldOptions", dist=None):
    """Per-dof spread for the bandwidth rules according to ``opts.spread`` (bohr, ``(D,)``);
    ``dist`` as for :func:`fisher_spread` (``"fisher"`` and ``"std"`` only)."""
    if opts.spread == "fisher":
        return fisher_spread(x, w, neff, opts, dist=dist)[0]
    return spread(x, w, opts.spread, None if dist is None else dist.comm)
