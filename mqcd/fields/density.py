"""Per-mode ("multi-modal") bandwidths: kernel fields that stay local when the swarm branches.

The global normal-reference rule of :mod:`mqcd.fields.bandwidth` measures one spread for the
whole swarm. Once a wavepacket has split into a reflected and a transmitted packet, that spread
is the packets' separation: one kernel then spans both packets, ``grad ln n`` flattens inside
each, and the quantum-coupling term that drives decoherence vanishes (issue 11: the bandwidth
grew from 0.41 to 26.5 bohr on Tully 3, k = 10). Here the swarm is first divided into its
*modes* and every trajectory gets the normal-reference bandwidth of its own mode:

1. **Pilot density** at every trajectory from its distance to the ``k``-th nearest neighbour,
   ``n_p(x_I) ~ k / (N r_k(I)^D)`` (``scipy.spatial.cKDTree``; coordinates scaled by the
   per-dof standard deviation, so the rule is unit-free), ``k = clip(2 sqrt(N), 16, 64)``.
2. **Modes by topological persistence** (ToMATo, Chazal, Guibas, Oudot & Skraba, J. ACM 60, 41
   (2013)): trajectories are taken in order of decreasing pilot density and joined to the mode of
   their densest already-seen neighbour (kNN graph). Where two modes meet at a trajectory of
   density ``n_s`` (a saddle), the lower mode (peak ``n_peak``) stays separate only if it is
   *prominent*, ``n_s < persistence * n_peak``, and has at least ``k`` members; otherwise it is
   merged. So pilot noise (relative size ``k^-1/2 <= 0.25``) cannot create modes, and two packets
   with an empty (or sparse) region between them are two modes.
3. **Per-mode normal reference** (Silverman 1986; Chacon, Duong & Wand 2011 for the derivative
   order ``r``): ``h_c = scale c(D, r) s_c N_c^(-1/(D + 2r + 4))`` with ``s_c`` Silverman's robust
   spread ``min(std, IQR/1.349)`` of the mode's members (above 20000 trajectories: of its members
   in the every-m-th subsample on which the modes are found, so that no rank needs the whole
   swarm) and ``N_c`` their number in the whole swarm.
   Each trajectory is the source of a Gaussian of its mode's width; the density is the sum of all
   of them (a sample-point kernel estimator, Terrell & Scott 1992), so ``n`` is smooth and
   ``grad ln n`` is the exact gradient of the estimate.

Convergence: within a mode the rule is the normal reference, whose mean integrated squared error
of ``grad ln n`` falls like ``N^(-4/(D+6))`` (``N^(-4/7)`` in 1D, as for one packet); the mode
assignment is a consistent estimate of the density's basins (ToMATo's guarantee) as ``N`` grows,
so a swarm of two separated packets converges like each packet alone. Cost: the kNN query is
``O(N k log N)``, the persistence pass ``O(N k)``, and the kernel sums use the grid path with one
bandwidth class per distinct mode width (``O(N + G log G)`` per class): no ``N^2`` anywhere
(``python tools/ctmqc_validation.py cost``). Under MPI each rank finds the neighbours of its
block of the subsample (1D: windows of the sorted subsample, two numbers per point; D > 1: one
``cKDTree`` query per block) and one all-gather assembles the pilot; the persistence merge, a
sequential union-find, is repeated on every rank (~5 ms for the 20000-point subsample in 1D).
``mode_every = K`` runs pilot and merge only every K steps and carries each trajectory's mode in
between (:meth:`ModalEstimator.options_for`); the per-mode spreads (~1 ms) are redone every step.

With one mode the widths are the global normal-reference rule with Silverman's spread: a
single Gaussian packet is estimated exactly as before.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from numba import njit
from scipy.spatial import cKDTree

from ..parallel.comm import block_range
from .bandwidth import effective_count, group_spreads, normal_reference_constant
from .distributed import Distributed, subsample_rows
from .engine import Group, kernel_sums
from .estimate import estimate_fields
from .kernel import KernelEstimator
from .multiindex import multi_indices


def pilot_neighbours(x, k=None, comm=None, keep=None):
    """kNN pilot of the rows ``x`` (N, D) (the same on every rank): ``(log_density (N,),
    neighbours, order, k)``; ``k`` default ``clip(2 sqrt(N), 16, 64)`` (at most ``N - 1``).
    Distances in per-dof standard deviations.

    In 1D the rows are sorted (``order``) and the neighbours of sorted row ``i`` are the window
    ``start[i] .. start[i] + k`` without ``i`` (``neighbours = start`` (N,) int64, indices and
    densities in sorted order); in D > 1 ``neighbours`` is (N, k) int32 into the rows of ``x``
    and ``order`` is None. With ``comm``, each rank finds the neighbours of its block of rows and
    one all-gather assembles them: every row is computed exactly as serially (its own query), so
    the result does not depend on the number of ranks. ``keep``: a list whose first item is set
    to the 1D sort order (for :func:`nearest_sample`)."""
    x = np.asarray(x, dtype=np.float64)
    N, D = x.shape
    if k is None:
        k = int(np.clip(np.ceil(2.0 * np.sqrt(N)), 16, 64))
    k = int(min(k, N - 1))
    if k < 1:
        return np.zeros(N), np.zeros((N, 0), dtype=np.int32), None, 0
    i0, i1 = (0, N) if comm is None else block_range(N, comm.size, comm.rank)
    gather = (lambda a: a) if comm is None else comm.allgather_rows
    if D == 1:                       # sorted merge of the two sides: O(N k), no tree
        order = np.argsort(x[:, 0], kind="stable")
        if keep is not None:
            keep[0] = order
        rk, start = _knn_window(np.ascontiguousarray(x[order, 0]), k, i0, i1)
        rk, start = gather(rk), gather(start)
        return -np.log(np.maximum(rk, 1e-300)), start, order, k
    s = x.std(axis=0)
    s = np.where(s > 0, s, 1.0)
    tree = cKDTree(x / s)
    dist, idx = tree.query(x[i0:i1] / s, k=k + 1)
    rk = gather(np.maximum(dist[:, -1], 1e-300))
    nbr = gather(np.ascontiguousarray(idx[:, 1:], dtype=np.int32))
    return -D * np.log(rk), nbr, None, k


@njit(cache=True)
def _knn_window(xs, k, i0, i1):
    """k nearest neighbours of the points ``i0 .. i1 - 1`` of the sorted 1D array ``xs``:
    (distance to the k-th, first index of the window of the k neighbours and the point itself),
    both (i1 - i0,)."""
    N = xs.size
    rk = np.empty(i1 - i0)
    start = np.empty(i1 - i0, dtype=np.int64)
    for i in range(i0, i1):
        lo, hi = i - 1, i + 1
        r = 0.0
        for a in range(k):
            dl = xs[i] - xs[lo] if lo >= 0 else np.inf
            dh = xs[hi] - xs[i] if hi < N else np.inf
            if dl <= dh:
                r = dl
                lo -= 1
            else:
                r = dh
                hi += 1
        rk[i - i0] = r
        start[i - i0] = lo + 1
    return rk, start


@njit(cache=True)
def _find(parent, i):
    r = i
    while parent[r] != r:
        r = parent[r]
    while parent[i] != r:          # path compression
        nxt = parent[i]
        parent[i] = r
        i = nxt
    return r


@njit(cache=True)
def _persistence_modes(logf, nbr, window, k, log_persistence, min_size):
    """ToMATo merge over the kNN graph: ``nbr`` (N, k) neighbour indices, or (``window``, 1D)
    (N, 1) window starts: the neighbours of ``i`` are ``nbr[i, 0] .. nbr[i, 0] + k`` without
    ``i``. The result does not depend on the order of a point's neighbours (ties of peak height
    go to the lower root). The points are taken in decreasing density in the order of numba's
    ``argsort`` (quicksort): kNN densities do tie (two points that are each other's k-th
    neighbour), and a stable order instead changes the modes in those ties (17 of 22901 mode
    searches of a Tully 3 run), hence the chaotic runs' digits."""
    N = logf.size
    order = np.argsort(-logf)
    parent = np.full(N, -1, dtype=np.int64)
    peak = np.empty(N)
    size = np.zeros(N, dtype=np.int64)
    roots = np.empty(k + 1, dtype=np.int64)
    for i in order:
        nr = 0
        best = -1
        last = -1
        for a in range(k + 1 if window else k):
            if window:
                j = nbr[i, 0] + a
                if j == i:
                    continue
            else:
                j = nbr[i, a]
            pj = parent[j]
            if pj < 0 or pj == last:       # unseen, or a child of the root just found
                continue
            r = _find(parent, j)
            last = r
            seen = False
            for b in range(nr):
                if roots[b] == r:
                    seen = True
            if not seen:
                roots[nr] = r
                nr += 1
                if best < 0 or peak[r] > peak[best] or (peak[r] == peak[best] and r < best):
                    best = r
        if best < 0:
            parent[i] = i
            peak[i] = logf[i]
            size[i] = 1
            continue
        parent[i] = best
        size[best] += 1
        for b in range(nr):
            r = roots[b]
            if r == best:
                continue
            # merge a mode that is not prominent (saddle close to its peak) or too small
            if logf[i] >= peak[r] + log_persistence or size[r] < min_size:
                parent[r] = best
                size[best] += size[r]
    labels = np.empty(N, dtype=np.int64)
    for i in range(N):
        labels[i] = _find(parent, i)
    return labels


def sample_step(N, sample=20000):
    """Stride ``m`` of the subsample on which the modes are found: 1 for ``N <= sample``, else
    ``ceil(N / sample)`` (1D: rows ``0, m, 2 m, ...`` of the global swarm; D > 1: about one row in
    ``m`` by hashed global index, :func:`mqcd.fields.distributed.subsample_rows`)."""
    return 1 if N <= sample else -(-N // sample)


def sample_modes(xs, persistence=0.3, k=None, comm=None, keep=None):
    """Modes of the rows ``xs`` (the subsample, the same on every rank): ``(labels_s (n_s,)
    int64 in 0..C-1, C)``, modes numbered by their densest row's index in ``xs``.
    Deterministic; with ``comm`` the kNN pilot is shared out over the ranks
    (:func:`pilot_neighbours`) and the merge repeated on each, with the same result.

    ``keep``: a list whose first item is set to the 1D sort order of ``xs`` (None in D > 1),
    which :func:`nearest_sample` then need not redo."""
    xs = np.ascontiguousarray(xs, dtype=np.float64)
    if keep is not None:
        keep[0] = None
    if xs.shape[0] < 4:
        return np.zeros(xs.shape[0], dtype=np.int64), 1
    logf, nbr, order, k = pilot_neighbours(xs, k, comm, keep)
    window = nbr.ndim == 1
    raw = _persistence_modes(logf, nbr.reshape(nbr.shape[0], -1) if window else nbr, window, k,
                             float(np.log(persistence)), k)
    if order is not None:            # sorted (1D) indices back to rows of xs
        out = np.empty_like(raw)
        out[order] = order[raw]
        raw = out
    # modes numbered in the order of their roots (as np.unique would, in O(N))
    present = np.zeros(raw.size, dtype=np.int64)
    present[raw] = 1
    number = np.cumsum(present) - 1
    return number[raw], int(number[-1] + 1)


def nearest_sample(xs, labels_s, x, order=None):
    """Label of the nearest subsample point of every row of ``x`` (distances in the per-dof
    standard deviations of ``xs``; 1D: a sorted search, else ``cKDTree``). ``order``: the
    stable sort order of ``xs`` in 1D if known."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if xs.shape[1] == 1:
        order = np.argsort(xs[:, 0], kind="stable") if order is None else order
        srt = xs[order, 0]
        j = np.clip(np.searchsorted(srt, x[:, 0]), 1, max(srt.size - 1, 1))
        left = np.abs(x[:, 0] - srt[j - 1]) <= np.abs(srt[np.minimum(j, srt.size - 1)] - x[:, 0])
        return labels_s[order[np.where(left, j - 1, np.minimum(j, srt.size - 1))]]
    s = xs.std(axis=0)
    s = np.where(s > 0, s, 1.0)
    return labels_s[cKDTree(xs / s).query(x / s, k=1)[1]]


def mode_labels(x, persistence=0.3, k=None, sample=20000):
    """Modes of the swarm (see the module docstring): ``(labels (N,) int64 in 0..C-1, C)``.

    Parameters
    ----------
    x : (N, D) positions (bohr).
    persistence : a mode whose saddle density exceeds this fraction of its peak is merged into
        its neighbour (0 < persistence < 1; smaller: fewer modes).
    k : neighbours of the pilot (default ``clip(2 sqrt(N), 16, 64)``).
    sample : above this many trajectories the modes are found on every m-th trajectory
        (deterministic) and the others join the mode of their nearest sampled trajectory, which
        bounds the pilot's cost at ``O(sample k log sample + N log sample)``.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    m = sample_step(x.shape[0], sample)
    xs = x[subsample_rows(0, x.shape[0], m, x.shape[1])]
    labels, C = sample_modes(xs, persistence, k)
    return (labels if m == 1 else nearest_sample(xs, labels, x)), C


def mode_widths(xs, ws, labels_s, n_modes, counts, n_all, *, deriv=1, scale=1.0, hint=None):
    """Normal-reference bandwidths and spreads per mode, ``(h (C, D), s (C, D))`` (bohr).

    The Silverman spread of mode ``c`` is taken from its members among the rows ``xs`` (weights
    ``ws``: the whole swarm, or its subsample), the count in the rate from ``counts[c]``, the
    effective number of trajectories of the mode in the whole swarm; a mode with fewer than two
    rows, or zero spread in some dof, falls back to the rule of all rows with ``n_all``.
    ``hint``: a list kept between calls on the same rows, the warm start of the sorts
    (:func:`mqcd.fields.bandwidth.sort_rows`); the result does not depend on it.
    """
    D = xs.shape[1]
    c = normal_reference_constant(D, deriv)
    expo = -1.0 / (D + 2 * deriv + 4)
    labels_s = np.asarray(labels_s)
    small = np.bincount(labels_s, minlength=n_modes)[:n_modes] < 2
    sm, s_all = group_spreads(xs, ws, np.where(small[labels_s], n_modes, labels_s), n_modes,
                              whole=True, hint=hint)
    h_all = scale * c * s_all * float(n_all) ** expo
    hm = scale * c * sm * np.asarray(counts, np.float64)[:, None] ** expo
    h = np.where(hm > 0, hm, h_all[None, :])
    sp = np.where(sm > 0, sm, s_all[None, :])
    h[small], sp[small] = h_all, s_all
    return h, sp


def mode_bandwidths(x, weights, labels, n_modes, *, deriv=1, scale=1.0, spreads=False):
    """Per-trajectory bandwidths ``(N, D)``: the normal-reference rule of each trajectory's mode
    (Silverman spread, effective count); a mode with zero spread in some dof falls back to the
    whole swarm's rule there. ``spreads``: also return each trajectory's mode spread (N, D),
    bohr."""
    x = np.asarray(x, dtype=np.float64)
    N = x.shape[0]
    w = np.full(N, 1.0 / N) if weights is None else np.asarray(weights, np.float64)
    counts = [effective_count(w[labels == m]) if np.any(labels == m) else 0.0
              for m in range(n_modes)]
    h, sp = mode_widths(x, w, labels, n_modes, counts, effective_count(w), deriv=deriv,
                        scale=scale)
    return (h[labels], sp[labels]) if spreads else h[labels]


class ModalEstimator(KernelEstimator):
    """Kernel fields with per-mode bandwidths (``[method] field_method = "modes"``).

    Same interface and outputs as the kernel estimator; in addition ``f.extra["mode_spread"]``
    (N, D), bohr: the spread of each trajectory's mode, and ``f.extra["alpha"]`` (N, D),
    bohr^-2: the slope ``alpha_I = (1/2) sum_J K_J(x_I) / h_J^2 / sum_J K_J(x_I)`` of the
    quantum momentum ``-(1/2) d ln n`` of the sum of Gaussians (CTMQC's ``alpha``, used for the
    pair-specific centres of :mod:`mqcd.methods.ctmqc`), when the estimator was built with
    ``"alpha"`` in ``need``. No conservative divergence (the symmetric-pair form needs one
    bandwidth per kernel): the geometric rungs then use the pointwise forms.
    """

    name = "modes"
    has_divergence = False
    #: above this many trajectories the modes are found on a subsample (:func:`sample_step`)
    sample = 20000

    def __init__(self, opts, model, deck, comm, need, conservative=False):
        need = tuple(need)
        self.want_alpha = "alpha" in need
        need = tuple(t for t in need if t != "alpha")
        super().__init__(opts, model, deck, comm, need, False)
        self.persistence = float(opts.get("mode_persistence", 0.3))
        self.every = int(opts.get("mode_every", 1))
        self.width_bound = float(opts.get("mode_width_bound", 4.0))
        #: per-trajectory mode labels carried between mode searches (``mode_every > 1``)
        self.carried = None
        #: the subsample's sort orders of the last step (a warm start; results do not depend
        #: on it)
        self.sort_hint = []
        #: the subsample's 1D sort order from the last mode search (for the nearest-sample labels)
        self.mode_hint = [None]
        self.n_modes = 1
        self.h_max = None
        #: trajectories whose mode width was moved to the ``mode_width_bound`` (last estimate)
        self.n_clipped = 0

    def options_for(self, x, step=0):
        """Field options with the per-mode bandwidths of the swarm (``x``: this rank's
        positions; ``step``: the swarm's step number).

        The modes and their spreads come from the every-m-th subsample of the whole swarm
        (:func:`sample_step`: all of it up to 20000 trajectories; under MPI each rank contributes
        its rows of the subsample to one all-gather), the mode counts from all trajectories:
        each rank labels its own trajectories (nearest subsample point) and the counts are summed
        over ranks, so the cost per rank is ``O(N / P)`` plus the fixed subsample work.

        With ``mode_every = K > 1`` the modes are found at the steps that are multiples of ``K``
        (and when no labels are carried yet); in between every trajectory keeps its mode (a
        per-trajectory label, checkpointed and restricted with the swarm) and only the per-mode
        spreads and counts are updated from the current positions: the pilot, the persistence
        merge and the nearest-sample labelling are skipped."""
        fo = self.fopts
        comm = self.comm
        dist = Distributed(comm, x) if comm.size > 1 else None
        N, D = (x.shape if dist is None else (dist.n, x.shape[1]))
        m = sample_step(N, self.sample)
        rows = (subsample_rows(0, N, m, D) if dist is None else dist.subsample(m, D))
        carry = (self.every > 1 and self.carried is not None and step % self.every != 0
                 and self.carried.shape[0] == x.shape[0])
        if carry:                         # positions and labels of the subsample, one gather
            labels = self.carried
            both = np.column_stack([x[rows], labels[rows].astype(np.float64)])
            both = both if dist is None else comm.allgather_rows(np.ascontiguousarray(both))
            xs, lab_s = np.ascontiguousarray(both[:, :D]), both[:, D].astype(np.int64)
            C = int(comm.max(np.array([labels.max() + 1 if labels.size else 0]))[0])
        else:
            xs = x[rows] if dist is None else comm.allgather_rows(np.ascontiguousarray(x[rows]))
            lab_s, C = sample_modes(xs, self.persistence, comm=None if dist is None else comm,
                                    keep=self.mode_hint)
            if m > 1:
                labels = nearest_sample(xs, lab_s, x, self.mode_hint[0])
            else:
                labels = lab_s if dist is None else lab_s[dist.rows]
        self.carried = labels if self.every > 1 else None
        counts = comm.sum(np.bincount(labels, minlength=C).astype(np.int64))
        ws = np.full(xs.shape[0], 1.0 / N)
        h_c, s_c = mode_widths(xs, ws, lab_s, C, counts, N, deriv=fo.density_deriv,
                               scale=float(fo.density_scale), hint=self.sort_hint)
        # geometric mean over the trajectories of the per-mode widths (a sum over modes with
        # exact counts: no dependence on the rank count)
        h_ref = np.exp((counts[:, None] * np.log(h_c)).sum(axis=0) / N)
        lam_c = np.exp(np.log(h_c / h_ref).mean(axis=1))
        # mode_width_bound = L > 0 (default 4): each mode's factor is held in [1/L, L] of the
        # reference, its spread scaled with it (a pile-up of trajectories stalled at a turning
        # point is a mode of tiny spread, whose quantum momentum then explodes; a genuine narrow
        # packet - Tully 3's reflected one - crosses L = 4 too: docs/theory/fields.md 9.2)
        if self.width_bound > 0:
            L = self.width_bound
            wide = np.clip(lam_c, 1.0 / L, L) / lam_c
            lam_c, s_c = lam_c * wide, s_c * wide[:, None]
            self.n_clipped = int(counts[wide != 1.0].sum())
        # regression: the same per-source factors on the swarm's reference regression width
        c_ratio = (normal_reference_constant(D, fo.regression_deriv)
                   / normal_reference_constant(D, fo.density_deriv))
        n_ratio = N ** (-1.0 / (D + 2 * fo.regression_deriv + 4)
                        + 1.0 / (D + 2 * fo.density_deriv + 4))
        h_r = float(fo.regression_scale) / float(fo.density_scale) * c_ratio * n_ratio * h_ref
        self.n_modes = C
        self.h_max = (h_ref[None, :] * lam_c[counts > 0, None]).max(axis=0)
        self.labels = labels
        self.spreads = s_c[labels]
        self.last_factors = lam_c[labels]
        return dataclasses.replace(fo, h_density=h_ref, h_regression=h_r,
                                   source_factors=lam_c[labels], adaptive=False,
                                   density_scale=1.0, regression_scale=1.0)

    def estimate(self, sw, need=None):
        need = self.need if need is None else tuple(t for t in need if t != "alpha")
        rho = sw.rho if any(t.startswith("rho") for t in need) else None
        fo = self.options_for(sw.x, int(getattr(sw, "step", 0)))
        f = estimate_fields(sw.x, rho, self.masses, fo, need=need, workspace=self.ws,
                            comm=self.comm)
        self.last = f
        self.note_path(f)
        f.extra = {**f.extra, "mode_spread": self.spreads, "mode_label": self.labels,
                   "n_modes": self.n_modes}
        if self.want_alpha:
            f.extra["alpha"] = self._alpha(sw.x, f, fo)
        return f

    def _alpha(self, x, f, fo):
        D = x.shape[1]
        lam = fo.source_factors
        w = f.weights
        hs = fo.h_density[None, :] * lam[:, None]                   # (N, D)
        F = np.concatenate([w[:, None], w[:, None] / hs ** 2], axis=1)
        S = kernel_sums(x, x, F, [Group(multi_indices(D, 0), 0, D + 1, fo.h_density, "deriv")],
                        f.method, fo.engine(), lam=lam, dist=f.dist)[0]
        S = S[:, 0, :]
        return 0.5 * S[:, 1:] / S[:, :1]

    def divergence(self, f, G):
        return None

    def state_dict(self):
        return {} if self.carried is None else {"mode_label": self.carried}

    def load_state_dict(self, state):
        if "mode_label" in state:
            self.carried = np.ascontiguousarray(state["mode_label"], dtype=np.int64)

    def records(self):
        out = super().records()
        if self.h_max is not None:
            out["diagnostics/bandwidth_density"] = (np.asarray(self.h_max, float), "bohr")
            out["diagnostics/density_modes"] = (float(self.n_modes), "1")
            out["diagnostics/density_modes_widened"] = (float(self.n_clipped), "1")
        return out
