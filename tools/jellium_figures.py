"""Figures and numbers of docs/jellium.md (issue 18, Nazarov-Todorov-Gross).

    python tools/jellium_figures.py            # all figures into docs/figures/, tables to stdout
    python tools/jellium_figures.py --only fu  # one of: fu, response, share, vibration, numbers

Figures: jellium_fig1_FU.png (F(d), U(d), eqs. (10)-(11)), jellium_response.png (kernels, the App. E
factor, the (E1) check), jellium_viscous_share.png (what the viscosity changes during the pulse),
jellium_vibration.png ((E9)-(E11) against direct integration). The two run figures
(jellium_run_parallel.png, jellium_run_perpendicular.png) come from ``mqcd jellium run`` (see the docs).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from scipy import integrate

from mqcd.jellium import dynamics as dyn
from mqcd.jellium import friction as fr
from mqcd.jellium import interaction as inter
from mqcd.jellium.deck import M_DEUTERON, M_PROTON
from mqcd.jellium.response import Response

FIG = Path(__file__).resolve().parents[1] / "docs" / "figures"
RS = 2.0
Z = [1.0, 1.0]
M = [M_PROTON, M_DEUTERON]
U0, T = 1e-5, 60000.0
KERNELS = ("mcp07", "mcp07-static", "rpa")
STYLE = {"mcp07": "-", "mcp07-static": "--", "rpa": "-.", "alda": ":"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, axes, name):
    for a in np.ravel(axes):
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(FIG / name, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)


_COEF = {}


def coeffs(kernel):
    if kernel not in _COEF:
        _COEF[kernel] = dyn.MotionCoefficients.compute(RS, kernel, Z, M)
    return _COEF[kernel]


def fig_fu():
    plt = _plt()
    ds = np.linspace(2.0, 12.0, 161)
    fig, ax = plt.subplots(2, 1, figsize=(6.5, 7), sharex=True)
    print("\nEquilibrium distance (first stable zero of F), r_s = 2:")
    print(f"{'kernel':>14} {'lda':>5} {'d_eq (bohr)':>12} {'U(d_eq) (hartree)':>18} "
          f"{'k_par = U(d_eq) second derivative':>34}")
    for k in ("mcp07-static", "alda", "rpa"):
        for lda in ("pz81", "pw92"):
            r = Response(RS, k, lda)
            d = inter.equilibrium_distance(r)
            print(f"{k:>14} {lda:>5} {d:12.5f} {inter.energy(r, d):18.6e} "
                  f"{inter.stiffness(r, d)[0]:34.6e}")
        r = Response(RS, k)
        d = inter.equilibrium_distance(r)
        tab = inter.table(r, ds)
        ax[0].plot(ds, tab["U"], STYLE[k] if k != "alda" else ":", label=f"{k}: d_eq = {d:.3f}")
        ax[1].plot(ds, tab["F"], STYLE[k] if k != "alda" else ":", label=k)
        ax[0].axvline(d, color=ax[0].lines[-1].get_color(), lw=0.6, alpha=0.6)
    ax[0].axvline(5.17, color="k", lw=1.2, ls=(0, (1, 2)), label="paper: d_eq = 5.17")
    ax[0].set_ylim(-0.0015, 0.004)
    ax[1].set_ylim(-0.0015, 0.003)
    ax[0].set_ylabel("U(d) / (Z1 Z2)   (hartree)")
    ax[1].set_ylabel("F(d) / (Z1 Z2)   (hartree/bohr)")
    ax[1].set_xlabel("d (bohr)")
    for a in ax:
        a.axhline(0, color="0.7", lw=0.6)
    ax[0].set_title("Two point charges in the HEG, r_s = 2 (NTG eqs. (10)-(11), Fig. 1)")
    _save(fig, ax, "jellium_fig1_FU.png")


def _kk_real(kernel, w):
    """f_inf + (2/pi) P int_0^inf w' Im f(w') / (w'^2 - w^2) dw' (the causal real part)."""
    sb = 1.0 / math.sqrt(kernel.b)
    im = lambda x: float(kernel.gki(x).imag)
    cut = 10 * w + 10 * sb
    a = integrate.quad(lambda x: im(x) * x / (x + w), 0, cut, weight="cauchy", wvar=w, limit=400)[0]
    b = integrate.quad(lambda x: im(x) * x / (x * x - w * w), cut, np.inf, limit=400)[0]
    return kernel.f_inf + 2 / math.pi * (a + b)


def fig_response():
    plt = _plt()
    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    r0 = Response(RS, "mcp07")
    kF, g = r0.kF, r0.gas
    q = np.linspace(1e-3, 4.0, 400) * kF
    for k in ("alda", "mcp07-static"):
        ax[0, 0].plot(q / kF, Response(RS, k).kernel.static(q), STYLE[k], label=k)
    ax[0, 0].set_xlabel("q / kF")
    ax[0, 0].set_ylabel("f_xc(q, 0)  (hartree bohr^3)")
    ax[0, 0].set_title("static kernels, r_s = 2")
    # GKI: closed form vs Kramers-Kronig
    k = r0.kernel
    w = np.linspace(1e-3, 6.0, 300) / math.sqrt(k.b)
    f = k.gki(w)
    ax[0, 1].plot(w, f.real, label="Re f_GKI (MCP07 closed form)")
    ax[0, 1].plot(w, f.imag, label="Im f_GKI")
    wk = w[::10]
    ax[0, 1].plot(wk, [_kk_real(k, x) for x in wk], "o", ms=3,
                  label="Kramers-Kronig transform of Im")
    ax[0, 1].axhline(g.f0(), color="0.6", lw=0.6, ls="--")
    ax[0, 1].axhline(g.f_inf(), color="0.6", lw=0.6, ls=":")
    ax[0, 1].set_xlabel("omega (hartree)")
    ax[0, 1].set_ylabel("f_xc(q = 0, omega)  (hartree bohr^3)")
    ax[0, 1].set_title("GKI frequency dependence of MCP07 (f_0 dashed, f_inf dotted)")
    # App. E factor
    q = np.linspace(1e-3, 5.0, 600) * kF
    for kk in KERNELS:
        r = Response(RS, kk)
        ax[1, 0].plot(q / kF, -r.dchi_domega0(q), STYLE[kk], label=kk)
    lind, visc = r0.dchi_domega0_parts(q)
    ax[1, 0].fill_between(q / kF, 0, -visc, color="C0", alpha=0.25, label="viscous part (mcp07)")
    ax[1, 0].set_xlabel("q / kF")
    ax[1, 0].set_ylabel("-Im d chi^h/d omega |_0  (a.u.)")
    ax[1, 0].set_title("the factor of (E1), eq. (E14): negative for all q")
    # (E1) check
    om = np.logspace(-4, 0, 13)
    for kk in ("mcp07", "rpa"):
        r = Response(RS, kk)
        I0 = fr.friction_integrals(r, 5.0)["I0"]
        vals = [fr.friction_at_frequency(r, 5.0, x) for x in om]
        ax[1, 1].semilogx(om, [v.real / I0 for v in vals], "o" + STYLE[kk], ms=3,
                          label=f"{kk}: Re I0(omega)/I0(0)")
    ax[1, 1].axvspan(1e-4, 2e-3, color="0.9", label="nuclear frequencies here")
    ax[1, 1].set_xlabel("omega (hartree)")
    ax[1, 1].set_ylabel("friction at frequency omega / Markov value")
    ax[1, 1].set_title("low-frequency substitution (E1)")
    _save(fig, ax, "jellium_response.png")


def _runs(angle, t):
    return {k: dyn.simulate(coeffs(k), dyn.Pulse(U0, T, angle=angle), t) for k in KERNELS}


def fig_share():
    plt = _plt()
    t = np.linspace(-3000, 2 * T, 4001)
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    perp = _runs(90.0, t)
    on = (t > 2000) & (t < T)
    v = {k: perp[k]["perp/V_rel"] for k in KERNELS}
    ax[0].plot(t[on] / 1000, v["mcp07"][on] / v["rpa"][on], label="mcp07 / rpa")
    ax[0].plot(t[on] / 1000, v["mcp07"][on] / v["mcp07-static"][on], "--",
               label="mcp07 / mcp07-static (viscosity only)")
    ax[0].set_xlabel("time (1000 atomic_unit_of_time)")
    ax[0].set_ylabel("ratio of rotational velocities V_rel,perp")
    ax[0].set_title("phase II, current perpendicular (NTG Fig. 5)")
    ax[0].axhline(0.3, color="0.6", lw=0.6, ls=":", label="paper: 'decrease by up to 70 %'")
    # the share is time independent for Z1 = Z2 (force = column sums of gamma times (u - V));
    # show instead how it depends on the density, for one charge (I0) and at the molecule's d_eq
    rss = np.array([1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0])
    visc, xc = [], []
    for rs in rss:
        rd, rr = Response(rs, "mcp07"), Response(rs, "rpa")
        tot = fr.friction_integrals(rd, 5.0)["I0"]
        visc.append(fr.friction_integrals(rd, 5.0, part="viscous")["I0"] / tot)
        xc.append(1 - fr.friction_integrals(rr, 5.0)["I0"] / tot)
    ax[1].plot(rss, 100 * np.array(visc), "o-", label="viscous part (d f_xc/d omega)")
    ax[1].plot(rss, 100 * np.array(xc), "s--", label="all of f_xc (1 - rpa/mcp07)")
    summ = coeffs("mcp07").summary()
    ax[1].plot([RS], [100 * summ["viscous_share_cm_par"]], "k^", ms=7,
               label="p + d at d_eq, c.m. force, current parallel")
    ax[1].plot([RS], [100 * summ["viscous_share_cm_perp"]], "kv", ms=7,
               label="p + d at d_eq, c.m. force, current perpendicular")
    ax[1].set_xlabel("r_s (bohr)")
    ax[1].set_ylabel("share of the friction (= wind) coefficient (%)")
    ax[1].set_title("mcp07 friction of one charge: viscous and xc shares")
    _save(fig, ax, "jellium_viscous_share.png")
    i_end = np.searchsorted(t, T) - 1
    print(f"\nRotation (current perpendicular), T = {T:g}: V_rel,perp(T-) ratios "
          f"mcp07/rpa = {v['mcp07'][i_end] / v['rpa'][i_end]:.3f}, "
          f"mcp07/mcp07-static = {v['mcp07'][i_end] / v['mcp07-static'][i_end]:.3f}; "
          f"min over phase II (t > 2000): mcp07/rpa = {np.min(v['mcp07'][on] / v['rpa'][on]):.3f}")
    pk = {k: np.abs(v[k]).max() for k in KERNELS}
    print("peak |V_rel,perp| / u0: " + ", ".join(f"{k} {pk[k] / U0:.4f}" for k in KERNELS))


def fig_vibration():
    plt = _plt()
    c = coeffs("mcp07")
    kap, w0 = c.kappa("par"), math.sqrt(c.omega0_sq("par"))
    wd = math.sqrt(w0 ** 2 - kap ** 2)
    t = np.linspace(-1000, T, 6001)
    res = dyn.simulate(c, dyn.Pulse(U0, 2 * T), t)
    R = res["par/R_rel"]
    win = t > 15000
    om_fit, kap_fit = dyn.fit_damped_oscillation(t[win], R[win], w0, kap)
    ev = dyn.normal_modes(c, "par")
    osc = ev[np.abs(ev.imag) > 0][0]
    # (E9) with the paper's kappa and omega (E10)-(E11) held fixed: only amplitude, phase and the
    # slowly relaxing offset (bond compressed by the differential wind while V_cm < u0) are fitted
    s = t[win] - t[win][0]

    def model(ss, A, phi, B, lam, C):
        return A * np.exp(-kap * ss) * np.cos(wd * ss + phi) + B * np.exp(-lam * ss) + C
    from scipy.optimize import curve_fit
    p, _ = curve_fit(model, s, R[win] / U0, p0=[10.0, 0.0, -5.0, 1e-4, 0.0], maxfev=20000)
    offset = p[2] * np.exp(-p[3] * s) + p[4]
    e9 = p[0] * np.exp(-kap * s) * np.cos(wd * s + p[1])
    fig, ax = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    ax[0].plot(t / 1000, R / U0, label="direct integration (mqcd.jellium.dynamics.simulate)")
    ax[0].plot(t[win] / 1000, offset, ":", color="0.4", label="fitted offset B exp(-lam t) + C")
    ax[0].set_ylabel("R_rel,par / u0  (atomic_unit_of_time)")
    ax[0].set_title("bond vibration after the switch-on, mcp07, proton + deuteron, r_s = 2")
    ax[1].plot(t[win] / 1000, R[win] / U0 - offset, label="direct integration minus offset")
    ax[1].plot(t[win] / 1000, e9, "--", label="(E9): A exp(-kappa t) cos(omega t + phi), kappa (E11), "
               "omega = sqrt(omega_0^2 - kappa^2) (E10)")
    ax[1].set_ylabel("oscillating part / u0")
    ax[1].set_xlabel("time (1000 atomic_unit_of_time)")
    _save(fig, ax, "jellium_vibration.png")
    resid = np.abs(R[win] / U0 - offset - e9).max() / np.abs(e9).max()
    print(f"\n(E9) with fixed kappa, omega vs direct integration: max residual {resid:.2e} of the "
          f"oscillation amplitude")
    print("\nVibration and damping (parallel), mcp07:")
    print(f"  (E10) omega_0 = {w0:.6e}, (E11) kappa = {kap:.6e}, sqrt(omega_0^2 - kappa^2) = {wd:.6e}"
          f" 1/atomic_unit_of_time")
    print(f"  normal modes of the coupled c.m./relative equations: kappa = {-osc.real:.6e}, "
          f"omega = {abs(osc.imag):.6e}")
    print(f"  fit of the direct integration (t > 15000): kappa = {kap_fit:.6e}, omega = {om_fit:.6e}")
    print(f"  relative deviations from (E9)-(E11): normal modes {(-osc.real - kap) / kap:+.2e} "
          f"(kappa), {(abs(osc.imag) - wd) / wd:+.2e} (omega); fit {(kap_fit - kap) / kap:+.2e}, "
          f"{(om_fit - wd) / wd:+.2e}")
    print(f"  vibration period 2 pi / omega = {2 * math.pi / wd:.1f} atomic_unit_of_time "
          f"({2 * math.pi / wd * 0.02418884:.1f} fs), energy hbar omega = {wd * 27211.386:.2f} meV")
    cp = coeffs("mcp07")
    evp = dyn.normal_modes(cp, "perp")
    print(f"  perpendicular: k_perp = F(d_eq)/d_eq = {cp.k_perp:.2e} hartree/bohr^2 "
          f"(k_par = {cp.k_par:.3e}); eigenvalues {np.sort(evp.real)} (all real: no rotation "
          f"restoring force, eq. (E12)); kappa_perp (E13) = {cp.kappa('perp'):.6e}")


def numbers():
    print("\nFriction integrals and coefficients at each kernel's d_eq, r_s = 2, p + d (a.u.):")
    hdr = f"{'kernel':>14} {'d_eq':>8} {'I0':>10} {'I_par':>10} {'I_perp':>10} {'kappa_par':>11} " \
          f"{'kappa_perp':>11} {'omega0_par':>11} {'cm rate par':>11} {'visc share':>10}"
    print(hdr)
    for k in KERNELS:
        c = coeffs(k)
        s = c.summary()
        print(f"{k:>14} {c.d_eq:8.4f} {s['I0']:10.6f} {s['I_par']:10.6f} {s['I_perp']:10.6f} "
              f"{s['kappa_par']:11.4e} {s['kappa_perp']:11.4e} {math.sqrt(s['omega0_sq_par']):11.4e} "
              f"{s['cm_rate_par']:11.4e} {100 * s['viscous_share_cm_par']:9.2f}%")
    cd, cs, cr = coeffs("mcp07"), coeffs("mcp07-static"), coeffs("rpa")
    print("\nShares of the force at its maximum (t = 0+: V = 0, force = gamma . u0):")
    for g in ("par", "perp"):
        tot, vis = cd.gamma[g].sum(), cd.gamma_viscous[g].sum()
        # relative (rotation/vibration) drive: F2/M2 - F1/M1
        m = np.array([-1 / M[0], 1 / M[1]])
        rel, relv = m @ cd.gamma[g].sum(axis=1), m @ cd.gamma_viscous[g].sum(axis=1)
        print(f"  {g}: c.m.: viscous share {100 * vis / tot:.2f} %, mcp07/rpa = "
              f"{tot / cr.gamma[g].sum():.3f}, mcp07/mcp07-static = {tot / cs.gamma[g].sum():.3f}; "
              f"relative drive: viscous share {100 * relv / rel:.2f} %, mcp07/rpa = "
              f"{rel / (m @ cr.gamma[g].sum(axis=1)):.3f}")
    k = Response(RS, "mcp07").kernel
    print(f"\nMCP07 dynamic kernel at r_s = 2: f_0 = {k.f0:.6f}, f_inf = {k.f_inf:.6f} hartree bohr^3, "
          f"b = {k.b:.5f} atomic_unit_of_time^2, d Im f_GKI/d omega|_0 = {k.gki_slope():.5f} "
          f"bohr^3, eta = {k.viscosity():.5e} hbar/bohr^3, eta/(hbar n) = "
          f"{k.viscosity() / k.gas.n:.4f}")
    dev = max(abs(_kk_real(k, x / math.sqrt(k.b)) - float(k.gki(x / math.sqrt(k.b)).real))
              for x in np.linspace(0.1, 5, 50)) / (k.f_inf - k.f0)
    print(f"  closed-form Re f_GKI vs Kramers-Kronig transform of Im f_GKI: max deviation "
          f"{100 * dev:.1f} % of (f_inf - f_0) for b^(1/2) omega in [0.1, 5]")
    r = Response(RS, "mcp07")
    q = 2.5 * r.kF
    im = lambda w: float(r.chi(q, w).imag)
    e = [0.0, abs(q * q / 2 - q * r.kF), q * r.kF + q * q / 2, np.inf]
    tot = sum(integrate.quad(lambda w: w * im(w), a, b, epsabs=1e-14, limit=400)[0]
              for a, b in zip(e[:-1], e[1:]))
    print(f"  f-sum rule of chi^h(mcp07) at q = 2.5 kF: {tot:.6e} vs -pi n q^2/2 = "
          f"{-math.pi * r.gas.n * q * q / 2:.6e} (relative {tot / (-math.pi * r.gas.n * q * q / 2) - 1:+.1e})")
    print("\nRPA limit: single charge Z = 1 friction coefficient vs the Lindhard-Winther formula:")
    for rs in (1.0, 2.0, 3.0, 4.0, 5.0):
        rr = Response(rs, "rpa")
        I0 = fr.friction_integrals(rr, 5.0)["I0"]
        lw = fr.stopping_coefficient_lindhard_winther(rs)
        print(f"  r_s = {rs}: I0 = {I0:.6f}, Lindhard-Winther {lw:.6f} (rel. {I0 / lw - 1:+.1e}), "
              f"Ritchie (Thomas-Fermi) {fr.stopping_coefficient_ritchie(rs):.6f}; with "
              f"mcp07-static {fr.friction_integrals(Response(rs, 'mcp07-static'), 5.0)['I0']:.6f}, "
              f"mcp07 {fr.friction_integrals(Response(rs, 'mcp07'), 5.0)['I0']:.6f}")
    print("\nd_eq vs r_s (mcp07-static / rpa), bohr:")
    for rs in (1.5, 2.0, 2.07, 3.0, 4.0):
        print(f"  r_s = {rs}: {inter.equilibrium_distance(Response(rs, 'mcp07-static')):.4f} / "
              f"{inter.equilibrium_distance(Response(rs, 'rpa')):.4f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", choices=("fu", "response", "share", "vibration", "numbers"))
    a = ap.parse_args()
    FIG.mkdir(parents=True, exist_ok=True)
    todo = {"fu": fig_fu, "response": fig_response, "share": fig_share,
            "vibration": fig_vibration, "numbers": numbers}
    for name, f in todo.items():
        if a.only in (None, name):
            f()


if __name__ == "__main__":
    main()
