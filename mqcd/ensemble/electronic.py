"""Initial electronic state of every trajectory: the conditional density matrix rho (diabatic
basis) and, for surface hopping, the active adiabatic state.

``[initial]`` keys (docs/initial.md):

* ``basis = "adiabatic"`` (default) or ``"diabatic"``: the basis in which ``state``,
  ``amplitudes`` and ``density_matrix`` are given;
* ``state``: a pure basis state, rho = |state><state|. In the adiabatic basis it is the adiabatic
  state at each trajectory's own position (a projector: no eigenvector phase enters); in the
  diabatic basis the same matrix for every trajectory;
* ``amplitudes``: a coherent superposition ``sum_n c_n |n>`` (numbers or ``[re, im]`` pairs, one
  per state; normalised here);
* ``density_matrix``: any mixed or coherent state (ns rows of ns numbers or ``[re, im]``
  pairs; must be Hermitian and positive semi-definite; normalised to trace 1 here);
* ``electrons = "thermal"`` / ``"fermi"``: the canonical state exp(-H/kT)/Z of a many-state
  model or the one-body density matrix f(h) of a one-body model at each trajectory's position
  (mqcd/friction/equilibrium.py; docs/friction.md).

Adiabatic coherences depend on the phases of the eigenvectors; for ``amplitudes`` or a
``density_matrix`` in the adiabatic basis every eigenvector is taken with its largest diabatic
component real and positive (the first such component on a tie), at each trajectory's position.

Surface hopping starts on the adiabatic state ``state`` when that is the (pure, adiabatic) initial
state; otherwise trajectory i's active state is drawn from its adiabatic populations
``P_n = <n|rho|n>`` with a uniform number from its own stream (``STREAM_ACTIVE``): independent of
the number of trajectories and of MPI ranks.
"""
from __future__ import annotations

import numpy as np

from ..electronic.adiabatic import eigh, pure_state_density
from .streams import STREAM_ACTIVE, uniforms

#: tolerances of the density-matrix checks (relative to its largest element)
HERMITIAN_TOL = 1e-10
PSD_TOL = 1e-10


def _complex_entries(v, where):
    """A number or a [re, im] pair -> complex; ValueError naming ``where`` otherwise."""
    if isinstance(v, bool):
        raise ValueError(f"{where}: {v!r} is not a number or a [re, im] pair")
    if isinstance(v, (int, float)):
        return complex(v)
    if isinstance(v, list) and len(v) == 2 and all(isinstance(u, (int, float))
                                                   and not isinstance(u, bool) for u in v):
        return complex(v[0], v[1])
    raise ValueError(f"{where}: {v!r} is not a number or a [re, im] pair")


def parse_amplitudes(value, ns):
    """``[initial] amplitudes`` -> normalised complex vector (ns,)."""
    if not isinstance(value, list) or len(value) != ns:
        raise ValueError(f"[initial] amplitudes must list {ns} entries (one per state), got "
                         f"{value!r}")
    c = np.array([_complex_entries(v, f"[initial] amplitudes entry {i}")
                  for i, v in enumerate(value)])
    norm = np.linalg.norm(c)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("[initial] amplitudes: the vector is zero or not finite")
    return c / norm


def parse_density_matrix(value, ns):
    """``[initial] density_matrix`` -> Hermitian, positive semi-definite, trace-1 (ns, ns)."""
    if not isinstance(value, list) or len(value) != ns or not all(
            isinstance(r, list) and len(r) == ns for r in value):
        raise ValueError(f"[initial] density_matrix must be {ns} rows of {ns} entries (numbers or "
                         f"[re, im] pairs), got {value!r}")
    rho = np.array([[_complex_entries(v, f"[initial] density_matrix[{i}][{j}]")
                     for j, v in enumerate(r)] for i, r in enumerate(value)])
    scale = np.max(np.abs(rho))
    if not np.all(np.isfinite(rho)) or scale == 0:
        raise ValueError("[initial] density_matrix is zero or not finite")
    herm = np.max(np.abs(rho - rho.conj().T))
    if herm > HERMITIAN_TOL * scale:
        raise ValueError(f"[initial] density_matrix is not Hermitian (max |rho - rho^dagger| = "
                         f"{herm:.3g}): give rho[j][i] = conj(rho[i][j])")
    rho = 0.5 * (rho + rho.conj().T)
    ev = np.linalg.eigvalsh(rho)
    if ev.min() < -PSD_TOL * scale:
        raise ValueError(f"[initial] density_matrix has a negative eigenvalue {ev.min():.3g}: a "
                         "density matrix is positive semi-definite")
    tr = np.trace(rho).real
    if tr <= 0:
        raise ValueError("[initial] density_matrix has trace <= 0")
    return rho / tr


def basis_matrix(initial, ns):
    """The initial state in its basis as an (ns, ns) matrix, or None for a pure ``state``."""
    if initial.get("density_matrix"):
        return parse_density_matrix(initial["density_matrix"], ns)
    if initial.get("amplitudes"):
        c = parse_amplitudes(initial["amplitudes"], ns)
        return np.outer(c, c.conj())
    return None


def fix_phases(V):
    """Eigenvectors (columns) with their largest-magnitude component real and positive."""
    V = np.array(V, dtype=np.complex128)
    k = np.argmax(np.abs(V), axis=1)                 # (n, ns): row of the largest component
    big = np.take_along_axis(V, k[:, None, :], axis=1)
    return V * (np.abs(big) / big)


def initial_density(model, initial, H, keys, state=None):
    """``(rho, active)`` for trajectories with diabatic Hamiltonians ``H`` (n, ns, ns) and stream
    ``keys``; ``state`` (n,) overrides ``[initial] state`` per trajectory (gibbs)."""
    n, ns, _ = H.shape
    el = initial.get("electrons", "pure")
    if el != "pure":                 # thermal / Fermi-Dirac electrons (mqcd/friction)
        from ..friction.calculator import electron_settings
        from ..friction.equilibrium import equilibrium_density
        _, kT, mu, n_el, _ = electron_settings(initial)
        rho, _ = equilibrium_density(H, el, kT, mu, n_el)
        _, V = eigh(np.ascontiguousarray(H))
        return rho, draw_active(rho, V, keys) if el == "thermal" else np.zeros(n, np.int64)
    basis = initial.get("basis", "adiabatic")
    M = basis_matrix(initial, ns)
    st = np.full(n, initial["state"], np.int64) if state is None else np.asarray(state, np.int64)
    E, V = eigh(np.ascontiguousarray(H))
    if M is None and basis == "adiabatic":
        rho = np.empty((n, ns, ns), dtype=np.complex128)
        for s in np.unique(st):
            sel = st == s
            rho[sel] = pure_state_density(V[sel], int(s))
        return rho, st.copy()
    if M is None:                                    # pure diabatic state(s)
        rho = np.zeros((n, ns, ns), dtype=np.complex128)
        rho[np.arange(n), st, st] = 1.0
    elif basis == "diabatic":
        rho = np.repeat(M[None], n, axis=0)
    else:
        Vf = fix_phases(V)
        rho = np.einsum("nab,bc,ndc->nad", Vf, M, Vf.conj())
    return rho, draw_active(rho, V, keys)


def draw_active(rho, V, keys):
    """Active adiabatic state per trajectory drawn from its populations <n|rho|n>."""
    P = np.einsum("nka,nkl,nla->na", V.conj(), rho, V).real
    P = np.clip(P, 0.0, None)
    cum = np.cumsum(P, axis=1)
    u = uniforms(keys, 0, STREAM_ACTIVE, np.empty(keys.shape[0])) * cum[:, -1]
    active = np.minimum((cum <= u[:, None]).sum(axis=1), rho.shape[1] - 1)
    return active.astype(np.int64)
