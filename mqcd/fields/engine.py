"""One entry point for Gaussian kernel sums over the swarm, with three interchangeable paths.

``kernel_sums`` evaluates groups of ops (derivatives of the Gaussian, or Gaussian-weighted
moments) applied to source fields, at target points, by

* ``"pairs"``: all pairs, exact (the reference; O(N M));
* ``"tree"``: ``scipy.spatial.cKDTree`` neighbour lists within ``cutoff`` bandwidths (any D);
* ``"grid"``: B-spline deposition, FFT convolution with the analytic kernel transforms,
  interpolation back (D <= 3; O(N + G log G)); see :mod:`mqcd.fields.grid`.

The method choice for ``"auto"`` lives in :func:`choose_method`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .bandwidth import class_ladder
from .distributed import Distributed
from .grid import grid_cells, grid_sums
from .kernels import neighbour_fraction, neighbour_lists, pair_sums
from .workspace import FRESH

METHODS = ("auto", "grid", "tree", "pairs")

#: swarm size below which all pairs beat the grid's fixed cost (measured with one thread on the
#: development machine, need = density + rho2, two states; tools/bench_fields.py)
PAIRS_BELOW = {1: 128, 2: 400, 3: 4000}


@dataclass(frozen=True)
class EngineSettings:
    """Numerical settings of the kernel-sum paths (documented in :class:`FieldOptions`)."""

    cutoff: float = 6.0
    grid_spacing: float = 0.4
    grid_order: int = 4
    grid_pad: float = 6.0
    class_ratio: float = 2.0 ** 0.0625
    workers: int = 1


class Group:
    """A group of ops sharing one kernel.

    Parameters
    ----------
    ops : (n_ops, D) multi-indices.
    start, count : the ops apply to the source-field columns ``start : start + count``.
    h : (D,) bandwidth (bohr) of the Gaussian.
    kind : ``"deriv"`` (``sum_s F_s d^a K_h(x_t - x_s)``, units of ``F`` / bohr^(D + |a|)) or
        ``"moment"`` (``sum_s F_s K_h(x_t - x_s) ((x_s - x_t)/h)^a``, units of ``F`` / bohr^D).
    """

    def __init__(self, ops, start, count, h, kind):
        self.ops = np.asarray(ops, dtype=np.int64)
        self.start = int(start)
        self.count = int(count)
        self.h = np.asarray(h, dtype=np.float64)
        if kind not in ("deriv", "moment"):
            raise ValueError("kind must be 'deriv' or 'moment'")
        self.kind = kind


def _flatten(groups):
    ops = np.concatenate([g.ops for g in groups], axis=0)
    kinds, hs, f0, nf, o0 = [], [], [], [], []
    col = 0
    for g in groups:
        for _ in range(g.ops.shape[0]):
            kinds.append(0 if g.kind == "deriv" else 1)
            hs.append(g.h)
            f0.append(g.start)
            nf.append(g.count)
            o0.append(col)
            col += g.count
    return (ops, np.array(kinds, dtype=np.int64), np.array(hs, dtype=np.float64).reshape(len(kinds), -1),
            np.array(f0, dtype=np.int64), np.array(nf, dtype=np.int64), np.array(o0, dtype=np.int64), col)


def kernel_sums(xt, xs, F, groups, method, settings: EngineSettings, lam=None, nbr=None, ws=FRESH,
                dist=None, nbr_h=None):
    """Kernel sums per group: list of ``(M, n_ops_g, count_g)`` views (see :func:`kernel_sums_flat`)."""
    flat, offsets = kernel_sums_flat(xt, xs, F, groups, method, settings, lam=lam, nbr=nbr, ws=ws,
                                     dist=dist, nbr_h=nbr_h)
    return [flat[:, o:o + g.ops.shape[0] * g.count].reshape(flat.shape[0], g.ops.shape[0], g.count)
            for g, o in zip(groups, offsets)]


def kernel_sums_flat(xt, xs, F, groups, method, settings: EngineSettings, lam=None, nbr=None,
                     ws=FRESH, dist=None, nbr_h=None):
    """Kernel sums for several op groups (see :class:`Group`), at the targets.

    Parameters
    ----------
    xt : (M, D) target positions; xs : (N, D) source positions (bohr).
    F : (N, m) source fields (already multiplied by the trajectory weights).
    groups : list of :class:`Group`.
    method : ``"grid"``, ``"tree"`` or ``"pairs"``.
    settings : :class:`EngineSettings`.
    lam : (N,) per-source bandwidth factors (adaptive kernels: source ``s`` uses ``h * lam_s``;
        moments stay in units of ``h``) or None.
    nbr : precomputed CSR neighbour lists for the tree path; they must contain every pair within
        ``cutoff * max(lam)`` bandwidths for every group's ``h`` (e.g. built with the elementwise
        largest ``h``). Not used under MPI (the tree path then deals the targets out itself).
    nbr_h : (D,) bandwidth the tree path builds its neighbour lists with when ``nbr`` is None
        (radius ``cutoff * max(lam)`` in units of it; default the elementwise largest group
        ``h``). Give the ``h`` a serial caller built its ``nbr`` with, so that the lists, and so
        the sums' bits, are the same under MPI.
    ws : :class:`~mqcd.fields.workspace.FieldWorkspace` for the output and grid buffers.
    dist : :class:`mqcd.fields.distributed.Distributed` or None: ``xs``, ``F`` and ``lam`` are
        this rank's sources and ``xt`` its targets; the sums run over the sources of all ranks
        (grid path: fixed-point grids summed over ranks; pair path: the source fields are
        all-gathered; tree path: sources and targets are all-gathered and the targets dealt to
        the ranks in order of position, :func:`balanced_targets`, so that every rank has the same
        mix of dense and sparse regions and about the same number of neighbour pairs, and one
        all-to-all returns the rows to their owners). Bit-for-bit the serial sums.

    Returns ``(flat, offsets)``: ``flat`` is ``(M, n_cols)``; group ``g`` occupies the columns
    ``offsets[g] : offsets[g] + n_ops_g * count_g`` laid out as ``(n_ops_g, count_g)``.

    The grid path deposits ``F`` once for all groups; the pair paths run one pass per distinct
    kernel (``h``, kind).
    """
    xt = np.ascontiguousarray(xt, dtype=np.float64)
    xs = np.ascontiguousarray(xs, dtype=np.float64)
    F = np.ascontiguousarray(F, dtype=np.float64)
    if dist is not None and method == "tree" and dist.comm.size > 1:
        return _tree_balanced(xt, F, groups, settings, lam, ws, dist, nbr_h)
    if dist is not None and method != "grid":
        F, lam = dist.gather(F, lam)
        xs, dist = np.ascontiguousarray(dist.x_all), None
    N = xs.shape[0]
    lam_arr = np.ones(N) if lam is None else np.asarray(lam, dtype=np.float64)
    sizes = [g.ops.shape[0] * g.count for g in groups]
    offsets = [int(v) for v in np.cumsum([0] + sizes)[:-1]]
    full = ws.array("kernel_sums", (xt.shape[0], int(sum(sizes))))
    if method == "grid":
        if xs.shape[1] > 3:
            raise ValueError("the grid path supports D <= 3")
        ops, kinds, hs, f0, nf, o0, n_out = _flatten(groups)
        if lam is None:
            classes, cls, tau = np.array([1.0]), np.zeros(N, dtype=np.int64), np.zeros(N)
        else:
            span = None
            if dist is not None:
                b = dist.comm.max(np.array([-lam_arr.min(initial=np.inf),
                                            lam_arr.max(initial=-np.inf)]))
                span = (-b[0], b[1])
            classes, cls, tau = class_ladder(lam_arr, settings.class_ratio, span=span)
        grid_sums(xt, xs, F, ops, kinds, hs, f0, nf, o0, n_out, classes, cls, tau,
                  spacing=settings.grid_spacing, order=settings.grid_order, pad=settings.grid_pad,
                  workers=settings.workers, out=full, ws=ws, dist=dist)
        return full, offsets
    if method not in ("pairs", "tree"):
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    if method == "tree" and nbr is None:
        hbig = (np.max(np.stack([g.h for g in groups]), axis=0) if nbr_h is None
                else np.asarray(nbr_h, dtype=np.float64))
        nbr = neighbour_lists(xt, xs, hbig, settings.cutoff * float(lam_arr.max()))
    # one pair pass per distinct kernel
    passes = {}
    for gi, g in enumerate(groups):
        passes.setdefault((g.kind, tuple(g.h.tolist())), []).append(gi)
    for (kind, _), members in passes.items():
        sub = [groups[i] for i in members]
        ops, _, _, f0, nf, o0, n_out = _flatten(sub)
        k = 0 if kind == "deriv" else 1
        cut = settings.cutoff if method == "tree" else math.inf
        flat = pair_sums(xt, xs, F, sub[0].h, lam_arr, k, ops, f0, nf, o0, n_out, cutoff=cut,
                         nbr=nbr if method == "tree" else None)
        col = 0
        for i in members:
            full[:, offsets[i]:offsets[i] + sizes[i]] = flat[:, col:col + sizes[i]]
            col += sizes[i]
    return full, offsets


TREE_MAX_PAIRS = 5e7
"""Largest number of neighbour pairs the tree path may hold (~16 bytes each: 0.8 GB)."""


SLAB_TARGET_COST = 16.0
"""Work of one target of the tree path in neighbour pairs, besides its pairs (its list
building and output row), for :func:`slab_partition`."""


SLAB_PROBES = 4096
"""Targets (D > 1) and sources (x 16) whose neighbour counts estimate the tree path's work."""


def slab_partition(xt, xs, h, radius, P):
    """Deal the targets ``xt`` (M, D) to ``P`` ranks as contiguous slabs of the leading
    coordinate with equal estimated work, and say which sources ``xs`` (N, D) each slab needs.

    The work of a target is its number of neighbours (sources within ``radius`` in units of
    ``h`` (D,), the tree path's lists) plus :data:`SLAB_TARGET_COST`. In 1D the count is exact
    (two sorted searches). In D > 1 it is estimated on a deterministic subsample: every m-th
    target in the sorted order (:data:`SLAB_PROBES` of them) counts its neighbours among every
    m'-th source (``cKDTree``, scaled by m'), interpolated linearly to the targets between
    probes. The targets sorted by the leading coordinate (stable) are cut where the
    cumulative work crosses ``r / P`` of the total. Every rank computes the same partition from
    the same positions. A split swarm (a dense and a sparse packet) stays balanced, and rank
    ``r`` holds only the sources in its slab widened by the kernel support ``radius h_0``: at
    most ``N + 2 (P - 1) max_slab`` sources over all ranks, ``max_slab`` the most sources within
    the support of one target along the leading coordinate.

    Returns ``(targets, sources)``: two lists of ``P`` ascending index arrays (into ``xt`` and
    ``xs``)."""
    xt = np.asarray(xt, dtype=np.float64)
    xs = np.asarray(xs, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    t0, s0 = xt[:, 0], xs[:, 0]
    t_order = np.argsort(t0, kind="stable")
    s_order = np.argsort(s0, kind="stable")
    s_sorted = s0[s_order]
    ts = t0[t_order]
    w = float(radius * h[0]) * (1.0 + 1e-9) + 1e-300    # covers the scaled metric's rounding
    M = ts.size
    if xt.shape[1] == 1 or M == 0:
        cost = (np.searchsorted(s_sorted, ts + w, side="right")
                - np.searchsorted(s_sorted, ts - w, side="left")).astype(np.float64)
    else:
        from scipy.spatial import cKDTree
        mt = max(1, -(-M // SLAB_PROBES))
        ms = max(1, -(-xs.shape[0] // (16 * SLAB_PROBES)))
        probes = t_order[::mt]
        tree = cKDTree(xs[::ms] / h)
        counts = ms * tree.query_ball_point(xt[probes] / h, radius, return_length=True)
        cost = np.interp(np.arange(M), np.arange(0, M, mt), np.asarray(counts, np.float64))
    cum = np.cumsum(cost + SLAB_TARGET_COST)
    total = cum[-1] if M else 0.0
    cuts = np.searchsorted(cum, total * np.arange(1, P) / P, side="left") + 1
    bounds = np.maximum.accumulate(np.concatenate([[0], np.minimum(cuts, M), [M]]))
    bounds = bounds.astype(np.int64)
    targets, sources = [], []
    for r in range(P):
        a, b = bounds[r], bounds[r + 1]
        targets.append(np.sort(t_order[a:b]))
        if b > a:
            lo = np.searchsorted(s_sorted, ts[a] - w, side="left")
            hi = np.searchsorted(s_sorted, ts[b - 1] + w, side="right")
            sources.append(np.sort(s_order[lo:hi]))
        else:
            sources.append(np.zeros(0, dtype=np.int64))
    return targets, sources


def _tree_balanced(xt, F, groups, settings, lam, ws, dist, nbr_h):
    """Tree path under MPI (:func:`kernel_sums_flat`): the targets of all ranks are dealt out
    as slabs of equal work (:func:`slab_partition`; positions all-gathered, ``D`` doubles per
    trajectory); each rank receives from their owners only the source rows its slab's kernels
    reach (one ``Alltoallv``), builds the same neighbour lists as the serial path (same radius,
    sources in ascending global order, so each target's sum runs over the same sources in the
    same order: bit-for-bit serial) and one all-to-all returns the rows to the targets'
    owners. No rank holds the whole swarm's source fields."""
    comm = dist.comm
    P, rank = comm.size, comm.rank
    xs_all = np.ascontiguousarray(dist.x_all)
    counts = comm.allgather_rows(np.array([xt.shape[0]], np.int64))
    differs = not (xt.shape == dist.x.shape and np.array_equal(xt, dist.x))
    same = not comm.max(np.array([float(differs)]))[0]       # targets = sources on every rank
    xt_all = xs_all if same else comm.allgather_rows(xt)
    # the serial path's neighbour radius: the largest bandwidth, the largest source factor
    hbig = (np.max(np.stack([g.h for g in groups]), axis=0) if nbr_h is None
            else np.asarray(nbr_h, dtype=np.float64))
    lam_max = 1.0 if lam is None else float(comm.max(np.array(
        [np.max(lam, initial=-np.inf)], dtype=np.float64))[0])
    radius = settings.cutoff * lam_max
    share, need = slab_partition(xt_all, xs_all, hbig, radius, P)
    # my source rows that each rank needs, and the rows I need from each rank (owner order =
    # ascending global order)
    s_counts = comm.allgather_rows(np.array([dist.x.shape[0]], np.int64))
    s_starts = np.concatenate([[0], np.cumsum(s_counts)])
    s_lo, s_hi = s_starts[rank], s_starts[rank + 1]
    cols = F                                                  # (n, m) source fields
    if lam is not None:
        cols = np.concatenate([cols, np.asarray(lam, dtype=np.float64)[:, None]], axis=1)
    send = [cols[q[(q >= s_lo) & (q < s_hi)] - s_lo] for q in need]
    mine_need = need[rank]
    from_rank = [int(np.count_nonzero((mine_need >= s_starts[q]) & (mine_need < s_starts[q + 1])))
                 for q in range(P)]
    recv = comm.alltoall_blocks(send, [c * cols.shape[1] for c in from_rank])
    got_src = np.concatenate([r.reshape(-1, cols.shape[1]) for r in recv], axis=0)
    F_need = np.ascontiguousarray(got_src[:, :F.shape[1]])
    lam_need = None if lam is None else np.ascontiguousarray(got_src[:, -1])
    mine = share[rank]
    xs_need = np.ascontiguousarray(xs_all[mine_need])
    xt_mine = np.ascontiguousarray(xt_all[mine])
    nbr = neighbour_lists(xt_mine, xs_need, hbig, radius)
    rows, offsets = kernel_sums_flat(xt_mine, xs_need, F_need, groups, "tree", settings,
                                     lam=lam_need, nbr=nbr)
    ncol = rows.shape[1]
    starts = np.concatenate([[0], np.cumsum(counts)])
    owner = np.searchsorted(starts, mine, side="right") - 1
    blocks = [rows[owner == q] for q in range(P)]
    lo, hi = starts[rank], starts[rank + 1]
    got = [a[(a >= lo) & (a < hi)] - lo for a in share]        # my targets computed by rank r
    back = comm.alltoall_blocks(blocks, [g.size * ncol for g in got])
    full = ws.array("kernel_sums", (xt.shape[0], ncol))
    for g, r in zip(got, back):
        full[g] = r.reshape(g.size, ncol)
    return full, offsets


def is_pairs_fallback(method: str, reason: str) -> bool:
    """Whether :func:`choose_method`'s ``(method, reason)`` is the all-pairs path taken because
    the grid and the tree were refused (O(N^2) per step), not by design (a small swarm, or
    requested)."""
    reason = reason or ""
    return method == "pairs" and not (reason.startswith("N*M <") or reason == "requested")


def choose_method(method, N, M, D, x, h_min, h_max, settings: EngineSettings, pairs_below,
                  max_grid_cells, tree_max_fraction, n_classes=1):
    """Resolve ``"auto"`` and check an explicit ``"grid"`` request.

    * ``pairs`` if ``N * M < pairs_below**2`` (small swarms: no set-up cost);
    * else ``grid`` if ``D <= 3`` and the grid needs at most ``max_grid_cells`` cells (times the
      number of adaptive bandwidth classes);
    * else ``tree``, unless a probe finds that on average more than ``tree_max_fraction`` of the
      swarm lies within the cutoff of a target (wide bandwidths in many dimensions), where
      building neighbour lists costs more than it saves: then ``pairs``; also ``pairs`` when the
      lists would hold more than ``TREE_MAX_PAIRS`` pairs (memory).

    ``x`` is the (N, D) swarm or a :class:`mqcd.fields.distributed.Distributed` (MPI: the grid
    size needs only the swarm's extent; the tree probe gathers the positions).

    Returns ``(method, reason)``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    if method in ("pairs", "tree"):
        return method, "requested"
    if method == "grid" and D > 3:
        raise ValueError("method='grid' supports D <= 3; use 'tree' or 'auto'")
    if pairs_below is None:
        pairs_below = PAIRS_BELOW.get(D, PAIRS_BELOW[3])
    if method == "auto" and float(N) * float(M) < float(pairs_below) ** 2:
        return "pairs", f"N*M < pairs_below^2 ({pairs_below}^2)"
    why = "D > 3"
    if D <= 3:
        cells = grid_cells(x.extent if isinstance(x, Distributed) else x, h_min, h_max,
                           settings.grid_spacing, settings.grid_pad,
                           settings.grid_order) * int(n_classes)
        if cells <= max_grid_cells:
            return "grid", ("requested; " if method == "grid" else "") + f"D <= 3, {cells} grid cells"
        why = f"grid would need {cells} > max_grid_cells = {max_grid_cells} cells"
        if method == "grid":
            raise ValueError(f"method='grid': {why} (bandwidth classes included); raise "
                             "max_grid_cells, coarsen grid_spacing, or use 'tree'/'auto'")
    if isinstance(x, Distributed):
        x = x.x_all
    frac = neighbour_fraction(x, x, h_max, settings.cutoff)
    if frac > tree_max_fraction:
        return "pairs", f"{why}; neighbour fraction {frac:.2f} > tree_max_fraction"
    if frac * float(N) * float(M) > TREE_MAX_PAIRS:
        return "pairs", (f"{why}; {frac * N * M:.2e} neighbour pairs > TREE_MAX_PAIRS = "
                         f"{TREE_MAX_PAIRS:.0e} (memory)")
    return "tree", f"{why}; neighbour fraction {frac:.2f}"
