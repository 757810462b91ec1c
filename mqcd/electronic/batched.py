"""Small real matrices in batches: the many-state (ns > 2) fast path of the electronic step.

Trajectories are processed in chunks of ``L`` lanes stored as structure-of-arrays, ``A[i, j, t]``
(matrix element (i, j) of lane t), so that every inner loop runs over lanes: contiguous, free of
per-matrix call overhead and vectorised by LLVM whatever the matrix size (LAPACK's cost for
3-16 states is mostly per-call overhead; see docs/performance.md). Three kernels are built on it:

* :func:`jacobi_eigh` - eigenvalues and eigenvectors of real symmetric matrices by cyclic Jacobi
  rotations (G. H. Golub and C. F. Van Loan, Matrix Computations, 4th ed., Alg. 8.5.2 with the
  symmetric Schur decomposition 8.5.1), warm-started from the previous step's eigenvectors when
  they are given: ``A = V0^T H V0`` is then almost diagonal and two sweeps usually reach
  round-off (quadratic convergence). Used wherever the adiabatic basis is needed (surface hopping
  every step, records, decoherence) for real models.
* :func:`propagate_taylor` - ``rho <- U rho U^dagger`` with ``U = exp(-i H_mid tau)`` for real
  symmetric ``H``, without an eigensolver: ``U = cos X - i sin X``, ``X = (H - tr H / n) tau``,
  the two matrix functions from their Taylor series evaluated by the Paterson-Stockmeyer scheme
  in ``Y = X^2`` (N. J. Higham, Functions of Matrices, SIAM 2008, Sec. 4.2 and 10.3), scaled and
  squared so that ``||X||_F <= 1`` and truncated where the remainder bound falls below 2e-17 (the
  Frobenius norm bounds the spectral norm). The same exponential midpoint rule as
  mqcd/electronic/propagate.py's eigendecomposition path, to round-off. Used by Ehrenfest.
* :func:`propagate_split` - the symmetric split ``U = exp(-i H1 tau/2) exp(-i H0 tau/2)`` from the
  eigen-decompositions at the two step ends (the previous step's is reused, so one Jacobi
  solve per step serves the propagation and the adiabatic quantities); second order and
  time-reversible like the midpoint rule. Returns the adiabatic populations at the end of the step
  as a by-product. Used by surface hopping.

Written by hand: numpy/scipy have no batched small-matrix kernels callable inside numba, and
LAPACK's per-call overhead is what these avoid.
"""
import math

import numpy as np
from numba import njit

from .fastmath import sincos

# No fastmath: without contraction to fused multiply-adds the vectorised and the scalar remainder
# loops round identically, so a lane's result does not depend on its position in the chunk (MPI
# equals serial bit for bit).
FM = False
_INVF = np.array([1.0 / math.gamma(k + 1.0) for k in range(64)])
#: a sweep whose largest rotated |a_pq| is below this (relative to ||A||_F) is the last one:
#: quadratic convergence leaves off-diagonal elements of order its square
SWEEP_DONE = 1e-8
#: elements below this (relative to ||A||_F) are not rotated
ROTATE_TOL = 1e-15
MAX_SWEEPS = 40


@njit(cache=True)
def lanes(n):
    """Chunk size (lanes) for n x n matrices: about 64 KB per matrix, 16..256 lanes."""
    return int(max(16, min(256, 8192 // (n * n))))


# ----------------------------------------------------------------------------- load / store
@njit(cache=True, inline="always")
def _load(src, t0, nb, dst):
    n = dst.shape[0]
    for t in range(nb):
        for i in range(n):
            for j in range(n):
                dst[i, j, t] = src[t0 + t, i, j]


@njit(cache=True, inline="always")
def _store(dst, t0, nb, src):
    n = src.shape[0]
    for t in range(nb):
        for i in range(n):
            for j in range(n):
                dst[t0 + t, i, j] = src[i, j, t]


@njit(cache=True, inline="always")
def _load_c(src, t0, nb, re, im):
    n = re.shape[0]
    for t in range(nb):
        for i in range(n):
            for j in range(n):
                z = src[t0 + t, i, j]
                re[i, j, t] = z.real
                im[i, j, t] = z.imag


@njit(cache=True, inline="always")
def _store_c(dst, t0, nb, re, im):
    n = re.shape[0]
    for t in range(nb):
        for i in range(n):
            for j in range(n):
                dst[t0 + t, i, j] = complex(re[i, j, t], im[i, j, t])


# ----------------------------------------------------------------------------- products
@njit(cache=True, fastmath=FM)
def _mm(A, B, C, nb, ta, tb, upper):
    """C = op(A) op(B) lane by lane (op = transpose if ta / tb, at most one of them);
    ``upper``: only j >= i. A transposed operand is copied first (n^2 per lane against the
    product's n^3), so that one vectorised kernel serves all cases."""
    if ta:
        _mm_nn(_transposed(A, nb), B, C, nb, upper)
    elif tb:
        _mm_nn(A, _transposed(B, nb), C, nb, upper)
    else:
        _mm_nn(A, B, C, nb, upper)


@njit(cache=True, fastmath=FM)
def _transposed(A, nb):
    n = A.shape[0]
    T = np.empty_like(A)
    for i in range(n):
        for j in range(n):
            T[i, j, :nb] = A[j, i, :nb]
    return T


@njit(cache=True, fastmath=FM)
def _mm_nn(A, B, C, nb, upper):
    n = C.shape[0]
    for i in range(n):
        j0 = i if upper else 0
        for j in range(j0, n):
            c = C[i, j]
            for t in range(nb):
                c[t] = 0.0
        for k in range(n):
            a = A[i, k]
            for j in range(j0, n):
                b = B[k, j]
                c = C[i, j]
                for t in range(nb):
                    c[t] += a[t] * b[t]


@njit(cache=True, fastmath=FM)
def _sandwich(V, R, I, Tr, Ti, Or, Oi, nb, adjoint_left):
    """(Or + i Oi) = V^T (R + i I) V (adjoint_left) or V (R + i I) V^T for real V and Hermitian
    R + i I; the result is Hermitian (upper triangle computed, lower mirrored)."""
    n = V.shape[0]
    if adjoint_left:
        _mm(V, R, Tr, nb, True, False, False)
        _mm(V, I, Ti, nb, True, False, False)
        _mm(Tr, V, Or, nb, False, False, True)
        _mm(Ti, V, Oi, nb, False, False, True)
    else:
        _mm(V, R, Tr, nb, False, False, False)
        _mm(V, I, Ti, nb, False, False, False)
        _mm(Tr, V, Or, nb, False, True, True)
        _mm(Ti, V, Oi, nb, False, True, True)
    for i in range(n):
        for t in range(nb):
            Oi[i, i, t] = 0.0
        for j in range(i + 1, n):
            for t in range(nb):
                Or[j, i, t] = Or[i, j, t]
                Oi[j, i, t] = -Oi[i, j, t]


# ----------------------------------------------------------------------------- Jacobi
@njit(cache=True, fastmath=FM)
def _jacobi_chunk(A, V, E, nb, c, s, scale, tau, worst, done):
    """Diagonalise the symmetric lanes of A in place (the upper triangle is used and updated;
    A -> diag), V <- V J; E[t, :] the sorted
    eigenvalues, V's columns permuted to match. ``c, s, scale, tau, worst, done`` are lane work
    arrays. Every lane converges on its own (a converged lane gets identity rotations, which
    change nothing), so a lane's result does not depend on the other lanes of its chunk (MPI
    equals serial bit for bit). Returns the number of sweeps of the slowest lane."""
    n = A.shape[0]
    for t in range(nb):
        acc = 0.0
        for i in range(n):
            acc += A[i, i, t] * A[i, i, t]
            for j in range(i + 1, n):
                acc += 2.0 * A[i, j, t] * A[i, j, t]
        scale[t] = max(math.sqrt(acc), 1e-300)
        done[t] = False
    sweeps = 0
    for _ in range(MAX_SWEEPS):
        sweeps += 1
        for t in range(nb):
            worst[t] = 0.0
        for p in range(n - 1):
            for q in range(p + 1, n):
                app = A[p, p]
                aqq = A[q, q]
                apq_ = A[p, q]
                big = 0.0
                for t in range(nb):
                    r = abs(apq_[t]) / scale[t]
                    if not done[t]:
                        worst[t] = max(worst[t], r)
                        big = max(big, r)
                if big <= ROTATE_TOL:
                    continue
                for t in range(nb):
                    apq = apq_[t]
                    skip = done[t] or abs(apq) <= ROTATE_TOL * scale[t]
                    a_safe = 1.0 if skip else apq
                    theta = (aqq[t] - app[t]) / (2.0 * a_safe)
                    tt = math.copysign(1.0 / (abs(theta) + math.sqrt(1.0 + theta * theta)), theta)
                    tt = 0.0 if skip else tt
                    cc = 1.0 / math.sqrt(1.0 + tt * tt)
                    c[t] = cc
                    s[t] = tt * cc
                    tau[t] = tt * apq
                # the 2x2 block in closed form (Golub-Van Loan 8.5.1)
                for t in range(nb):
                    app[t] -= tau[t]
                    aqq[t] += tau[t]
                    keep = s[t] == 0.0
                    apq_[t] = apq_[t] if keep else 0.0
                # rows/columns p, q: only the upper triangle of A is kept up to date
                for k in range(n):
                    if k == p or k == q:
                        continue
                    kp = A[k, p] if k < p else A[p, k]
                    kq = A[k, q] if k < q else A[q, k]
                    for t in range(nb):
                        akp = kp[t]
                        akq = kq[t]
                        kp[t] = c[t] * akp - s[t] * akq
                        kq[t] = s[t] * akp + c[t] * akq
                for k in range(n):
                    vp = V[k, p]
                    vq = V[k, q]
                    for t in range(nb):
                        vkp = vp[t]
                        vkq = vq[t]
                        vp[t] = c[t] * vkp - s[t] * vkq
                        vq[t] = s[t] * vkp + c[t] * vkq
        alldone = True
        for t in range(nb):
            if worst[t] <= SWEEP_DONE:
                done[t] = True
            else:
                alldone = False
        if alldone:
            break
    # sort each lane's eigenvalues ascending, permuting V's columns
    for t in range(nb):
        for i in range(n):
            E[t, i] = A[i, i, t]
        for i in range(1, n):
            j = i
            while j > 0 and E[t, j - 1] > E[t, j]:
                e = E[t, j]
                E[t, j] = E[t, j - 1]
                E[t, j - 1] = e
                for k in range(n):
                    v = V[k, j, t]
                    V[k, j, t] = V[k, j - 1, t]
                    V[k, j - 1, t] = v
                j -= 1
    return sweeps


@njit(cache=True)
def jacobi_eigh(H, E, V, warm):
    """Eigen-decomposition of the real symmetric batch ``H`` (N, n, n): ``E`` (N, n) ascending,
    ``V`` (N, n, n) eigenvectors as columns, both filled in place. With ``warm`` the incoming
    ``V`` (orthogonal, e.g. the previous step's eigenvectors) is the starting basis; otherwise the
    identity. Returns the mean number of sweeps."""
    N, n, _ = H.shape
    L = lanes(n)
    Hc = np.empty((n, n, L))
    Vc = np.empty((n, n, L))
    A = np.empty((n, n, L))
    T = np.empty((n, n, L))
    c = np.empty(L)
    s = np.empty(L)
    sc = np.empty(L)
    tau = np.empty(L)
    wst = np.empty(L)
    done = np.zeros(L, np.bool_)
    Ec = np.empty((L, n))
    total = 0
    for t0 in range(0, N, L):
        nb = min(L, N - t0)
        _load(H, t0, nb, Hc)
        if warm:
            _load(V, t0, nb, Vc)
            _mm(Vc, Hc, T, nb, True, False, False)
            _mm(T, Vc, A, nb, False, False, True)          # upper triangle of V^T H V
        else:
            for i in range(n):
                for j in range(n):
                    for t in range(nb):
                        A[i, j, t] = 0.5 * (Hc[i, j, t] + Hc[j, i, t])
                        Vc[i, j, t] = 1.0 if i == j else 0.0
        total += _jacobi_chunk(A, Vc, Ec, nb, c, s, sc, tau, wst, done) * nb
        _store(V, t0, nb, Vc)
        for t in range(nb):
            for i in range(n):
                E[t0 + t, i] = Ec[t, i]
    return total / max(N, 1)


# ----------------------------------------------------------------------------- exp(-i X)
@njit(cache=True, fastmath=FM)
def _cos_sin(X, nrm, nb, C, S, Y, Y2, Y3, Y4, T1, T2, f, deg, nsq):
    """C = cos X, S = sin X for the lanes of real symmetric X; ``nrm[t]`` bounds the spectral
    norm of lane t. Scaling, degree and squarings are chosen per lane (``f``, ``deg``, ``nsq``
    are lane work arrays), so a lane's result does not depend on the other lanes of its chunk."""
    n = X.shape[0]
    kmax = 0
    qmax = 0
    for t in range(nb):
        r = nrm[t]
        q = 0
        while r > 1.0:
            r *= 0.5
            q += 1
        K = 1
        while r ** (2 * K + 2) * _INVF[2 * K + 2] > 2e-17:
            K += 1
        f[t] = 0.5 ** q
        deg[t] = K
        nsq[t] = q
        kmax = max(kmax, K)
        qmax = max(qmax, q)
    _mm_nn(X, X, Y, nb, False)
    for i in range(n):
        for j in range(n):
            y = Y[i, j]
            for t in range(nb):
                y[t] *= f[t] * f[t]
    # cos X = sum_k (-1)^k Y^k/(2k)!, sin X = X sum_k (-1)^k Y^k/(2k+1)!, k = 0..deg, by
    # Paterson-Stockmeyer in blocks of four powers of Y
    _mm_nn(Y, Y, Y2, nb, False)
    _mm_nn(Y2, Y, Y3, nb, False)
    _mm_nn(Y2, Y2, Y4, nb, False)
    nblk = kmax // 4
    for which in range(2):
        P = C if which == 0 else S
        for blk in range(nblk, -1, -1):
            if blk < nblk:
                _mm_nn(P, Y4, T1, nb, False)
                for i in range(n):
                    for j in range(n):
                        P[i, j, :nb] = T1[i, j, :nb]
            else:
                P[:, :, :nb] = 0.0
            for r in range(4):
                k = 4 * blk + r
                if k > kmax:
                    break
                cf = _INVF[2 * k + which] * (1.0 if k % 2 == 0 else -1.0)
                if r == 0:
                    for i in range(n):
                        pi = P[i, i]
                        for t in range(nb):
                            pi[t] += cf if k <= deg[t] else 0.0
                else:
                    Q = Y if r == 1 else (Y2 if r == 2 else Y3)
                    for i in range(n):
                        for j in range(n):
                            pij = P[i, j]
                            qij = Q[i, j]
                            for t in range(nb):
                                pij[t] += (cf if k <= deg[t] else 0.0) * qij[t]
    _mm_nn(X, S, T1, nb, False)
    for i in range(n):
        for j in range(n):
            sij = S[i, j]
            tij = T1[i, j]
            for t in range(nb):
                sij[t] = tij[t] * f[t]
    for it in range(qmax):
        _mm_nn(C, C, T1, nb, False)
        _mm_nn(S, S, T2, nb, False)
        _mm_nn(C, S, Y, nb, False)
        for i in range(n):
            for j in range(n):
                cij = C[i, j]
                sij = S[i, j]
                for t in range(nb):
                    if it < nsq[t]:
                        cij[t] = T1[i, j, t] - T2[i, j, t]
                        sij[t] = 2.0 * Y[i, j, t]


@njit(cache=True)
def propagate_taylor(rho, H0, H1, dt, nsub):
    """``rho <- U rho U^dagger`` over ``dt`` for real symmetric ``H0``, ``H1`` (N, n, n), with
    ``nsub`` exponential-midpoint substeps of H interpolated linearly (as
    mqcd.electronic.propagate.propagate)."""
    N, n, _ = H0.shape
    L = lanes(n)
    tau = dt / nsub
    h0 = np.empty((n, n, L))
    h1 = np.empty((n, n, L))
    R = np.empty((n, n, L))
    I = np.empty((n, n, L))
    X = np.empty((n, n, L))
    C = np.empty((n, n, L))
    S = np.empty((n, n, L))
    Y = np.empty((n, n, L))
    Y2 = np.empty((n, n, L))
    Y3 = np.empty((n, n, L))
    Y4 = np.empty((n, n, L))
    T1 = np.empty((n, n, L))
    T2 = np.empty((n, n, L))
    Tr = np.empty((n, n, L))
    Ti = np.empty((n, n, L))
    nrm = np.empty(L)
    f = np.empty(L)
    deg = np.empty(L, np.int64)
    nsq = np.empty(L, np.int64)
    for t0 in range(0, N, L):
        nb = min(L, N - t0)
        _load(H0, t0, nb, h0)
        _load(H1, t0, nb, h1)
        _load_c(rho, t0, nb, R, I)
        for k in range(nsub):
            w = (k + 0.5) / nsub
            for t in range(nb):
                # shift: the centre of the Gershgorin interval or the mean eigenvalue (tr/n),
                # whichever gives the smaller rigorous bound on |eigenvalue - shift| (the
                # Gershgorin radius, or the Frobenius norm of H - tr/n); a shift only changes a
                # global phase of U, which cancels in U rho U^dagger
                tr = 0.0
                lo = 1e300
                hi = -1e300
                for i in range(n):
                    d = h0[i, i, t] + w * (h1[i, i, t] - h0[i, i, t])
                    tr += d
                    rad = 0.0
                    for j in range(n):
                        if j != i:
                            rad += abs(h0[i, j, t] + w * (h1[i, j, t] - h0[i, j, t]))
                    lo = min(lo, d - rad)
                    hi = max(hi, d + rad)
                tr /= n
                fro = 0.0
                for i in range(n):
                    for j in range(n):
                        v = h0[i, j, t] + w * (h1[i, j, t] - h0[i, j, t])
                        if i == j:
                            v -= tr
                        fro += v * v
                fro = math.sqrt(fro)
                gersh = 0.5 * (hi - lo)
                shift = tr if fro <= gersh else 0.5 * (hi + lo)
                for i in range(n):
                    for j in range(n):
                        v = h0[i, j, t] + w * (h1[i, j, t] - h0[i, j, t])
                        if i == j:
                            v -= shift
                        X[i, j, t] = v * tau
                nrm[t] = min(fro, gersh) * tau
            _cos_sin(X, nrm, nb, C, S, Y, Y2, Y3, Y4, T1, T2, f, deg, nsq)
            # T = U rho = (C R + S I) + i (C I - S R)
            _mm(C, R, T1, nb, False, False, False)
            _mm(S, I, T2, nb, False, False, False)
            for i in range(n):
                for j in range(n):
                    for t in range(nb):
                        Tr[i, j, t] = T1[i, j, t] + T2[i, j, t]
            _mm(C, I, T1, nb, False, False, False)
            _mm(S, R, T2, nb, False, False, False)
            for i in range(n):
                for j in range(n):
                    for t in range(nb):
                        Ti[i, j, t] = T1[i, j, t] - T2[i, j, t]
            # rho' = T U^dagger = T (C + i S): Re = Tr C - Ti S, Im = Tr S + Ti C (upper)
            _mm(Tr, C, T1, nb, False, False, True)
            _mm(Ti, S, T2, nb, False, False, True)
            _mm(Tr, S, Y, nb, False, False, True)
            _mm(Ti, C, Y2, nb, False, False, True)
            for i in range(n):
                for j in range(i, n):
                    for t in range(nb):
                        re = T1[i, j, t] - T2[i, j, t]
                        im = Y[i, j, t] + Y2[i, j, t]
                        R[i, j, t] = re
                        R[j, i, t] = re
                        I[i, j, t] = im if j > i else 0.0
                        I[j, i, t] = -im if j > i else 0.0
        _store_c(rho, t0, nb, R, I)


# ----------------------------------------------------------------------------- split step
@njit(cache=True, inline="always")
def _phases(M_r, M_i, E, t0, nb, half_tau, cr, ci):
    """M_ab <- M_ab exp(-i (E_a - E_b) half_tau) for each lane (E (N, n) at rows t0..)."""
    n = M_r.shape[0]
    for t in range(nb):
        for a in range(n):
            s_, c_ = sincos(-E[t0 + t, a] * half_tau)
            cr[a, t] = c_
            ci[a, t] = s_
    for a in range(n):
        for b in range(n):
            for t in range(nb):
                # f = e_a conj(e_b)
                fr = cr[a, t] * cr[b, t] + ci[a, t] * ci[b, t]
                fi = ci[a, t] * cr[b, t] - cr[a, t] * ci[b, t]
                xr = M_r[a, b, t]
                xi = M_i[a, b, t]
                M_r[a, b, t] = xr * fr - xi * fi
                M_i[a, b, t] = xr * fi + xi * fr


@njit(cache=True)
def propagate_split(rho, E0, V0, E1, V1, dt, P):
    """``rho <- U rho U^dagger`` with ``U = V1 e^{-i E1 dt/2} V1^T V0 e^{-i E0 dt/2} V0^T`` (real
    eigenvectors ``V0``, ``V1`` (N, n, n) and energies ``E0``, ``E1`` (N, n) at the step ends);
    ``P`` (N, n) receives the adiabatic populations diag(V1^T rho V1) after the step."""
    N, n, _ = rho.shape
    L = lanes(n)
    h = 0.5 * dt
    v0 = np.empty((n, n, L))
    v1 = np.empty((n, n, L))
    W = np.empty((n, n, L))
    R = np.empty((n, n, L))
    I = np.empty((n, n, L))
    Xr = np.empty((n, n, L))
    Xi = np.empty((n, n, L))
    Tr = np.empty((n, n, L))
    Ti = np.empty((n, n, L))
    cr = np.empty((n, L))
    ci = np.empty((n, L))
    for t0 in range(0, N, L):
        nb = min(L, N - t0)
        _load(V0, t0, nb, v0)
        _load(V1, t0, nb, v1)
        _load_c(rho, t0, nb, R, I)
        _mm(v1, v0, W, nb, True, False, False)                 # W = V1^T V0
        _sandwich(v0, R, I, Tr, Ti, Xr, Xi, nb, True)          # X = V0^T rho V0
        _phases(Xr, Xi, E0, t0, nb, h, cr, ci)
        _sandwich(W, Xr, Xi, Tr, Ti, R, I, nb, False)          # Y = W X W^T
        _phases(R, I, E1, t0, nb, h, cr, ci)
        for a in range(n):
            for t in range(nb):
                P[t0 + t, a] = R[a, a, t]
        _sandwich(v1, R, I, Tr, Ti, Xr, Xi, nb, False)         # rho = V1 Y V1^T
        _store_c(rho, t0, nb, Xr, Xi)


# ----------------------------------------------------------------------------- basis changes
@njit(cache=True)
def change_basis(M, V, adjoint_left, out):
    """``out = V^T M V`` (adjoint_left) or ``V M V^T`` for Hermitian M (N, n, n) complex and real
    V (N, n, n)."""
    N, n, _ = M.shape
    L = lanes(n)
    v = np.empty((n, n, L))
    R = np.empty((n, n, L))
    I = np.empty((n, n, L))
    Tr = np.empty((n, n, L))
    Ti = np.empty((n, n, L))
    Or = np.empty((n, n, L))
    Oi = np.empty((n, n, L))
    for t0 in range(0, N, L):
        nb = min(L, N - t0)
        _load(V, t0, nb, v)
        _load_c(M, t0, nb, R, I)
        _sandwich(v, R, I, Tr, Ti, Or, Oi, nb, adjoint_left)
        _store_c(out, t0, nb, Or, Oi)
    return out


@njit(cache=True)
def populations(rho, V, out):
    """Adiabatic populations ``diag(V^T rho V)`` (N, n) for real V: one real product per lane."""
    N, n, _ = rho.shape
    L = lanes(n)
    v = np.empty((n, n, L))
    R = np.empty((n, n, L))
    T = np.empty((n, n, L))
    for t0 in range(0, N, L):
        nb = min(L, N - t0)
        _load(V, t0, nb, v)
        for t in range(nb):
            for i in range(n):
                for j in range(n):
                    R[i, j, t] = rho[t0 + t, i, j].real
        _mm(R, v, T, nb, False, False, False)
        for a in range(n):
            for t in range(nb):
                out[t0 + t, a] = 0.0
        for k in range(n):
            for a in range(n):
                for t in range(nb):
                    out[t0 + t, a] += v[k, a, t] * T[k, a, t]
    return out
