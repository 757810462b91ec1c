"""Multi-index bookkeeping shared by the kernel-sum engines and the local regression.

A multi-index ``a = (a_1, ..., a_D)`` of non-negative integers labels either a derivative
``d^a = d_1^{a_1} ... d_D^{a_D}`` or a monomial ``t^a = t_1^{a_1} ... t_D^{a_D}``. Tables are
ordered by total degree, then lexicographically with the first degree of freedom varying slowest
(graded lexicographic order), so ``multi_indices(D, k)[0]`` is always the zero index and the first
``1 + D`` rows are the zero index and the unit vectors ``e_1 .. e_D`` in order.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import combinations_with_replacement

import numpy as np

#: largest factor count an op may have (derivatives up to 3rd order, moments up to 4th order)
MAX_FACTORS = 4


@lru_cache(maxsize=None)
def multi_indices(D: int, maxdeg: int) -> np.ndarray:
    """All multi-indices of total degree ``<= maxdeg`` in ``D`` variables.

    Returns an int64 array of shape ``(C(D + maxdeg, maxdeg), D)`` in graded lexicographic order
    (read-only; it is cached).
    """
    rows = []
    for deg in range(maxdeg + 1):
        for combo in combinations_with_replacement(range(D), deg):
            a = [0] * D
            for j in combo:
                a[j] += 1
            rows.append(a)
    out = np.array(rows, dtype=np.int64).reshape(len(rows), D)
    out.setflags(write=False)
    return out


def index_of(table: np.ndarray) -> dict:
    """Map ``tuple(multi-index) -> row`` for a table from :func:`multi_indices`."""
    return {tuple(int(v) for v in row): i for i, row in enumerate(table)}


def factor_table(ops: np.ndarray):
    """Sparse factor form of multi-indices for the pair kernels.

    Each op ``a`` becomes at most ``MAX_FACTORS`` pairs ``(dof, power)`` with ``power > 0`` so that
    a product over a per-pair table ``tab[dof, power]`` evaluates the op with the fewest multiplies.

    Returns ``(dof, power, count)``: int64 arrays of shapes ``(n_ops, MAX_FACTORS)``,
    ``(n_ops, MAX_FACTORS)`` and ``(n_ops,)``.
    """
    n = ops.shape[0]
    dof = np.zeros((n, MAX_FACTORS), dtype=np.int64)
    pw = np.zeros((n, MAX_FACTORS), dtype=np.int64)
    cnt = np.zeros(n, dtype=np.int64)
    for o in range(n):
        c = 0
        for j in range(ops.shape[1]):
            if ops[o, j] > 0:
                if c >= MAX_FACTORS:
                    raise ValueError("op has more than MAX_FACTORS non-zero entries")
                dof[o, c] = j
                pw[o, c] = ops[o, j]
                c += 1
        cnt[o] = c
    return dof, pw, cnt


def full_symmetric_index(table: np.ndarray, order: int) -> np.ndarray:
    """For every ordered tuple ``(i, j, ...)`` of ``order`` dofs, the row of its multi-index.

    Returns an int64 array of shape ``(D,) * order`` (used to expand the sorted derivative ops
    into full symmetric tensors).
    """
    D = table.shape[1]
    idx = index_of(table)
    out = np.zeros((D,) * order, dtype=np.int64)
    for tup in np.ndindex(*((D,) * order)):
        a = [0] * D
        for j in tup:
            a[j] += 1
        out[tup] = idx[tuple(a)]
    return out
