"""Figures of method comparisons (matplotlib, the ``plot`` extra), shared by ``mqcd compare --plot``
and ``mqcd study``.

Every function takes :class:`mqcd.analysis.compare.RunView` objects (one per run: the populations a
method is judged by, with their standard errors) and follows the same rules:

* one colour per run (``colours``: label -> colour, so a study keeps a method's colour in every
  figure), the exact reference in black; one line style per electronic state;
* bands of one standard error: binomial for surface hopping (active-state fractions), the
  ensemble standard error for mean-field methods (rho);
* the time axis ends where the longest trajectory run ended; an exact run that goes on (it waits
  for the packet to leave) continues faintly to the edge;
* titles give model, k and N; legends use the labels.
"""
from __future__ import annotations

import numpy as np

STATE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)))
EXACT_COLOUR = "black"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f")


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("figures need matplotlib: pip install 'mqcd[plot]'") from None
    return plt


def state_style(n):
    return STATE_STYLES[n % len(STATE_STYLES)]


def assign_colours(labels, exact_labels=()):
    """label -> colour: the palette in order for trajectory runs, black for exact ones."""
    out, k = {}, 0
    for lab in labels:
        if lab in out:
            continue
        if lab in exact_labels:
            out[lab] = EXACT_COLOUR
        else:
            out[lab] = PALETTE[k % len(PALETTE)]
            k += 1
    return out


def _colours(views, colours):
    c = assign_colours([v.label for v in views], [v.label for v in views if v.is_exact])
    c.update(colours or {})
    return c


SETTLED = 0.003      # a curve has settled once it stays within this of its final value


def settle_time(v, tol=SETTLED):
    """Last time at which the populations of run ``v`` differ from their final values by more
    than ``tol`` (0 if they never do)."""
    off = np.abs(v.P - v.P[-1]).max(axis=1) > tol
    return float(v.t[np.nonzero(off)[0][-1] + 1]) if off.any() else 0.0


def time_limit(views):
    """End of the time axis: where the trajectory runs ended (all runs if there is none), cut to
    1.25 times the last time any run's populations still changed (by more than
    :data:`SETTLED`), so that a run that waits out t_end (or an exact run waiting for the last
    of the packet) does not stretch the axis over a flat tail; the tables have the final
    values."""
    traj = [v.t_end for v in views if not v.is_exact]
    end = max(traj) if traj else max(v.t_end for v in views)
    settled = max(min(settle_time(v), end) for v in views)
    return min(end, 1.25 * settled) if settled > 0 else end


def title_of(views, extra=""):
    """"model, k = 10 a.u., N = 2000" from the runs' decks (N listed when the runs differ)."""
    from .compare import deck_of
    a = views[0].attrs
    model = str(a.get("model", ""))
    ini = deck_of(a).get("initial", {})
    k = ini.get("momentum")
    parts = [model]
    if k:
        parts.append("k = " + ", ".join(f"{x:g}" for x in np.atleast_1d(k)) + " a.u.")
    ns = sorted({v.N for v in views if not v.is_exact})
    if ns:
        parts.append("N = " + "/".join(str(n) for n in ns))
    return ", ".join(parts) + (f" — {extra}" if extra else "")


def _line(ax, v, t, y, se, colour, style, tmax, label=None, lw=1.6):
    """One curve with its band; an exact curve beyond ``tmax`` is drawn faintly (the axis
    limits cut the rest)."""
    if v.is_exact:
        last = np.searchsorted(t, tmax, side="right")
        ax.plot(t[:last], y[:last], color=colour, ls=style, lw=lw, label=label, zorder=3)
        if last < len(t):
            ax.plot(t[last - 1:], y[last - 1:], color=colour, ls=style, lw=lw, alpha=0.3, zorder=3)
        return
    ax.plot(t, y, color=colour, ls=style, lw=lw, label=label, zorder=2)
    if se is not None:
        ax.fill_between(t, y - se, y + se, color=colour, alpha=0.18, lw=0, zorder=1)


def _note_cut(ax, views, tmax):
    """Name the runs that go on beyond the end of the time axis."""
    cut = [v for v in views if v.t_end > 1.06 * tmax]
    if cut:
        ax.text(0.99, 0.02, "beyond the axis: " + ", ".join(f"{v.label} to t = {v.t_end:.0f}"
                                                            for v in cut),
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.35")


def draw_populations(axes, views, colours=None, states=None):
    """Populations vs time, one panel per state in ``axes`` (``states``: which states, default
    all): hopping methods from ``populations/active``, mean-field methods from rho, exact
    black."""
    colours = _colours(views, colours)
    ns = views[0].nstates
    states = list(range(ns)) if states is None else list(states)
    tmax = time_limit(views)
    for ax, n in zip(np.atleast_1d(axes), states):
        for v in views:
            se = None if v.P_se is None else v.P_se[:, n]
            _line(ax, v, v.t, v.P[:, n], se, colours[v.label], state_style(n), tmax,
                  label=v.label)
        ax.set_xlim(0, tmax * 1.06)
        _note_cut(ax, views, tmax)
        ax.set_xlabel("time (a.u.)")
        ax.set_ylabel(f"population of adiabatic state {n}")
        ax.set_title(f"state {n} (line style '{_style_name(n)}')", fontsize=9)
        ax.grid(alpha=0.25)


def _style_name(n):
    s = state_style(n)
    return {"-": "solid", "--": "dashed", ":": "dotted", "-.": "dash-dot"}.get(s, f"#{n}") \
        if isinstance(s, str) else f"#{n}"


def draw_indicator(ax, views, colours=None):
    """Decoherence indicator (ensemble mean of sum_{n<m} |rho_nm|^2) vs time, same styling."""
    colours = _colours(views, colours)
    tmax = time_limit(views)
    for v in views:
        if v.I is not None:
            _line(ax, v, v.t, v.I, v.I_se, colours[v.label], "-", tmax, label=v.label)
    ax.set_xlim(0, tmax * 1.06)
    _note_cut(ax, views, tmax)
    ax.set_xlabel("time (a.u.)")
    ax.set_ylabel(r"decoherence indicator $\langle\sum_{n<m}|\rho_{nm}|^2\rangle$")
    ax.grid(alpha=0.25)


def channels(views):
    """Branching channels [(name, kind, state)]: transmission then reflection per state."""
    ns = views[0].nstates
    return ([(f"T{n}", "T", n) for n in range(ns)] + [(f"R{n}", "R", n) for n in range(ns)])


def draw_branching(ax, views, colours=None):
    """Grouped bars per channel (transmitted / reflected on each state) with error bars (one
    s.e.), the exact values as black markers across each group."""
    colours = _colours(views, colours)
    traj = [v for v in views if not v.is_exact and v.T is not None]
    exact = [v for v in views if v.is_exact and v.T is not None]
    ch = channels(views)
    width = 0.8 / max(len(traj), 1)
    for j, v in enumerate(traj):
        x = np.arange(len(ch)) - 0.4 + width * (j + 0.5)
        y = [getattr(v, kind)[n] for _, kind, n in ch]
        e = [getattr(v, kind + "_se")[n] for _, kind, n in ch]
        ax.bar(x, y, width * 0.92, yerr=e, color=colours[v.label], label=v.label,
               error_kw={"elinewidth": 1, "capsize": 2}, zorder=2)
    for v in exact:
        y = [getattr(v, kind)[n] for _, kind, n in ch]
        x = np.arange(len(ch))
        ax.hlines(y, x - 0.45, x + 0.45, color="black", lw=2.0, zorder=4, label=v.label)
    ax.set_xticks(np.arange(len(ch)))
    ax.set_xticklabels([{"T": "transmitted", "R": "reflected"}[k] + f"\nstate {n}"
                        for _, k, n in ch], fontsize=8)
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1.0)
    ax.grid(axis="y", alpha=0.25)


def _legend(fig, views, colours, states=True):
    """One legend under the panels: a colour per run (and the line style per state); returns
    the fraction of the figure height it takes."""
    from matplotlib.lines import Line2D
    colours = _colours(views, colours)
    handles = [Line2D([], [], color=colours[v.label], lw=2.2, label=v.label) for v in views]
    if states:
        handles += [Line2D([], [], color="0.4", ls=state_style(n), lw=1.4, label=f"state {n}")
                    for n in range(views[0].nstates)]
    width = fig.get_size_inches()[0]
    longest = max(len(h.get_label()) for h in handles)
    ncol = max(1, min(len(handles), int(width / (0.45 + 0.075 * longest))))
    rows = -(-len(handles) // ncol)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    return (0.05 + 0.2 * rows) / fig.get_size_inches()[1]


def populations_figure(views, path, colours=None, title=None):
    """PNG: populations vs time, one panel per state."""
    plt = _plt()
    ns = views[0].nstates
    fig, axes = plt.subplots(1, ns, figsize=(4.6 * ns, 3.9), squeeze=False)
    draw_populations(axes[0], views, colours)
    fig.suptitle(title or title_of(views, "adiabatic populations (bands: 1 s.e.)"), fontsize=10)
    fig.tight_layout(rect=(0, _legend(fig, views, colours), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def indicator_figure(views, path, colours=None, title=None):
    """PNG: decoherence indicator vs time."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 4.0))
    draw_indicator(ax, views, colours)
    fig.suptitle(title or title_of(views, "decoherence indicator (bands: 1 s.e.)"), fontsize=10)
    fig.tight_layout(rect=(0, _legend(fig, views, colours, states=False), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def branching_figure(views, path, colours=None, title=None):
    """PNG: branching bars with error bars, exact as markers."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(channels(views)), 4.0))
    draw_branching(ax, views, colours)
    ax.legend(fontsize=8, ncol=2, frameon=False)
    fig.suptitle(title or title_of(views, "branching (error bars: 1 s.e.)"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def comparison_figure(views, path, colours=None, title=None):
    """PNG for ``mqcd compare --plot``: populations per state, the indicator and (scattering
    runs) the branching bars in one row."""
    plt = _plt()
    ns = views[0].nstates
    has_b = any(v.T is not None for v in views)
    n = ns + 1 + int(has_b)
    fig, axes = plt.subplots(1, n, figsize=(4.3 * n, 3.9), squeeze=False)
    axes = axes[0]
    draw_populations(axes[:ns], views, colours)
    draw_indicator(axes[ns], views, colours)
    if has_b:
        draw_branching(axes[ns + 1], views, colours)
    fig.suptitle(title or title_of(views), fontsize=10)
    fig.tight_layout(rect=(0, _legend(fig, views, colours), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scan_figure(scan, path, colours=None, title=None, min_max=0.01):
    """PNG: branching vs the scanned value (the classic Tully figure).

    ``scan``: {method label: [(x, RunView), ...]} with the exact runs under any label whose
    views are exact; one panel per channel whose largest value over all runs exceeds ``min_max``;
    methods as markers with error bars (one s.e.), exact as a black line."""
    plt = _plt()
    items = [(lab, sorted(pts, key=lambda p: p[0])) for lab, pts in scan.items() if pts]
    views = [v for _, pts in items for _, v in pts]
    ch = [c for c in channels(views)
          if max(getattr(v, c[1])[c[2]] for v in views if v.T is not None) > min_max]
    labels = [lab for lab, pts in items]
    exact_labels = [lab for lab, pts in items if pts[0][1].is_exact]
    cols = assign_colours(labels, exact_labels)
    cols.update(colours or {})
    fig, axes = plt.subplots(1, len(ch), figsize=(4.4 * len(ch), 3.9), squeeze=False)
    for ax, (name, kind, n) in zip(axes[0], ch):
        for j, (lab, pts) in enumerate(items):
            x = np.array([p[0] for p in pts])
            y = np.array([getattr(p[1], kind)[n] for p in pts])
            if pts[0][1].is_exact:
                ax.plot(x, y, color="black", lw=1.8, label=lab, zorder=3)
                continue
            e = np.array([getattr(p[1], kind + "_se")[n] for p in pts])
            off = (j - len(items) / 2) * 0.004 * (x.max() - x.min() if len(x) > 1 else 1)
            ax.errorbar(x + off, y, yerr=e, color=cols[lab], marker="o", ms=3.5, lw=0.8,
                        capsize=2, label=lab, zorder=2)
        ax.set_title({"T": "transmission", "R": "reflection"}[kind] + f" on state {n}",
                     fontsize=9)
        ax.set_xlabel("initial momentum k (a.u.)")
        ax.set_ylabel("probability")
        ax.grid(alpha=0.25)
    axes[0][0].legend(fontsize=8, frameon=False)
    model = views[0].attrs.get("model", "")
    ns = sorted({v.N for v in views if not v.is_exact})
    fig.suptitle(title or f"{model}: branching vs k, N = {'/'.join(map(str, ns))} "
                 "(error bars: 1 s.e.)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _potential_shown(res):
    """The potential energy a run's nuclei exchange kinetic energy with: E_BO of an exact run,
    ``energy/potential`` of a trajectory run (Tr(rho H) for mean-field methods, the active
    surface for hopping; ``energy/electronic`` is Tr(rho H) for every method)."""
    for name in ("energy/born_oppenheimer", "energy/potential"):
        if name in res:
            return np.asarray(res[name], float)
    return None


def transfer_figure(results, labels, path, colours=None, title=None):
    """PNG for ``mqcd compare --transfer-plot`` (docs/transfer.md): T_geo(t), T_marg(t), the mean
    force along dof 0, the power (dT_marg/dt of exact runs, <F.v> of trajectory runs), the
    potential energy of the nuclear motion (:func:`_potential_shown`; T_geo on a log axis: the
    methods' can be orders below the exact one) and the integrated residual of the momentum
    identity, one colour per run (exact in black). Takes :class:`mqcd.io.results.Result` objects."""
    from .compare import _power_shown
    from .transfer import identity_residuals, marginal_kinetic
    plt = _plt()
    exact = [lab for r, lab in zip(results, labels) if r.attrs.get("method") == "exact"]
    cols = assign_colours(labels, exact)
    cols.update(colours or {})
    traj_end = [float(r["time"][-1]) for r in results if r.attrs.get("method") != "exact"]
    tmax = max(traj_end) if traj_end else max(float(r["time"][-1]) for r in results)
    fig, axes = plt.subplots(2, 3, figsize=(14.0, 7.4))
    ax = axes.ravel()
    panels = [("T_geo (hartree)", lambda r: r["energy/geometric"] if "energy/geometric" in r
               else None),
              ("T_marg (hartree)", marginal_kinetic),
              ("mean force <F> along dof 0 (hartree/bohr)",
               lambda r: np.asarray(r["nuclear/force_mean"])[:, 0]
               if "nuclear/force_mean" in r else None),
              ("power: dT_marg/dt (exact), <F.v> (hartree/a.u.)", _power_shown),
              ("potential energy of the nuclear motion: E_BO (exact), <Tr rho H> (mean field), "
               "<E_active> (hopping) (hartree)", _potential_shown)]
    for a, (name, get) in zip(ax, panels):
        for r, lab in zip(results, labels):
            y = get(r)
            if y is None:
                continue
            lw = 2.0 if lab in exact else 1.4
            a.plot(r["time"], y, color=cols[lab], lw=lw, label=lab, zorder=3 if lab in exact else 2)
        a.set_title(name, fontsize=9 if len(name) < 60 else 7.5)
        a.set_xlim(0, tmax)
        a.set_xlabel("time (a.u.)")
        a.grid(alpha=0.25)
    tg = [np.nanmax(r["energy/geometric"]) for r in results if "energy/geometric" in r]
    if tg and max(tg) > 0:          # T_geo of the methods can be orders below the exact one
        ax[0].set_yscale("log")
        ax[0].set_ylim(max(tg) * 1e-4, max(tg) * 2.0)
    a = ax[5]
    for r, lab in zip(results, labels):
        res = identity_residuals(r).get("momentum")
        if res is None:
            continue
        P = np.asarray(r["nuclear/momentum_mean"], float)[:, 0]
        scale = max(np.max(np.abs(P - P[0])), 1e-300)
        R = np.abs(np.asarray(res["integrated_residual"])[:, 0]) / scale
        a.semilogy(r["time"], np.maximum(R, 1e-16), color=cols[lab], lw=1.2, label=lab)
    a.set_title("|P(t) - P(0) - int <F> dt - events| / max|P - P(0)|", fontsize=9)
    a.set_xlim(0, tmax)
    a.set_xlabel("time (a.u.)")
    a.grid(alpha=0.25)
    ax[0].legend(fontsize=8, frameon=False)
    fig.suptitle(title or "energy and momentum transfer (Li-Requist-Gross budgets)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
