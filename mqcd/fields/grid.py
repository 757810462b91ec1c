"""Binned FFT evaluation of Gaussian kernel sums: the ``"grid"`` path (D <= 3).

Every quantity the fields need is a kernel sum ``S(x_t) = sum_s F_s k(x_t - x_s)`` with a kernel
``k`` that is a Gaussian times a polynomial (a derivative of the Gaussian, or the Gaussian times a
monomial ``((x_s - x_t)/h)^a`` for the regression moments), i.e. a convolution evaluated at the
targets. The grid path

1. deposits the source fields ``F`` on a regular grid with centred cardinal B-splines of order ``p``
   (``p = 2``: cloud-in-cell / linear, ``p = 4``: cubic; O(N p^D)),
2. multiplies the discrete Fourier transform by the *analytic* Fourier transform of each kernel,
   divided by the transform of the assignment window twice,
   ``k_hat(k) / (prod_j sinc(k_j dx_j / 2)^p)^2`` (deconvolution of the deposition and of the
   interpolation; ``sinc z = sin z / z``),
3. transforms back (``scipy.fft``, O(G log G)) and interpolates to the targets with the same
   B-spline weights (O(M p^D)).

Because both the deposition and the interpolation windows are divided out, the only errors left
are aliasing (a relative error of order ``(k h dx / (2 pi h))^p`` weighted over the kernel's
spectrum, i.e. it falls like ``(dx / h)^p``), the periodic images of the kernel (suppressed by
padding the grid by ``pad`` bandwidths), and the spectrum beyond the Nyquist frequency (below
``exp(-(pi h / dx)^2 / 2)``, about 1e-9 for ``dx = h/2``). The result is linear in ``F`` and the
effective kernel is symmetric, so the exact identities of kernel sums (antisymmetry of derivative
kernels, reproduction of constants by the regression) hold to round-off on the grid too.

Adaptive (per-source) bandwidths ``h * lam_s`` are handled with a ladder of bandwidth classes
``h * c_k``: each source is split between the two classes bracketing ``lam_s`` with weights that
reproduce its kernel variance exactly (``(1 - tau) c_k^2 + tau c_{k+1}^2 = lam_s^2``); each class
is convolved with its own kernel.
"""
from __future__ import annotations

import math
import os

import numpy as np
import scipy.fft as sfft
from numba import njit, prange

from .workspace import FRESH


# --------------------------------------------------------------------------- B-spline stencils
@njit(cache=True, inline="always")
def _stencil(u, p, w):
    """Base node and weights of the centred cardinal B-spline of order ``p`` at grid coordinate
    ``u``; fills ``w[:p]`` and returns the index of the first node."""
    if p == 2:
        i0 = math.floor(u)
        t = u - i0
        w[0] = 1.0 - t
        w[1] = t
        return i0
    elif p == 3:
        i0 = math.floor(u + 0.5)
        d = u - i0
        w[0] = 0.5 * (0.5 - d) ** 2
        w[1] = 0.75 - d * d
        w[2] = 0.5 * (0.5 + d) ** 2
        return i0 - 1
    else:
        i0 = math.floor(u)
        t = u - i0
        s = 1.0 - t
        w[0] = s * s * s / 6.0
        w[1] = (3.0 * t * t * t - 6.0 * t * t + 4.0) / 6.0
        w[2] = (-3.0 * t * t * t + 3.0 * t * t + 3.0 * t + 1.0) / 6.0
        w[3] = t * t * t / 6.0
        return i0 - 1


@njit(cache=True)
def _stencil_table(D, p):
    ncomb = p ** D
    off = np.empty((ncomb, D), dtype=np.int64)
    for c in range(ncomb):
        r = c
        for j in range(D - 1, -1, -1):
            off[c, j] = r % p
            r //= p
    return off


@njit(cache=True)
def _strides(shape):
    D = shape.shape[0]
    stride = np.empty(D, dtype=np.int64)
    acc = 1
    for j in range(D - 1, -1, -1):
        stride[j] = acc
        acc *= shape[j]
    return stride, acc


@njit(cache=True, inline="always")
def _add_fixed(acc, c, flat, f, d, sc):
    """Add ``d * sc`` (|d * sc| < 2**62) to the two-limb fixed-point cell ``acc[:, c, flat, f]``:
    limb 0 the integer part, limb 1 the first 32 fraction bits (both truncated towards zero;
    ``u - int(u)`` is exact)."""
    u = d * sc
    hi = np.int64(u)
    acc[0, c, flat, f] += hi
    acc[1, c, flat, f] += np.int64((u - hi) * 4294967296.0)


@njit(cache=True)
def _deposit(xs, F, lo, dx, shape, p, cls, tau, sc, acc):
    """Deposit ``F`` (N, m) on ``ncls`` grids of ``shape`` (flattened, row-major) in fixed point.

    Source ``s`` goes to class ``cls[s]`` with weight ``1 - tau[s]`` and to ``cls[s] + 1`` with
    weight ``tau[s]``; each contribution ``g F[s, f]`` is added as the integer pair of
    :func:`_add_fixed` with the column scale ``sc[f]`` into ``acc`` of shape
    ``(2, ncls, prod(shape), m)`` (int64, zeroed here). Integer addition is associative, so the
    cell sums do not depend on the order of the sources or on how they are split over ranks.
    """
    N, D = xs.shape
    m = F.shape[1]
    off = _stencil_table(D, p)
    stride, G = _strides(shape)
    ncomb = off.shape[0]
    acc[:] = 0
    w = np.empty((D, 4))
    base = np.empty(D, dtype=np.int64)
    wt = np.empty(4)
    for s in range(N):
        for j in range(D):
            base[j] = _stencil((xs[s, j] - lo[j]) / dx[j], p, wt)
            for k in range(p):
                w[j, k] = wt[k]
        c0 = cls[s]
        ta = tau[s]
        for c in range(ncomb):
            g = 1.0
            flat = 0
            for j in range(D):
                g *= w[j, off[c, j]]
                flat += (base[j] + off[c, j]) * stride[j]
            g0 = g * (1.0 - ta)
            for f in range(m):
                _add_fixed(acc, c0, flat, f, g0 * F[s, f], sc[f])
            if ta != 0.0:
                g1 = g * ta
                for f in range(m):
                    _add_fixed(acc, c0 + 1, flat, f, g1 * F[s, f], sc[f])


@njit(cache=True)
def _deposit1(xs, F, lo, dx, p, cls, tau, sc, acc):
    """One-dimensional specialisation of :func:`_deposit` (same result)."""
    N = xs.shape[0]
    m = F.shape[1]
    acc[:] = 0
    wt = np.empty(4)
    l0 = lo[0]
    idx = 1.0 / dx[0]
    for s in range(N):
        i0 = _stencil((xs[s, 0] - l0) * idx, p, wt)
        c0 = cls[s]
        ta = tau[s]
        for c in range(p):
            g0 = wt[c] * (1.0 - ta)
            for f in range(m):
                _add_fixed(acc, c0, i0 + c, f, g0 * F[s, f], sc[f])
        if ta != 0.0:
            for c in range(p):
                g1 = wt[c] * ta
                for f in range(m):
                    _add_fixed(acc, c0 + 1, i0 + c, f, g1 * F[s, f], sc[f])


def reduction_by_gather(n_sources, D, m, C, G):
    """How the ranks combine their deposits: True to all-gather the sources (``n_sources (D + m
    + 2)`` words) rather than Allreduce the two-limb grids (``2 C G m`` words, moved twice by a
    ring Allreduce). Environment ``MQCD_GRID_REDUCTION = "gather" | "allreduce"`` forces one
    (tests, benchmarks). Both give the same integer cells."""
    force = os.environ.get("MQCD_GRID_REDUCTION", "auto")
    if force in ("gather", "allreduce"):
        return force == "gather"
    return n_sources * (D + m + 2) < 4 * C * G * m


def split_transforms(N, D, G, n_out):
    """Under MPI, whether the ranks share out the transforms (each rank transforms its run of
    output columns, :func:`transform_owners`, and interpolates them at the whole swarm's
    positions, then one all-to-all returns each rank its rows) instead of every rank
    transforming all columns. True where the
    replicated transforms (``~5 n_out G log2 G`` ns) would cost more than moving the positions
    and the interpolated values (``~8 N (D + n_out)`` bytes at ~1 byte/ns): the 3D grids, not
    the 1D ones. Environment ``MQCD_GRID_TRANSFORMS = "replicated" | "distributed"`` forces one
    (tests, benchmarks); both give the same bits."""
    force = os.environ.get("MQCD_GRID_TRANSFORMS", "auto")
    if force in ("replicated", "distributed"):
        return force == "distributed"
    return 5.0 * n_out * G * math.log2(max(G, 2)) > 8.0 * N * (D + n_out)


def transform_owners(col_f, P):
    """Rank owning each output column when the ranks share out the transforms
    (:func:`split_transforms`): ``(n_out,)`` int64. The columns, ordered by their source field,
    are cut into ``P`` runs of equal length: every rank inverse-transforms the same number of
    columns and forward-transforms only the fields of its run (a field whose columns straddle a
    cut is transformed by both ranks). Deterministic: every rank computes the same owners."""
    n_out = col_f.shape[0]
    owner = np.empty(n_out, dtype=np.int64)
    owner[np.argsort(col_f, kind="stable")] = (np.arange(n_out) * P) // max(n_out, 1)
    return owner


def fixed_scales(F, n_sources, comm=None):
    """Per-column fixed-point scales ``2**(62 - E_f)`` with ``2**E_f > n_sources * max|F[:, f]|``
    (the maximum over all ranks): no cell sum of the deposit can reach 2**62 in magnitude."""
    amax = np.abs(F).max(axis=0) if F.shape[0] else np.zeros(F.shape[1])
    if comm is not None:
        amax = comm.max(amax)
    bound = amax * float(n_sources)
    e = np.where(bound > 0, np.frexp(np.where(bound > 0, bound, 1.0))[1] + 1, 0)
    return np.ldexp(1.0, 62 - e.astype(np.int64)), e


def fixed_to_float(acc, e):
    """float64 cell values of the two-limb fixed-point sums ``acc`` (2, C, G, m) (limbs summed
    over ranks; the carries of the fraction limb, of either sign, are propagated here) with
    column exponents ``e`` (m,)."""
    hi = acc[0].copy()
    lo = acc[1]
    hi += lo >> 32
    frac = (lo & 0xFFFFFFFF).astype(np.float64) * 2.0 ** -32
    return (hi.astype(np.float64) + frac) * np.ldexp(1.0, e.astype(np.int64) - 62)


@njit(parallel=True, cache=True)
def _interpolate(xt, R, lo, dx, shape, p, out, col0, chunk, perm):
    """``out[t, col0 + c] = sum_nodes B(x_t) R[node, c]`` for ``R`` of shape ``(G, nc)``.

    Targets are visited in the order ``perm`` (sorted by grid cell, so that neighbouring targets
    reuse the same cache lines of ``R``)."""
    M, D = xt.shape
    nc = R.shape[1]
    stride, G = _strides(shape)
    off = _stencil_table(D, p)
    ncomb = off.shape[0]
    nchunk = (M + chunk - 1) // chunk
    for ch in prange(nchunk):
        w = np.empty((D, 4))
        base = np.empty(D, dtype=np.int64)
        wt = np.empty(4)
        a = np.empty(nc)
        for it in range(ch * chunk, min(M, (ch + 1) * chunk)):
            t = perm[it]
            for q in range(nc):
                a[q] = 0.0
            for j in range(D):
                base[j] = _stencil((xt[t, j] - lo[j]) / dx[j], p, wt)
                for k in range(p):
                    w[j, k] = wt[k]
            for c in range(ncomb):
                g = 1.0
                flat = 0
                for j in range(D):
                    g *= w[j, off[c, j]]
                    flat += (base[j] + off[c, j]) * stride[j]
                for q in range(nc):
                    a[q] += g * R[flat, q]
            for q in range(nc):
                out[t, col0 + q] = a[q]


def _cell_order(x, lo, dx, shape):
    """Permutation sorting points by their (row-major) grid cell."""
    idx = np.zeros(x.shape[0], dtype=np.int64)
    for j in range(x.shape[1]):
        idx = idx * int(shape[j]) + np.floor((x[:, j] - lo[j]) / dx[j]).astype(np.int64)
    return np.argsort(idx, kind="stable")


@njit(parallel=True, cache=True)
def _interpolate1(xt, R, lo, dx, p, out, col0, chunk):
    """One-dimensional specialisation of :func:`_interpolate` (same result)."""
    M = xt.shape[0]
    nc = R.shape[0]
    l0 = lo[0]
    idx = 1.0 / dx[0]
    nchunk = (M + chunk - 1) // chunk
    for ch in prange(nchunk):
        wt = np.empty(4)
        for t in range(ch * chunk, min(M, (ch + 1) * chunk)):
            i0 = _stencil((xt[t, 0] - l0) * idx, p, wt)
            if p == 4:
                w0, w1, w2, w3 = wt[0], wt[1], wt[2], wt[3]
                for q in range(nc):
                    out[t, col0 + q] = (w0 * R[q, i0] + w1 * R[q, i0 + 1] + w2 * R[q, i0 + 2]
                                        + w3 * R[q, i0 + 3])
            else:
                for q in range(nc):
                    a = 0.0
                    for c in range(p):
                        a += wt[c] * R[q, i0 + c]
                    out[t, col0 + q] = a


@njit(cache=True)
def _spec_mul(A, f1, f2, f3, out):
    """``out[i, j, k] += sum_c A[c, i, j, k] f1[c, i] f2[c, j] f3[c, k]``: separable kernel
    transforms of all bandwidth classes applied in one pass."""
    C, n1, n2, n3 = A.shape
    for c in range(C):
        for i in range(n1):
            a = f1[c, i]
            for j in range(n2):
                b = a * f2[c, j]
                for k in range(n3):
                    out[i, j, k] += A[c, i, j, k] * (b * f3[c, k])


# --------------------------------------------------------------------------- Fourier factors
def _hermite(p, s):
    """Probabilists' Hermite polynomial He_p(s) (p <= 4)."""
    if p == 0:
        return np.ones_like(s)
    if p == 1:
        return s
    if p == 2:
        return s * s - 1.0
    if p == 3:
        return s * s * s - 3.0 * s
    if p == 4:
        s2 = s * s
        return s2 * s2 - 6.0 * s2 + 3.0
    raise ValueError("power > 4")


def _factor_1d(k, h, c, kind, power):
    """Analytic Fourier transform of the 1-D factor of an op (convention ``int f(y) e^{-iky} dy``).

    kind 0 (derivative): ``(i k)^p exp(-(k h c)^2 / 2)``;
    kind 1 (moment):     ``c^p i^p He_p(k h c) exp(-(k h c)^2 / 2)`` (the transform of
    ``K_{hc}(y) (-y / h)^p``).
    """
    s = k * h * c
    g = np.exp(-0.5 * s * s)
    if kind == 0:
        return (1j * k) ** power * g
    return (c ** power) * (1j ** power) * _hermite(power, s) * g


def grid_geometry(points_lo, points_hi, h_min, h_max, spacing, pad, order):
    """Grid spacing, lower corner and shape covering ``[lo, hi]`` per dof.

    ``dx = spacing * h_min``; the periodic length is at least the data span plus ``pad * h_max``
    (so periodic images of a kernel are ``exp(-pad^2/2)`` down) plus the stencil margins; each
    axis length is rounded up to a fast FFT size.
    """
    dx = spacing * h_min
    margin = (order / 2.0 + 1.0) * dx
    lo = points_lo - margin
    span = (points_hi + margin) - lo
    need = span + pad * h_max
    shape = np.array([sfft.next_fast_len(int(math.ceil(need[j] / dx[j])) + 1, real=True)
                      for j in range(dx.shape[0])], dtype=np.int64)
    return dx, lo, shape


def grid_cells(x, h_min, h_max, spacing, pad, order):
    """Number of grid cells the grid path would use (for the method choice)."""
    _, _, shape = grid_geometry(x.min(axis=0), x.max(axis=0), h_min, h_max, spacing, pad, order)
    return int(np.prod(shape))


def grid_sums(xt, xs, F, ops, kinds, hs, f0, nf, o0, n_out, classes, cls, tau, *,
              spacing=0.4, order=4, pad=6.0, max_batch_doubles=1 << 24, workers=1,
              out=None, ws=FRESH, dist=None):
    """Kernel sums on a grid (see module docstring).

    Parameters
    ----------
    xt : (M, D) targets; xs : (N, D) sources (bohr), D <= 3.
    F : (N, m) source fields (deposited once and shared by all ops).
    ops : (n_ops, D) multi-indices; kinds : (n_ops,) 0 derivative / 1 moment;
    hs : (n_ops, D) global bandwidth of each op (bohr).
        Op ``o`` applies to fields ``f0[o] : f0[o] + nf[o]`` and writes output columns
        ``o0[o] : o0[o] + nf[o]``.
    classes : (C,) bandwidth factors of the classes (``[1.0]`` without adaptivity).
    cls, tau : (N,) int64 / float64 class split of each source.
    spacing : grid spacing in units of the smallest bandwidth ``min(hs) * min(classes)`` (<= 0.5).
    order : B-spline order (2, 3 or 4).
    pad : periodic padding in units of the largest bandwidth.
    max_batch_doubles : memory bound (doubles) for one batch of deposited fields and for one
        batch of inverse transforms.
    workers : ``scipy.fft`` worker threads.
    out : optional ``(M, n_out)`` output array; ws : workspace for the deposition grid.
    dist : :class:`mqcd.fields.distributed.Distributed` or None. With it, ``xs``/``F`` are this
        rank's sources only: each rank deposits its own, the fixed-point grids are summed over
        ranks (one integer Allreduce per batch, or the sources all-gathered,
        :func:`reduction_by_gather`) and every rank transforms the whole grid and interpolates
        at its own targets ``xt``; or, where the transforms dominate (:func:`split_transforms`,
        3D), each rank transforms only the output columns it owns (:func:`transform_owners`),
        interpolates them at every rank's targets and one all-to-all returns each rank its rows.
        The grid covers the whole swarm (``dist.lo``, ``dist.hi``). The deposit is exact integer
        arithmetic and every (target, column) value is computed by the same operations whichever
        rank computes it, so the result is bit-for-bit the same for any number of ranks (and
        equal to ``dist=None`` on the whole swarm).

    Returns ``(M, n_out)`` float64.
    """
    if not 0.0 < spacing <= 0.5:
        raise ValueError("grid spacing must be in (0, 0.5] bandwidths")
    if order not in (2, 3, 4):
        raise ValueError("grid order must be 2, 3 or 4")
    D = xs.shape[1]
    classes = np.asarray(classes, dtype=np.float64)
    C = classes.shape[0]
    if dist is None:
        lo_pts = np.minimum(xs.min(axis=0), xt.min(axis=0))
        hi_pts = np.maximum(xs.max(axis=0), xt.max(axis=0))
        comm, n_src = None, xs.shape[0]
    else:
        lo_pts, hi_pts, comm, n_src = dist.lo, dist.hi, dist.comm, dist.n
    dx, lo, shape = grid_geometry(lo_pts, hi_pts, hs.min(axis=0) * classes.min(),
                                  hs.max(axis=0) * classes.max(), spacing, pad, order)
    m = F.shape[1]
    shp = tuple(int(v) for v in shape)
    Greal = int(np.prod(shape))
    tcomm = (comm if comm is not None and comm.size > 1
             and split_transforms(n_src, D, Greal, n_out) else None)
    if comm is not None and comm.size > 1 and reduction_by_gather(n_src, D, m, C, Greal):
        # fewer bytes to all-gather the sources than to Allreduce the fixed-point grids: every
        # rank deposits the whole swarm (the same integer cells, so the same result)
        xs, F = comm.allgather_rows(np.ascontiguousarray(xs)), comm.allgather_rows(F)
        cls, tau = comm.allgather_rows(np.ascontiguousarray(cls)), comm.allgather_rows(tau)
        comm = None
    kvec, deconv = [], []
    for j in range(D):
        if j == D - 1:
            k = 2.0 * math.pi * sfft.rfftfreq(shp[j], d=dx[j])
        else:
            k = 2.0 * math.pi * sfft.fftfreq(shp[j], d=dx[j])
        z = 0.5 * k * dx[j]
        safe = np.where(z == 0.0, 1.0, z)
        sinc = np.where(z == 0.0, 1.0, np.sin(safe) / safe)
        kvec.append(k)
        deconv.append(1.0 / (dx[j] * sinc ** (2 * order)))
    one = np.ones((C, 1), dtype=np.complex128)
    fac_cache = {}

    def factor(j, o):
        """(C, K_j) transform factors of op ``o`` along dof ``j`` for all classes."""
        if j >= D:
            return one
        key = (j, float(hs[o, j]), int(kinds[o]), int(ops[o, j]))
        if key not in fac_cache:
            fac_cache[key] = np.ascontiguousarray(
                _factor_1d(kvec[j][None, :], hs[o, j], classes[:, None], int(kinds[o]), int(ops[o, j]))
                * deconv[j][None, :], dtype=np.complex128)
        return fac_cache[key]

    col_op = np.empty(n_out, dtype=np.int64)
    col_f = np.empty(n_out, dtype=np.int64)
    for o in range(ops.shape[0]):
        col_op[o0[o]:o0[o] + nf[o]] = o
        col_f[o0[o]:o0[o] + nf[o]] = np.arange(f0[o], f0[o] + nf[o])
    if out is None:
        out = np.empty((xt.shape[0], n_out))
    xt_c = np.ascontiguousarray(xt, dtype=np.float64)
    dest, col_of = out, np.arange(n_out)
    if tcomm is not None:
        # this rank transforms the output columns it owns, at every rank's targets
        owner = transform_owners(col_f, tcomm.size)
        counts = tcomm.allgather_rows(np.array([xt_c.shape[0]], np.int64))
        xt_c = tcomm.allgather_rows(xt_c)
        col_of = np.cumsum(owner == tcomm.rank) - 1
        dest = np.empty((xt_c.shape[0], int(np.sum(owner == tcomm.rank))))
    chunk = 256
    perm = None
    # memory bound: source fields are deposited and transformed max_batch_doubles / (C G) at a
    # time, output columns inverse-transformed max_batch_doubles / G at a time
    mb = int(max(1, min(m, max_batch_doubles // max(1, C * Greal))))
    nb = int(max(1, min(n_out, max_batch_doubles // max(1, Greal))))
    for fa in range(0, m, mb):
        fb = min(m, fa + mb)
        cols = np.flatnonzero((col_f >= fa) & (col_f < fb))
        if tcomm is not None:
            cols = cols[owner[cols] == tcomm.rank]
        if cols.size == 0 and tcomm is None:
            continue
        acc = ws.array("grid_deposit", (2, C, Greal, fb - fa), np.int64)
        Fc = F if (fa == 0 and fb == m) else np.ascontiguousarray(F[:, fa:fb])
        sc, e = fixed_scales(Fc, n_src, comm)
        if D == 1:
            _deposit1(xs, Fc, lo, dx, order, cls, tau, sc, acc)
        else:
            _deposit(xs, Fc, lo, dx, shape, order, cls, tau, sc, acc)
        if comm is not None and comm.size > 1:
            acc = comm.sum(acc.view(np.uint64)).view(np.int64)   # modular: exact, any order
        if cols.size == 0:                  # none of this batch's columns is this rank's
            continue
        # conversion and forward transforms of the fields this batch's (this rank's) columns
        # need (integer cells: a field's floats do not depend on which others are converted)
        need_f = np.unique(col_f[cols])
        slot = np.full(fb - fa, -1, dtype=np.int64)
        slot[need_f - fa] = np.arange(need_f.size)
        if need_f.size < fb - fa:
            acc, e = acc[..., need_f - fa], e[need_f - fa]
        grid = fixed_to_float(acc, e)
        grid = np.moveaxis(grid.reshape((C,) + shp + (need_f.size,)), -1, 1)   # (C, m', G...)
        Fh = sfft.rfftn(grid, axes=tuple(range(2, 2 + D)), workers=workers)    # (C, m', K...)
        del grid
        hshape = Fh.shape[2:]
        sh3 = tuple(hshape) + (1,) * (3 - D)   # spectra as 3-D arrays for the fused multiply
        Fh3 = np.ascontiguousarray(np.moveaxis(Fh.reshape((C, need_f.size) + sh3), 1, 0))
        del Fh
        for a in range(0, cols.size, nb):
            batch = cols[a:a + nb]
            Rh = np.zeros((batch.size,) + sh3, dtype=np.complex128)
            for i, q in enumerate(batch):
                o = int(col_op[q])
                _spec_mul(Fh3[slot[col_f[q] - fa]], factor(0, o), factor(1, o), factor(2, o),
                          Rh[i])
            R = sfft.irfftn(Rh.reshape((batch.size,) + tuple(hshape)), s=shp,
                            axes=tuple(range(1, 1 + D)), workers=workers)
            R = R.reshape(batch.size, Greal)
            lcols = col_of[batch]
            contiguous = lcols[-1] - lcols[0] == batch.size - 1
            dst = dest if contiguous else np.empty((xt_c.shape[0], batch.size))
            c0 = int(lcols[0]) if contiguous else 0
            if D == 1:
                _interpolate1(xt_c, R, lo, dx, order, dst, c0, chunk)
            else:
                if perm is None:
                    perm = _cell_order(xt_c, lo, dx, shape)
                _interpolate(xt_c, np.ascontiguousarray(R.T), lo, dx, shape, order, dst, c0, chunk,
                             perm)
            if not contiguous:
                dest[:, lcols] = dst
    if tcomm is not None:                   # each rank its rows of every column
        P, me = tcomm.size, tcomm.rank
        row0 = np.concatenate([[0], np.cumsum(counts)])
        ncol = [int(np.sum(owner == r)) for r in range(P)]
        got = tcomm.alltoall_blocks([dest[row0[q]:row0[q + 1]] for q in range(P)],
                                    [int(counts[me]) * ncol[r] for r in range(P)])
        for r in range(P):
            out[:, owner == r] = got[r].reshape(int(counts[me]), ncol[r])
    return out
