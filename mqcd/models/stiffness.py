"""Stiffness of a model at given positions: the largest nuclear frequency, and the time-step check.

Every trajectory method advances the nuclei with velocity Verlet (mqcd/methods/base.py). For a
harmonic mode of angular frequency ``omega`` the Verlet map is stable only for ``omega dt < 2``;
beyond it the amplitude grows by ``|lambda| = (s + sqrt(s^2 - 4))/2``, ``s = (omega dt)^2 - 2``,
per step (2.6 at ``omega dt = 2.24``), whatever the method. Below the limit the step is stable, and
the energy of the mode oscillates with a relative amplitude of about ``(omega dt)^2 / 4``.

The frequency used here is that of the electronic-state-resolved curvature

    K^a_jk(x) = <a(x)| d_j d_k H(x) |a(x)>,     omega^2 = largest eigenvalue of M^-1/2 K^a M^-1/2

over the adiabatic states ``a`` and the sampled positions (``d_j d_k H`` by central differences of
the model's ``dH``). It is the Jacobian of the mean-field force at frozen electronic state, exact
for harmonic baths (spin-boson, LVC, exciton models: ``d d H = omega^2`` in mass-weighted
coordinates), and smooth at intersections: the nonadiabatic part of the adiabatic Hessian,
``2 sum_b |<a|dH|b>|^2 / (E_a - E_b)``, which diverges at a conical intersection, is left out on
purpose (it is the electronic time scale, which the exact unitary electronic step handles).
Negative curvature (barriers) is not a stability limit and is ignored.
"""
import numpy as np

#: at most this many displaced rows (2 D per position) are evaluated in one check
MAX_ROWS = 20000
#: positions sampled from the swarm (fewer when 2 D MAX_ROWS would be exceeded)
MAX_POINTS = 256
#: relative finite-difference step (times max(1, |x|)), bohr
FD_STEP = 1e-4
#: above this many degrees of freedom the largest curvature comes from Lanczos, not the full matrix
DENSE_MAX_DOF = 64
#: positions, electronic states, Lanczos vectors and restarts of the large-D path
LANCZOS_POINTS = 2
LANCZOS_STATES = 4
LANCZOS_NCV = 20
LANCZOS_RESTARTS = 3
#: velocity Verlet diverges for omega dt >= VERLET_LIMIT
VERLET_LIMIT = 2.0


def stiffest_frequency(model, x: np.ndarray) -> float:
    """Largest nuclear angular frequency of ``model`` at the positions ``x``.

    Parameters
    ----------
    model : mqcd.models.base.Model
        The model (its ``masses`` in electron masses, ``evaluate``).
    x : ndarray, shape (P, D)
        Positions in bohr (rows with non-finite entries are skipped).

    Returns
    -------
    float
        ``omega_max`` in hartree (= rad per atomic time unit): the square root of the largest
        positive eigenvalue of the mass-weighted state-resolved curvature (module docstring);
        0.0 when no curvature is positive or ``x`` has no finite row. Up to ``DENSE_MAX_DOF``
        degrees of freedom the curvature matrix is built in full (2 D model rows per position);
        above, its largest eigenvalue comes from a short Lanczos run (``scipy.sparse.linalg.eigsh``
        on curvature-vector products, two model rows each) at ``LANCZOS_POINTS`` positions: a
        lower bound that is within a few per cent for the stiffest mode.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    x = x[np.isfinite(x).all(axis=1)]
    if x.shape[0] == 0:
        return 0.0
    s = 1.0 / np.sqrt(np.broadcast_to(np.asarray(model.masses, dtype=np.float64), (x.shape[1],)))
    top = _top_dense(model, x, s) if x.shape[1] <= DENSE_MAX_DOF else _top_lanczos(model, x, s)
    return float(np.sqrt(top)) if top > 0 else 0.0


def _states(model, x):
    H, _ = model.evaluate(np.ascontiguousarray(x))
    return np.linalg.eigh(H)[1]                                 # (P, ns, ns), columns = states


def _top_dense(model, x, s):
    P, D = x.shape
    step = FD_STEP * np.maximum(1.0, np.abs(x))                 # (P, D)
    disp = np.repeat(x[:, None, None, :], 2, axis=1).repeat(D, axis=2).copy()  # (P, 2, D, D)
    idx = np.arange(D)
    disp[:, 0, idx, idx] += step
    disp[:, 1, idx, idx] -= step
    _, dHd = model.evaluate(np.ascontiguousarray(disp.reshape(P * 2 * D, D)))
    ns = dHd.shape[-1]
    dHd = dHd.reshape(P, 2, D, D, ns, ns)                       # [point, sign, displaced k, j]
    hess = (dHd[:, 0] - dHd[:, 1]) / (2.0 * step[:, :, None, None, None])   # d_k d_j H
    V = _states(model, x)
    K = np.einsum("pia,pkjib,pba->pakj", np.conj(V), hess, V, optimize=True).real
    K = 0.5 * (K + np.swapaxes(K, -1, -2))                      # K^a_kj = <a| d_k d_j H |a>
    K *= s[None, None, :, None] * s[None, None, None, :]
    return float(np.max(np.linalg.eigvalsh(K)[..., -1]))


def _top_lanczos(model, x, s):
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
    x = x[:: max(1, -(-x.shape[0] // LANCZOS_POINTS))]
    D = x.shape[1]
    V = _states(model, x)
    ns = V.shape[-1]
    states = np.unique(np.linspace(0, ns - 1, min(ns, LANCZOS_STATES)).round().astype(int))
    top = -np.inf
    for p in range(x.shape[0]):
        h = FD_STEP * max(1.0, float(np.max(np.abs(x[p]))))
        for a in states:
            va = V[p, :, a]

            def matvec(v, p=p, va=va):
                u = s * np.ravel(v).real
                scale = float(np.max(np.abs(u)))
                if scale == 0.0:
                    return np.zeros(D)
                e = h / scale
                _, dH = model.evaluate(np.ascontiguousarray(np.stack([x[p] + e * u, x[p] - e * u])))
                g = np.einsum("i,sjib,b->sj", np.conj(va), dH, va).real   # <a| d_j H |a>
                return s * (g[0] - g[1]) / (2.0 * e)

            op = LinearOperator((D, D), matvec=matvec, dtype=np.float64)
            v0 = np.random.default_rng(p).standard_normal(D)
            try:
                val = eigsh(op, k=1, which="LA", v0=v0, ncv=min(D - 1, LANCZOS_NCV),
                            maxiter=LANCZOS_RESTARTS, tol=1e-2, return_eigenvectors=False)
            except ArpackNoConvergence as exc:
                val = exc.eigenvalues
            if len(val):
                top = max(top, float(np.max(val)))
    return top


def sample_rows(index: np.ndarray, ntotal: int, ndof: int) -> np.ndarray:
    """Which local rows to check: the trajectories whose global index is a multiple of a stride
    fixed by the swarm size, so that the set (and the check's verdict) does not depend on the
    number of MPI ranks. ``index``: this rank's global trajectory indices."""
    points = max(1, min(MAX_POINTS, MAX_ROWS // max(1, 2 * ndof)))
    stride = max(1, -(-int(ntotal) // points))
    return np.flatnonzero(np.asarray(index) % stride == 0)


def time_step_message(omega: float, dt: float) -> str:
    """The error text for ``omega dt >= 2`` ('' when the step is stable)."""
    if omega <= 0.0 or omega * dt < VERLET_LIMIT:
        return ""
    return (f"[run] dt = {dt:.4g} a.u. is beyond the stability limit of the velocity-Verlet "
            f"nuclear step for this model: its stiffest nuclear mode at the initial positions has "
            f"omega = {omega:.4g} hartree (period {2 * np.pi / omega:.4g} a.u.), and velocity "
            f"Verlet diverges for dt >= 2/omega = {VERLET_LIMIT / omega:.4g} a.u. (every method: "
            f"the amplitude grows each step). Use dt <= {0.2 / omega:.3g} a.u. (omega dt <= 0.2, "
            f"energy fluctuations of about 1 %)")


#: max_q of (q^2 / 2M) exp(-q^2 h^2 / 4): the fastest density mode a kernel field resolves
BOHM_CONSTANT = 2.0 / np.e


def bohm_frequency(h: np.ndarray, masses: np.ndarray, lam_min: float = 1.0) -> float:
    """Fastest fluid-element (Bohm) mode of the qhd quantum force with kernel fields.

    A density ripple of wavenumber q on the fluid elements oscillates under the quantum force at
    the free-particle frequency ``q^2 / (2 M)`` (linearised quantum hydrodynamics: the
    Bogoliubov dispersion without interaction). A kernel estimate of bandwidth ``h`` passes the
    ripple with the factor ``exp(-q^2 h^2 / 2)`` of the force amplitude, so the squared frequency
    is ``(q^2 / 2M)^2 exp(-q^2 h^2 / 2)``, largest at ``q h = 2``:
    ``omega_Q = (2/e) / (M h^2)``. Velocity Verlet then needs ``omega_Q dt < 2``; unlike the
    model's own frequencies this limit tightens as the swarm grows (``h ~ N^(-1/(D+10))`` for the
    qhd density rule) or a packet is squeezed.

    Parameters
    ----------
    h : ndarray, shape (D,)
        Density bandwidths, bohr.
    masses : ndarray, shape (D,)
        Nuclear masses, electron masses.
    lam_min : float
        Smallest adaptive bandwidth factor (1 without adaptive bandwidths).

    Returns
    -------
    float
        ``omega_Q`` in hartree; NaN when ``h`` is not finite.
    """
    h = np.asarray(h, dtype=np.float64) * float(lam_min)
    return float(BOHM_CONSTANT * np.max(1.0 / (np.asarray(masses, dtype=np.float64) * h * h)))
