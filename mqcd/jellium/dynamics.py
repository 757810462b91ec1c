"""Motion of a diatomic impurity in the HEG under a current pulse (NTG eqs. (14)-(16), App. D-E).

The two nuclei (charges Z_a, masses M_a) sit at the equilibrium distance d_eq of eqs. (10)-(11).
A current pulse of drift velocity u(t) = j(t)/n (j the electron *particle* current density) makes
an angle theta with the bond; by App. D the components parallel (u cos theta) and perpendicular
(u sin theta) to the bond evolve independently. In each direction, in the low-frequency (Markov)
form (E1)-(E5) of eqs. (14)-(15) written for the individual nuclei,

    M_a dV_a/dt = sum_b gamma_ab (u(t) - V_b)     wind (gamma u) + friction (-gamma V)
                  - Z_a du/dt                     direct (screened) field, eq. (12)
                  + F_bond,a                      -k (x_a - x_b): k = k_par or k_perp = 0

(``mqcd.jellium.friction`` for gamma, ``mqcd.jellium.interaction`` for k). A rectangular pulse
(eq. (16)) makes du/dt a pair of delta functions: velocity kicks -Z_a Delta u / M_a at its edges;
a "smooth" pulse ramps u with sin^2 over ``rise_time``. Integration: scipy.integrate.solve_ivp
(DOP853) piecewise between the pulse edges; the work done by each force is integrated alongside
(energy bookkeeping: kinetic + bond energy - initial = W_wind + W_friction + W_direct).
``propagate_exact`` gives the same solution from matrix exponentials (the equations are linear
with piecewise-constant coefficients), ``normal_modes`` the exact decay rates and frequencies of the
coupled c.m./relative motion, to be compared with kappa and omega_0 of (E9)-(E13).

Units: time in atomic_unit_of_time, lengths in bohr, velocities in bohr/atomic_unit_of_time,
masses in electron_mass, charges in elementary_charge, forces in hartree/bohr, energies in hartree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import integrate, linalg, optimize

from . import friction as fr
from . import interaction as inter
from .response import Response

GEOMETRIES = ("par", "perp")
SHAPES = ("rectangular", "smooth")


@dataclass
class MotionCoefficients:
    """Everything the equations of motion need, for one medium (rs, kernel) and one impurity.

    Build with :meth:`compute`. Attributes: ``d_eq`` (bohr), ``k_par``, ``k_perp`` (hartree/bohr^2),
    ``gamma`` and ``gamma_viscous`` (dicts "par"/"perp" -> 2x2 arrays, hartree
    atomic_unit_of_time/bohr^2; the viscous part is the share of gamma from d f_xc/d omega),
    ``integrals`` (I0, I_par, I_perp), ``Z``, ``M`` (length-2 arrays), ``n`` (1/bohr^3).
    """
    rs: float
    kernel: str
    lda: str
    Z: np.ndarray
    M: np.ndarray
    n: float
    d_eq: float
    k_par: float
    k_perp: float
    integrals: dict
    gamma: dict
    gamma_viscous: dict = field(default_factory=dict)

    @classmethod
    def compute(cls, rs: float, kernel: str, Z, M, lda: str = "pz81",
                d_eq: float | None = None) -> "MotionCoefficients":
        """Coefficients for charges ``Z`` (elementary_charge) and masses ``M`` (electron_mass).

        ``d_eq`` defaults to the equilibrium distance of eq. (10) for this medium.
        """
        Z = np.asarray(Z, dtype=float)
        M = np.asarray(M, dtype=float)
        if Z.shape != (2,) or M.shape != (2,):
            raise ValueError("charges and masses must have two entries each (the two nuclei)")
        if np.any(M <= 0):
            raise ValueError(f"masses = {M.tolist()}: must be > 0 (electron_mass)")
        if np.any(Z == 0):
            raise ValueError(f"charges = {Z.tolist()}: both nuclei must be charged (the bond of "
                             f"eqs. (10)-(11) is proportional to Z1 Z2)")
        resp = Response(rs, kernel, lda)
        if d_eq is None:
            d_eq = inter.equilibrium_distance(resp, charge_product=Z[0] * Z[1])
        k_par, k_perp = inter.stiffness(resp, d_eq, Z[0], Z[1])
        ints = fr.friction_integrals(resp, d_eq)
        g_par, g_perp = fr.friction_matrices(resp, d_eq, Z[0], Z[1], ints)
        gv = {"par": np.zeros((2, 2)), "perp": np.zeros((2, 2))}
        if resp.kernel.dynamic:
            iv = fr.friction_integrals(resp, d_eq, part="viscous")
            gv["par"], gv["perp"] = fr.friction_matrices(resp, d_eq, Z[0], Z[1], iv)
        return cls(rs=rs, kernel=resp.kernel.name, lda=lda, Z=Z, M=M, n=resp.gas.n, d_eq=d_eq,
                   k_par=k_par, k_perp=k_perp, integrals=ints,
                   gamma={"par": g_par, "perp": g_perp}, gamma_viscous=gv)

    def stiffness(self, geometry: str) -> float:
        return self.k_par if geometry == "par" else self.k_perp

    @property
    def mu(self) -> float:
        """Reduced mass M1 M2 / (M1 + M2), electron_mass."""
        return self.M[0] * self.M[1] / self.M.sum()

    def kappa(self, geometry: str) -> float:
        """Damping rate of the relative motion, eqs. (E11) (par) and (E13) (perp), 1/a.u.-time.

        kappa = [gamma_11 M2/M1 + gamma_22 M1/M2 - 2 gamma_12] / (2 M_c).
        """
        g = self.gamma[geometry]
        M1, M2 = self.M
        return (g[0, 0] * M2 / M1 + g[1, 1] * M1 / M2 - 2.0 * g[0, 1]) / (2.0 * (M1 + M2))

    def cm_relative(self, geometry: str) -> dict:
        """Markov coefficients of the c.m./relative equations (D7)-(D10), (E2)-(E13):

            M_c dV_c/dt = wind_cm (u - V_c) - cross_cm V_r + direct,
            dV_r/dt     = wind_rel (u - V_c) - 2 kappa V_r - omega0^2 R_r + direct,

        from the friction matrix (the paper's brackets, ``friction.cm_relative_coefficients``, give
        the same numbers; tested). wind_cm, cross_cm in hartree atomic_unit_of_time/bohr^2,
        wind_rel, kappa in 1/atomic_unit_of_time.
        """
        g = self.gamma[geometry]
        M1, M2 = self.M
        return {"wind_cm": float(g.sum()),
                "cross_cm": float(-(g[:, 0].sum() * M2 - g[:, 1].sum() * M1) / (M1 + M2)),
                "wind_rel": float(g[1].sum() / M2 - g[0].sum() / M1),
                "kappa": self.kappa(geometry)}

    def omega0_sq(self, geometry: str) -> float:
        """omega_0^2 = k (1/M1 + 1/M2): eq. (E10) (par), (E12) (perp: k = F(d_eq)/d_eq = 0)."""
        return self.stiffness(geometry) / self.mu

    def cm_friction_rate(self, geometry: str) -> float:
        """Relaxation rate of the c.m. velocity towards the drift, sum(gamma)/M_c (1/a.u.-time)."""
        return float(self.gamma[geometry].sum() / self.M.sum())

    def summary(self) -> dict:
        """Plain-number summary (JSON-ready), atomic units (see docs/jellium.md for each entry)."""
        out = {"rs": self.rs, "kernel": self.kernel, "lda": self.lda, "d_eq": self.d_eq,
               "k_par": self.k_par, "k_perp": self.k_perp, **self.integrals,
               "charges": self.Z.tolist(), "masses": self.M.tolist()}
        for g in GEOMETRIES:
            w0 = self.omega0_sq(g)
            out[f"gamma_{g}"] = self.gamma[g].tolist()
            out[f"gamma_viscous_{g}"] = self.gamma_viscous[g].tolist()
            out[f"kappa_{g}"] = self.kappa(g)
            out[f"omega0_sq_{g}"] = w0
            out[f"cm_rate_{g}"] = self.cm_friction_rate(g)
            cr = self.cm_relative(g)
            out[f"wind_cm_{g}"], out[f"cross_cm_{g}"] = cr["wind_cm"], cr["cross_cm"]
            out[f"wind_rel_{g}"] = cr["wind_rel"]
            tot = self.gamma[g].sum()
            out[f"viscous_share_cm_{g}"] = float(self.gamma_viscous[g].sum() / tot)
        return out


@dataclass
class Pulse:
    """Drift velocity u(t) = j(t)/n of the current pulse.

    ``shape`` "rectangular": u = u0 for 0 <= t < duration (NTG eq. (16)); "smooth": u rises as
    u0 sin^2(pi t / (2 rise_time)) over [0, rise_time] and falls the same way over
    [duration, duration + rise_time]. ``angle`` (degrees) between current and bond.
    """
    drift_velocity: float
    duration: float
    shape: str = "rectangular"
    rise_time: float = 0.0
    angle: float = 0.0

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"pulse shape {self.shape!r}; allowed: " + ", ".join(SHAPES))
        if not self.duration > 0:
            raise ValueError(f"pulse duration = {self.duration}: must be > 0")
        if self.shape == "smooth" and not 0 < self.rise_time <= self.duration:
            raise ValueError(f"rise_time = {self.rise_time}: a smooth pulse needs "
                             f"0 < rise_time <= duration")

    def component(self, geometry: str) -> float:
        a = math.radians(self.angle)
        c = math.cos(a) if geometry == "par" else math.sin(a)
        return 0.0 if abs(c) < 1e-15 else c      # exactly 0 at 90 deg (no 6e-17 residue)

    def _s(self, x):
        x = np.clip(x, 0.0, 1.0)
        return np.sin(0.5 * np.pi * x) ** 2

    def _ds(self, x):
        inside = (x > 0) & (x < 1)
        return np.where(inside, 0.5 * np.pi * np.sin(np.pi * np.clip(x, 0, 1)), 0.0)

    def u(self, t):
        """Drift velocity (bohr/a.u.-time) at times t (magnitude along the current direction)."""
        t = np.asarray(t, dtype=float)
        if self.shape == "rectangular":
            return np.where((t >= 0) & (t < self.duration), self.drift_velocity, 0.0)
        tau = self.rise_time
        return self.drift_velocity * (self._s(t / tau) - self._s((t - self.duration) / tau))

    def dudt(self, t):
        """du/dt without the delta functions of a rectangular pulse (see ``kicks``)."""
        t = np.asarray(t, dtype=float)
        if self.shape == "rectangular":
            return np.zeros_like(t)
        tau = self.rise_time
        return self.drift_velocity / tau * (self._ds(t / tau) - self._ds((t - self.duration) / tau))

    def kicks(self):
        """[(time, jump of u)] of a rectangular pulse (empty for a smooth one)."""
        if self.shape == "rectangular":
            return [(0.0, self.drift_velocity), (self.duration, -self.drift_velocity)]
        return []

    def breakpoints(self):
        if self.shape == "rectangular":
            return [0.0, self.duration]
        return [0.0, self.rise_time, self.duration, self.duration + self.rise_time]


def _forces(c: MotionCoefficients, geometry, x, v, u, dudt):
    """Forces on the two nuclei (..., 2) for displacements x, velocities v (..., 2)."""
    g = c.gamma[geometry]
    k = c.stiffness(geometry)
    wind = np.multiply.outer(u, g.sum(axis=1))
    fric = -v @ g.T
    stretch = x[..., 1] - x[..., 0]
    bond = np.stack([k * stretch, -k * stretch], axis=-1)
    direct = -np.multiply.outer(dudt, c.Z)
    visc = np.multiply.outer(u, c.gamma_viscous[geometry].sum(axis=1)) - v @ c.gamma_viscous[geometry].T
    return wind, fric, bond, direct, visc


def simulate(c: MotionCoefficients, pulse: Pulse, times, initial: dict | None = None,
             rtol: float = 1e-10) -> dict:
    """Integrate the equations of motion and return trajectories, forces and energies.

    Parameters
    ----------
    c : MotionCoefficients
    pulse : Pulse
    times : array_like
        Increasing output times (atomic_unit_of_time); integration starts at times[0] from the
        equilibrium at rest (plus ``initial``). At a kick time the value after the kick is given.
    initial : dict, optional
        {"par": (x1, x2, v1, v2), "perp": (...)}: initial displacements (bohr) and velocities
        (bohr/atomic_unit_of_time) of the two nuclei per direction; default all zero.
    rtol : float
        Relative tolerance of solve_ivp (absolute tolerances are scaled by the drift velocity).

    Returns
    -------
    dict
        "time", "drift_velocity" and per geometry g: "g/x", "g/v" (nt, 2), "g/R_rel" (x2 - x1),
        "g/V_rel", "g/V_cm", "g/force/{wind,friction,bond,direct,viscous}" (nt, 2),
        "g/energy/{kinetic,bond}", "g/work/{wind,friction,direct}" (nt).
    """
    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or t.size < 2 or np.any(np.diff(t) <= 0):
        raise ValueError("times must be an increasing 1-D array with at least two entries")
    initial = initial or {}
    out = {"time": t, "drift_velocity": pulse.u(t)}
    u0 = abs(pulse.drift_velocity) or 1.0
    span = t[-1] - t[0]
    edges = [b for b in pulse.breakpoints() if t[0] < b < t[-1]]
    bounds = [t[0]] + edges + [t[-1]]
    kicks = {tk: du for tk, du in pulse.kicks()}
    for geo in GEOMETRIES:
        cg = pulse.component(geo)
        g = c.gamma[geo]
        k = c.stiffness(geo)
        gsum = g.sum(axis=1)

        def rhs(tt, y):
            x, v = y[0:2], y[2:4]
            u = cg * float(pulse.u(tt))
            ud = cg * float(pulse.dudt(tt))
            s = x[1] - x[0]
            fw = gsum * u
            ff = -g @ v
            fd = -c.Z * ud
            a = (fw + ff + np.array([k * s, -k * s]) + fd) / c.M
            return np.concatenate([v, a, [v @ fw, v @ ff, v @ fd]])

        y = np.zeros(7)
        y[:4] = np.asarray(initial.get(geo, (0, 0, 0, 0)), dtype=float)
        scale = np.array([u0 * span, u0 * span, u0, u0] + [c.M.max() * u0 ** 2] * 3)
        ys = np.empty((t.size, 7))
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            if a in kicks:
                dv = -c.Z * cg * kicks[a] / c.M
                ke0 = 0.5 * np.sum(c.M * y[2:4] ** 2)
                y[2:4] += dv
                y[6] += 0.5 * np.sum(c.M * y[2:4] ** 2) - ke0
            last = b == bounds[-1]
            sel = (t >= a) & ((t <= b) if last else (t < b))
            sol = integrate.solve_ivp(rhs, (a, b), y, method="DOP853", rtol=rtol,
                                      atol=rtol * scale * 1e-3, dense_output=True)
            if not sol.success:
                raise RuntimeError(f"integration failed in [{a}, {b}]: {sol.message}")
            if np.any(sel):
                ys[sel] = sol.sol(t[sel]).T
            y = sol.y[:, -1].copy()
        if t[-1] in kicks and t[-1] > t[0]:      # a kick exactly at the last output time
            dv = -c.Z * cg * kicks[t[-1]] / c.M
            ke0 = 0.5 * np.sum(c.M * ys[-1, 2:4] ** 2)
            ys[-1, 2:4] += dv
            ys[-1, 6] += 0.5 * np.sum(c.M * ys[-1, 2:4] ** 2) - ke0
        x, v = ys[:, 0:2], ys[:, 2:4]
        u = cg * pulse.u(t)
        wind, fric, bond, direct, visc = _forces(c, geo, x, v, u, cg * pulse.dudt(t))
        M = c.M
        out.update({
            f"{geo}/x": x, f"{geo}/v": v,
            f"{geo}/R_rel": x[:, 1] - x[:, 0], f"{geo}/V_rel": v[:, 1] - v[:, 0],
            f"{geo}/V_cm": (v @ M) / M.sum(),
            f"{geo}/force/wind": wind, f"{geo}/force/friction": fric, f"{geo}/force/bond": bond,
            f"{geo}/force/direct": direct, f"{geo}/force/viscous": visc,
            f"{geo}/energy/kinetic": 0.5 * (v ** 2) @ M,
            f"{geo}/energy/bond": 0.5 * k * (x[:, 1] - x[:, 0]) ** 2,
            f"{geo}/work/wind": ys[:, 4], f"{geo}/work/friction": ys[:, 5],
            f"{geo}/work/direct": ys[:, 6],
        })
    return out


def viscous_share(out: dict, geometry: str) -> np.ndarray:
    """Viscous part / (wind + friction) of the total force on the impurity (c.m.), per output time.

    ``out`` is a :func:`simulate` result; NaN where the wind + friction force vanishes (before the
    pulse, or when it is below 1e-9 of its maximum).
    """
    fw = out[f"{geometry}/force/wind"].sum(axis=1) + out[f"{geometry}/force/friction"].sum(axis=1)
    fv = out[f"{geometry}/force/viscous"].sum(axis=1)
    big = np.abs(fw) > 1e-9 * max(np.abs(fw).max(), 1e-300)
    return np.where(big, fv / np.where(big, fw, 1.0), np.nan)


def system_matrix(c: MotionCoefficients, geometry: str) -> np.ndarray:
    """A of dy/dt = A y + b u(t) for y = (x1, x2, v1, v2) (homogeneous part), 1/a.u.-time."""
    k = c.stiffness(geometry)
    Minv = np.diag(1.0 / c.M)
    K = k * np.array([[-1.0, 1.0], [1.0, -1.0]])
    A = np.zeros((4, 4))
    A[0:2, 2:4] = np.eye(2)
    A[2:4, 0:2] = Minv @ K
    A[2:4, 2:4] = -Minv @ c.gamma[geometry]
    return A


def propagate_exact(c: MotionCoefficients, pulse: Pulse, times, geometry: str, y0=None):
    """(nt, 4) states (x1, x2, v1, v2) of a rectangular pulse by matrix exponentials (scipy.linalg.expm).

    Exact for the linear equations of ``simulate`` (piecewise-constant drive, kicks at the edges).
    """
    if pulse.shape != "rectangular":
        raise ValueError("propagate_exact handles rectangular pulses only")
    t = np.asarray(times, dtype=float)
    cg = pulse.component(geometry)
    aug = np.zeros((5, 5))
    aug[:4, :4] = system_matrix(c, geometry)
    b = np.concatenate([np.zeros(2), c.gamma[geometry].sum(axis=1) / c.M])
    y = np.zeros(4) if y0 is None else np.asarray(y0, dtype=float).copy()
    kicks = dict(pulse.kicks())
    events = sorted(set(t.tolist()) | {tk for tk in kicks if t[0] <= tk <= t[-1]})
    out, tprev = {}, t[0]
    for te in events:
        if te > tprev:                      # u is constant between the edges of the pulse
            aug[:4, 4] = b * cg * float(pulse.u(0.5 * (tprev + te)))
            E = linalg.expm(aug * (te - tprev))
            y = E[:4, :4] @ y + E[:4, 4]
            tprev = te
        if te in kicks:
            y[2:4] += -c.Z * cg * kicks[te] / c.M
        out[te] = y.copy()
    return np.array([out[ti] for ti in t.tolist()])


def normal_modes(c: MotionCoefficients, geometry: str) -> np.ndarray:
    """Eigenvalues of the homogeneous equations (4 complex numbers, 1/a.u.-time).

    For the parallel geometry an oscillating pair -kappa_exact +- i omega_exact (compare with (E9):
    -kappa +- i sqrt(omega_0^2 - kappa^2)), the c.m. relaxation -sum(gamma)/M_c (approximately) and 0
    (free translation). Perpendicular: no oscillation (omega_0 = 0, eq. (E12)).
    """
    return np.linalg.eigvals(system_matrix(c, geometry))


def fit_damped_oscillation(t, r, omega_guess: float, kappa_guess: float):
    """Fit r(t) = A exp(-kappa t) cos(omega t + phi) + B exp(-lam t) + C (scipy.optimize.curve_fit).

    Returns (omega, kappa) in 1/a.u.-time. The extra exponential absorbs the projection of the
    c.m. relaxation onto the relative coordinate.
    """
    t = np.asarray(t, float)
    r = np.asarray(r, float)
    t0 = t[0]
    scale = np.max(np.abs(r)) or 1.0

    def model(tt, A, kap, om, phi, B, lam, C):
        s = tt - t0
        return A * np.exp(-kap * s) * np.cos(om * s + phi) + B * np.exp(-lam * s) + C
    p0 = [scale, kappa_guess, omega_guess, 0.0, 0.0, kappa_guess, 0.0]
    best = None
    for phi in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        p0[3] = phi
        try:
            p, _ = optimize.curve_fit(model, t, r / scale, p0=[1.0] + p0[1:], maxfev=20000)
        except RuntimeError:
            continue
        res = np.sum((model(t, *p) - r / scale) ** 2)
        if best is None or res < best[0]:
            best = (res, p)
    if best is None:
        raise RuntimeError("damped-oscillation fit did not converge")
    p = best[1]
    return abs(p[2]), p[1]
