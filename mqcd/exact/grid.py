"""The nuclear grid of the exact solver: automatic box, spacing and time step from the deck.

The rules (all lengths in bohr, momenta in a.u., energies in hartree, times in a.u.) are:

1. **Energy ceiling.** ``E_cut = max_{|x - x0| <= 6 w} E_s(x) + sum_k (|p0_k| + 6 sigma_p,k)^2 / (2 M_k)``,
   with ``w`` the density standard deviation of the initial packet, ``sigma_p = 1/(2 w)`` its momentum
   standard deviation and ``E_s`` the initial adiabatic surface (a chirp c widens the momentum
   range by ``|c| 8 w``). No component of the packet that carries more than ~1e-16 of the norm has
   more energy than this.
2. **Largest momentum.** ``p_max,k = sqrt(2 M_k (E_cut - V_min))``, ``V_min`` the lowest adiabatic
   energy anywhere in the box (so the energy released by descending to the lowest asymptote is
   included, and, conservatively, all of it may go into any one degree of freedom).
3. **Box.** Along each degree of freedom the union of (a) the initial packet ``x0 +- 8 w``,
   (b) for scattering models along dof 0 the interaction region ``[-R, R]`` and (c) the distance the
   fastest component can travel until ``t_end``: ``x0 +- (8 w + p_max t_end / M)``; then clipped to
   the bounding box of the energetically allowed region ``V_0(x) <= E_cut`` (lowest adiabatic
   surface) widened by ``4 w`` for tunnelling tails, but never smaller than (a) and (b). Steps 2-3 are
   iterated until ``V_min`` no longer changes. With the absorbing boundary on, (c) is replaced by a
   margin of ``8 w`` and an absorbing layer is added outside on both ends of every degree of
   freedom.
4. **Spacing.** ``dx_k <= pi / (2 p_max,k)``: the grid represents momenta up to twice the largest
   physical one. The number of points is rounded up to a fast FFT length, and the grid is placed so
   that ``x = 0`` lies half-way between two points (branching counts no point on the dividing line).
5. **Time step.** ``dt_rule = 0.5 / (T_max + dV)`` with ``T_max = max_k p_max,k^2 / (2 M_k)`` and
   ``dV = E_cut - V_min``, i.e. the fastest relevant phase turns by at most 0.5 rad (Strang error
   ``O(dt^2)``); the step used is ``min(run.dt, dt_rule)`` (or ``[exact] dt``) shortened so that a whole
   number of steps fills each output interval ``stride * run.dt``.

Every rule can be overridden from the deck's ``[exact]`` section (``box``, ``dx``, ``points``, ``dt``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

#: packet half-extent in density standard deviations (amplitude exp(-32) ~ 1e-14 at the edge)
PACKET_SIGMAS = 8.0
#: momentum standard deviations included in the largest momentum
MOMENTUM_SIGMAS = 6.0
#: tunnelling margin beyond the classically allowed region, in initial widths
TUNNEL_SIGMAS = 4.0
#: phase budget per step for the automatic time step (radians)
PHASE_PER_STEP = 0.5


@dataclass
class GridPlan:
    """The grid and step the exact solver will use, and how they were obtained.

    Attributes
    ----------
    box : list of (float, float)
        ``(xmin, xmax)`` per degree of freedom (bohr); the grid points are
        ``xmin + (j + 1/2) dx``, ``j = 0 .. npoints-1``.
    dx : list of float
        Spacing per degree of freedom (bohr).
    npoints : list of int
        Points per degree of freedom.
    p_max : list of float
        Largest physical momentum per degree of freedom (a.u.) used by the rules.
    e_cut, v_min : float
        Energy ceiling and lowest adiabatic energy (hartree).
    dt_rule : float
        Largest step allowed by the accuracy rule (a.u. of time).
    absorb_width : list of float
        Absorbing layer thickness per side and dof (bohr); zeros when the boundary is off.
    absorb_strength : float
        Peak absorption rate of the layer (hartree); 0 when off.
    """
    box: list
    dx: list
    npoints: list
    p_max: list
    e_cut: float
    v_min: float
    dt_rule: float
    absorb_width: list = field(default_factory=list)
    absorb_strength: float = 0.0

    def axes(self):
        """Grid coordinates per degree of freedom (bohr)."""
        return [lo + (np.arange(n) + 0.5) * d for (lo, _), d, n in zip(self.box, self.dx, self.npoints)]

    @property
    def ndof(self):
        return len(self.npoints)

    @property
    def size(self):
        return int(np.prod(self.npoints))

    @property
    def dvol(self):
        return float(np.prod(self.dx))


def _lowest_and_state(model, pts, state):
    """Lowest adiabatic energy and that of ``state`` at points ``pts`` (n, ndof)."""
    H, _ = model.evaluate(np.ascontiguousarray(pts, dtype=np.float64))
    E = np.linalg.eigvalsh(H)
    return E[:, 0], E[:, state]


def _probe(model, lo, hi, npts):
    axes = [np.linspace(a, b, n) for a, b, n in zip(lo, hi, npts)]
    mesh = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([m.ravel() for m in mesh], axis=1)
    return axes, pts


def _fast_len(n):
    n = max(int(n), 8)
    n = scipy.fft.next_fast_len(n)
    while n % 2:
        n = scipy.fft.next_fast_len(n + 1)
    return n


def check_dimensions(model):
    if model.ndof not in (1, 2):
        raise ValueError(f"the exact solver handles 1 or 2 nuclear degrees of freedom; model "
                         f"'{model.name}' has {model.ndof} (a grid in {model.ndof} dimensions is not "
                         f"supported)")


def plan_grid(deck, model) -> GridPlan:
    """Apply the grid rules of this module to ``deck`` (validated) for ``model``.

    Returns a :class:`GridPlan`; the ``[exact]`` overrides (``box``, ``dx``, ``points``,
    ``absorb*``) are honoured.
    """
    check_dimensions(model)
    ex = deck.exact
    ini = deck.initial
    D = model.ndof
    M = np.asarray(model.masses, dtype=float)
    x0 = np.asarray(ini["position"], dtype=float)
    p0 = np.asarray(ini["momentum"], dtype=float)
    w = np.asarray(ini["width"], dtype=float)
    state = int(ini["state"])
    t_end = float(deck.run["t_end"])
    R = float(model.interaction_radius)
    absorb = bool(ex.get("absorb", False))

    # 1. energy ceiling
    sig_p = 1.0 / (2.0 * w)
    nprobe0 = [401] if D == 1 else [41, 41]
    _, pts = _probe(model, x0 - 6 * w, x0 + 6 * w, nprobe0)
    _, es = _lowest_and_state(model, pts, state)
    chirp = np.asarray(ini.get("chirp") or [0.0] * D, dtype=float)
    p_spread = MOMENTUM_SIGMAS * sig_p + np.abs(chirp) * PACKET_SIGMAS * w
    e_cut = float(es.max() + np.sum((np.abs(p0) + p_spread) ** 2 / (2 * M)))

    # fixed part of the box: initial packet and interaction region
    core_lo = x0 - PACKET_SIGMAS * w
    core_hi = x0 + PACKET_SIGMAS * w
    if model.scattering:
        core_lo[0] = min(core_lo[0], -R)
        core_hi[0] = max(core_hi[0], R)

    nprobe = [20001] if D == 1 else [201, 201]
    v_min = float(es.min())
    lo, hi = core_lo.copy(), core_hi.copy()
    for _ in range(8):
        p_max = np.sqrt(2.0 * M * max(e_cut - v_min, 1e-300))
        if absorb:
            reach_lo, reach_hi = core_lo - PACKET_SIGMAS * w, core_hi + PACKET_SIGMAS * w
        else:
            travel = PACKET_SIGMAS * w + p_max / M * t_end
            reach_lo = np.minimum(core_lo, x0 - travel)
            reach_hi = np.maximum(core_hi, x0 + travel)
        axes, pts = _probe(model, reach_lo, reach_hi, nprobe)
        v0, _ = _lowest_and_state(model, pts, state)
        allowed = (v0 <= e_cut).reshape([len(a) for a in axes])
        new_lo, new_hi = reach_lo.copy(), reach_hi.copy()
        for k in range(D):
            other = tuple(j for j in range(D) if j != k)
            line = allowed.any(axis=other) if other else allowed
            idx = np.nonzero(line)[0]
            if idx.size:
                a = axes[k]
                new_lo[k] = max(reach_lo[k], a[idx[0]] - TUNNEL_SIGMAS * w[k])
                new_hi[k] = min(reach_hi[k], a[idx[-1]] + TUNNEL_SIGMAS * w[k])
        new_lo = np.minimum(new_lo, core_lo)
        new_hi = np.maximum(new_hi, core_hi)
        # lowest energy inside the clipped box
        inside = np.ones(len(pts), dtype=bool)
        for k in range(D):
            inside &= (pts[:, k] >= new_lo[k]) & (pts[:, k] <= new_hi[k])
        v_new = min(v_min, float(v0[inside].min()))
        converged = (v_new == v_min and np.allclose(new_lo, lo) and np.allclose(new_hi, hi))
        lo, hi, v_min = new_lo, new_hi, v_new
        if converged:
            break
    p_max = np.sqrt(2.0 * M * max(e_cut - v_min, 1e-300))

    # absorbing layer
    absorb_width = [0.0] * D
    strength = 0.0
    if absorb:
        L = float(ex.get("absorb_width", 0.0))
        if L <= 0:
            L = None
        widths = []
        for k in range(D):
            # default: two de Broglie wavelengths of a component with momentum sigma_p (the slow
            # end of the packet), at least 10 bohr, so the ramp is gentle for every component
            lk = L if L is not None else max(2.0 * 2.0 * math.pi / sig_p[k], 10.0)
            widths.append(lk)
        absorb_width = widths
        strength = float(ex.get("absorb_strength", 0.0))
        if strength <= 0:
            # the fastest component must be damped by exp(-40) in density before the box edge:
            # 2 * int W dx / v >= 40 with W = W0 s^2 -> W0 >= 60 v_max / L
            strength = float(max(60.0 * p_max[k] / M[k] / absorb_width[k] for k in range(D)))
        lo = lo - np.asarray(absorb_width)
        hi = hi + np.asarray(absorb_width)

    # explicit box
    box_o = list(ex.get("box", []) or [])
    if box_o:
        if len(box_o) != 2 * D:
            raise ValueError(f"[exact] box needs 2 entries per degree of freedom (xmin, xmax"
                             f"{', ymin, ymax' if D == 2 else ''}); got {len(box_o)}")
        lo = np.array(box_o[0::2], dtype=float)
        hi = np.array(box_o[1::2], dtype=float)
        if np.any(hi <= lo):
            raise ValueError(f"[exact] box = {box_o}: each xmax must exceed its xmin")
    dx_o = list(ex.get("dx", []) or [])
    pts_o = list(ex.get("points", []) or [])
    for name, v in (("dx", dx_o), ("points", pts_o)):
        if v and len(v) not in (1, D):
            raise ValueError(f"[exact] {name} needs one entry (all dof) or {D}; got {len(v)}")
    if dx_o:
        dx_o = dx_o * D if len(dx_o) == 1 else dx_o
    if pts_o:
        pts_o = pts_o * D if len(pts_o) == 1 else pts_o

    box, dxs, ns = [], [], []
    for k in range(D):
        length = hi[k] - lo[k]
        if dx_o and pts_o:
            if box_o:
                raise ValueError("[exact] give at most two of box, dx and points")
            n = int(pts_o[k])
            d = float(dx_o[k])
            c = 0.5 * (lo[k] + hi[k])
            lo_k = c - 0.5 * n * d
        elif pts_o:
            n = int(pts_o[k])
            d = length / n
            lo_k = lo[k]
        else:
            d_target = float(dx_o[k]) if dx_o else math.pi / (2.0 * p_max[k])
            n = _fast_len(math.ceil(length / d_target) + 1)
            d = length / (n - 1)
            lo_k = lo[k]
        if n < 4:
            raise ValueError(f"[exact] {n} grid points along dof {k} is too few")
        # put x = 0 half-way between two points: grid points at (m + 1/2) d for integer m
        # (shifts the box by at most d/2)
        lo_k = math.floor(lo_k / d + 0.5) * d
        box.append((float(lo_k), float(lo_k + n * d)))
        dxs.append(float(d))
        ns.append(int(n))

    t_max = float(np.max(p_max ** 2 / (2 * M)))
    dt_rule = PHASE_PER_STEP / (t_max + max(e_cut - v_min, 0.0))
    return GridPlan(box=box, dx=dxs, npoints=ns, p_max=[float(p) for p in p_max], e_cut=e_cut,
                    v_min=v_min, dt_rule=float(dt_rule), absorb_width=[float(a) for a in absorb_width],
                    absorb_strength=strength)
