"""``mqcd jellium run``: a deck -> coefficients and trajectories for each kernel -> HDF5 (+ PNG).

HDF5 layout (every dataset has a pint-parsable ``units`` attribute; docs/jellium.md lists them):

    time                                    (nt)        atomic_unit_of_time
    pulse/drift_velocity, pulse/current_density (nt); pulse/u0, duration, rise_time, angle
    medium/rs, medium/density; impurity/charges, impurity/masses (2)
    <kernel>/coefficients/<name>            scalars and 2x2 friction matrices
    <kernel>/<g>/x, v                       (nt, 2)     g = par | perp (components w.r.t. the bond)
    <kernel>/<g>/R_rel, V_rel, V_cm         (nt)
    <kernel>/<g>/force/{wind,friction,bond,direct,viscous}   (nt, 2)   hartree / bohr
    <kernel>/<g>/energy/{kinetic,bond}, work/{wind,friction,direct}   (nt)  hartree
    <kernel>/<g>/viscous_share              (nt)        viscous / (wind + friction) force on the c.m.
"""
from __future__ import annotations

import json
import logging
import time as _time

import numpy as np

from .deck import JelliumDeck
from .dynamics import GEOMETRIES, MotionCoefficients, Pulse, simulate, viscous_share

log = logging.getLogger(__name__)

U_T = "atomic_unit_of_time"
U_V = "bohr / atomic_unit_of_time"
U_F = "hartree / bohr"
U_E = "hartree"
U_GAMMA = "hartree * atomic_unit_of_time / bohr ** 2"
COEFF_UNITS = {
    "d_eq": "bohr", "k_par": "hartree / bohr ** 2", "k_perp": "hartree / bohr ** 2",
    "I0": U_GAMMA, "I_par": U_GAMMA, "I_perp": U_GAMMA,
    "gamma_par": U_GAMMA, "gamma_perp": U_GAMMA, "gamma_viscous_par": U_GAMMA,
    "gamma_viscous_perp": U_GAMMA, "kappa_par": "1 / atomic_unit_of_time",
    "kappa_perp": "1 / atomic_unit_of_time", "omega0_sq_par": "1 / atomic_unit_of_time ** 2",
    "omega0_sq_perp": "1 / atomic_unit_of_time ** 2", "cm_rate_par": "1 / atomic_unit_of_time",
    "cm_rate_perp": "1 / atomic_unit_of_time", "viscous_share_cm_par": "1",
    "viscous_share_cm_perp": "1",
    "wind_cm_par": U_GAMMA, "wind_cm_perp": U_GAMMA, "cross_cm_par": U_GAMMA,
    "cross_cm_perp": U_GAMMA, "wind_rel_par": "1 / atomic_unit_of_time",
    "wind_rel_perp": "1 / atomic_unit_of_time",
}
SERIES_UNITS = {"x": "bohr", "v": U_V, "R_rel": "bohr", "V_rel": U_V, "V_cm": U_V,
                "force": U_F, "energy": U_E, "work": U_E}


def build_pulse(deck: JelliumDeck, n: float) -> Pulse:
    p = deck.pulse
    u0 = p["drift_velocity"] if p["drift_velocity"] is not None else p["current_density"] / n
    return Pulse(drift_velocity=u0, duration=p["duration"], shape=p["shape"],
                 rise_time=p["rise_time"], angle=p["angle"])


def run_jellium(deck: JelliumDeck, progress: bool = True):
    """Compute everything a deck asks for; returns an ``mqcd.io.results.Result``."""
    from .._version import __version__
    from ..io.results import Result
    res = Result(attrs={"mqcd_version": __version__, "command": "jellium run", "deck": deck.text,
                        "kernels": json.dumps(deck.kernels), "rs": deck.medium["rs"],
                        "lda": deck.medium["lda"], "pulse_shape": deck.pulse["shape"]})
    t = np.linspace(deck.run["t_start"], deck.run["t_end"], deck.run["samples"])
    res.add("time", t, U_T)
    Z, M = deck.impurity["charges"], deck.impurity["masses"]
    init = deck.initial
    initial = {g: (*init[f"displacement_{g}"], *init[f"velocity_{g}"]) for g in GEOMETRIES}
    t0 = _time.perf_counter()
    for i, kern in enumerate(deck.kernels):
        if progress:
            print(f"  [{i + 1}/{len(deck.kernels)}] {kern}: coefficients ...", flush=True)
        c = MotionCoefficients.compute(deck.medium["rs"], kern, Z, M, deck.medium["lda"])
        pulse = build_pulse(deck, c.n)
        if i == 0:
            res.add("pulse/drift_velocity", pulse.u(t), U_V)
            res.add("pulse/current_density", c.n * pulse.u(t), "1 / bohr ** 2 / atomic_unit_of_time")
            res.add("pulse/u0", np.float64(pulse.drift_velocity), U_V)
            res.add("pulse/duration", np.float64(pulse.duration), U_T)
            res.add("pulse/rise_time", np.float64(pulse.rise_time), U_T)
            res.add("pulse/angle", np.float64(pulse.angle), "degree")
            res.add("medium/rs", np.float64(c.rs), "bohr")
            res.add("medium/density", np.float64(c.n), "1 / bohr ** 3")
            res.add("impurity/charges", c.Z, "elementary_charge")
            res.add("impurity/masses", c.M, "electron_mass")
        summ = c.summary()
        for name, unit in COEFF_UNITS.items():
            res.add(f"{kern}/coefficients/{name}", np.asarray(summ[name], dtype=float), unit)
        out = simulate(c, pulse, t, initial=initial, rtol=deck.run["rtol"])
        for key, arr in out.items():
            if key in ("time", "drift_velocity"):
                continue
            leaf = key.split("/")[1]
            res.add(f"{kern}/{key}", arr, SERIES_UNITS[leaf])
        for g in GEOMETRIES:
            res.add(f"{kern}/{g}/viscous_share", viscous_share(out, g), "1")
            stretch = np.abs(out[f"{g}/R_rel"]).max() / c.d_eq
            if stretch > 0.1:
                log.warning("%s, %s: max |R_rel| / d_eq = %.3g; linear response assumes small "
                            "displacements (lower the drift velocity)", kern, g, stretch)
            res.attrs[f"{kern}_{g}_max_stretch_over_d"] = stretch
    res.attrs["wall_time_s"] = _time.perf_counter() - t0
    return res


def plot_result(res, path, title: str = ""):
    """PNG: c.m. and relative velocities (in units of the drift velocity) for every kernel and the
    forces on the c.m. for the main kernel, one column per direction that the pulse drives."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kernels = json.loads(res.attrs["kernels"])
    t = res["time"]
    u0 = float(res["pulse/u0"]) or 1.0
    geos = [g for g in GEOMETRIES
            if np.abs(res[f"{kernels[0]}/{g}/V_cm"]).max() > 1e-12 * abs(u0)
            or np.abs(res[f"{kernels[0]}/{g}/V_rel"]).max() > 1e-12 * abs(u0)] or ["par"]
    names = {"par": "parallel to the bond", "perp": "perpendicular to the bond"}
    styles = ["-", "--", "-.", ":"]
    fig, axes = plt.subplots(3, len(geos), figsize=(5.5 * len(geos), 9), sharex=True,
                             squeeze=False)
    tk = t / 1000.0
    for j, g in enumerate(geos):
        ax = axes[:, j]
        for i, k in enumerate(kernels):
            ax[0].plot(tk, res[f"{k}/{g}/V_cm"] / u0, styles[i % 4], label=k)
            ax[1].plot(tk, res[f"{k}/{g}/V_rel"] / u0, styles[i % 4], label=k)
        ax[0].plot(tk, res["pulse/drift_velocity"] / u0, color="0.6", lw=0.8, ls=":",
                   label="pulse u(t)/u0")
        k0 = kernels[0]
        fw = res[f"{k0}/{g}/force/wind"].sum(axis=1)
        ff = res[f"{k0}/{g}/force/friction"].sum(axis=1)
        fv = res[f"{k0}/{g}/force/viscous"].sum(axis=1)
        ax[2].plot(tk, fw, label="wind")
        ax[2].plot(tk, ff, label="friction")
        ax[2].plot(tk, fw + ff, "k", lw=1, label="wind + friction")
        if np.any(fv):
            ax[2].plot(tk, fv, "--", label="viscous part")
        ax[0].set_title(f"current {names[g]}")
        ax[0].set_ylabel("V_cm / u0")
        ax[1].set_ylabel("V_rel / u0")
        ax[2].set_ylabel(f"force on c.m. ({k0}), hartree/bohr")
        ax[2].set_xlabel("time (1000 atomic_unit_of_time)")
        for a in ax:
            a.axhline(0, color="0.8", lw=0.5)
            a.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
