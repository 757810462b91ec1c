"""The report of a study: ``report.md`` and ``report.html`` (the same content), the figures, and
``study.h5`` with every number of the tables (named dimensions, readable with
``xarray.open_datatree(path, engine="h5netcdf")``).

Per physical case: the branching table (per state, +- one standard error, difference to exact with
that error), the errors of the populations and of the decoherence indicator against exact (at the
run's final time and the largest over time), run times and trajectory-steps/s, and the figures of
:mod:`mqcd.analysis.plots` (populations, indicator, branching); with ``[study] scan`` the
branching-vs-value figure over all cases.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path

import numpy as np

from .._version import __version__
from ..analysis.compare import errors_vs, run_view, throughput
from ..analysis.summary import run_problems
from ..io.results import Result, load, write_result
from .spec import file_name


def _pm(x, e=None, signed=False):
    if x is None:
        return "—"
    s = f"{x:+.3f}" if signed else f"{x:.3f}"
    s = s.replace("-0.000", "0.000").replace("+0.000", "0.000")
    return s + (f" ± {e:.3f}" if e is not None else "")


def _display_labels(study):
    """Run name -> legend label: the method variant, plus the labels of the axes that do not
    change the physics (seed, trajectories, ...) when there are any."""
    out = {}
    for r in study.runs:
        extra = [lab for ax, lab in r.labels.items() if ax != "method" and lab not in r.case_labels]
        out[r.name] = r.variant + (f" ({', '.join(extra)})" if extra else "")
    for r in study.exact_runs:
        out[r.name] = "exact"
    return out


def _scan_x(label):
    try:
        return float(str(label).split("=")[-1])
    except ValueError:
        return None


class _Doc:
    """Blocks rendered as markdown and as HTML."""

    def __init__(self):
        self.blocks = []

    def h(self, level, text):
        self.blocks.append(("h", level, text))

    def p(self, text):
        self.blocks.append(("p", text))

    def code(self, text):
        self.blocks.append(("code", text))

    def table(self, head, rows):
        self.blocks.append(("table", head, rows))

    def img(self, path, alt):
        self.blocks.append(("img", path, alt))

    def markdown(self):
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "code":
                out.append("```\n" + b[1] + "\n```")
            elif b[0] == "table":
                def cell(c):
                    return str(c).replace("|", "\\|")
                out.append("| " + " | ".join(map(cell, b[1])) + " |\n|" + "---|" * len(b[1])
                           + "\n" + "\n".join("| " + " | ".join(map(cell, r)) + " |"
                                              for r in b[2]))
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})")
        return "\n\n".join(out) + "\n"

    def html(self, title):
        e = html.escape
        out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
               "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
               "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;"
               "padding:2px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:"
               "left}img{max-width:100%}code,pre{background:#f6f6f6}</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{_inline_code(e(b[1]))}</p>")
            elif b[0] == "code":
                out.append(f"<pre>{e(b[1])}</pre>")
            elif b[0] == "table":
                out.append("<table><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in b[1]) + "</tr>"
                           + "".join("<tr>" + "".join(f"<td>{_inline_code(e(str(c)))}</td>"
                                                      for c in r) + "</tr>" for r in b[2])
                           + "</table>")
            elif b[0] == "img":
                out.append(f"<p><img src='{e(b[1])}' alt='{e(b[2])}'></p>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"


def _inline_code(s):
    parts = s.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _relative(path, start):
    try:
        return str(Path(path).resolve().relative_to(Path(start).resolve()))
    except ValueError:
        import os
        return os.path.relpath(Path(path).resolve(), Path(start).resolve())


def _git_version():
    """``git describe`` of the checkout mqcd runs from ('' outside a git checkout)."""
    import subprocess
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10, cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _command(study):
    cwd = Path.cwd()
    return f"mqcd study {_relative(study.path, cwd)}"


def _variant_text(study):
    rows = []
    for lab, ov in study.methods.items():
        desc = "; ".join(f"[{sec}] " + ", ".join(f"{k} = {v!r}" for k, v in body.items())
                         for sec, body in ov.items())
        rows.append([f"`{lab}`", desc])
    return rows


def write_report(study, state, failures=None, run_warnings=None):
    """Write report.md, report.html, study.h5 and the figures into ``study.report_dir``; returns
    the path of report.md. ``state``: :func:`mqcd.study.runner.plan`; runs without a result are
    listed as missing (``failures``: run name -> error)."""
    from ..analysis import plots
    failures = failures or {}
    out_dir = study.report_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = _display_labels(study)
    loaded = {}
    for r in study.all_runs:
        st, p = state.get(r.name, ("missing", None))
        if st == "done":
            loaded[r.name] = load(p)
    colour_order = list(dict.fromkeys(labels[r.name] for r in study.runs))
    colours = plots.assign_colours(colour_order)
    colours["exact"] = plots.EXACT_COLOUR

    doc = _Doc()
    doc.h(1, study.title)
    if study.notes:
        doc.p(study.notes)
    doc.p(f"Regenerate everything on this page with `{_command(study)}` (from the repository "
          f"root; runs that are already done are skipped, `--jobs K` runs K at once). Written by "
          f"mqcd {__version__}" + (f" (git {git})" if (git := _git_version()) else "")
          + f" on {_dt.date.today().isoformat()}; the run files (HDF5 and the deck "
          f"of each run) are in `{_relative(study.runs_dir, out_dir)}`, every number below is "
          "also in `study.h5` (xarray: `xarray.open_datatree('study.h5', engine='h5netcdf')`).")
    doc.p("Hopping methods are judged by their active states (`populations/active`; error "
          "bands and bars: binomial standard error sqrt(P(1-P)/N)), mean-field methods by the "
          "populations of rho (bands: ensemble standard error std/sqrt(N)); exact in black. "
          "Δ = run - exact; ± is one standard error of the run (the exact branching is converged "
          "to its [exact] exit_norm, 1e-4 by default). Errors over time are taken on the run's "
          "records up to the earlier of the two final times.")
    doc.h(2, "Methods (labels)")
    doc.table(["label", "deck overrides"], _variant_text(study))
    missing = [r for r in study.all_runs if r.name not in loaded]
    if missing:
        doc.p("**Missing results** (not run yet, or failed): " + "; ".join(
            f"`{r.name}`" + (f" ({failures[r.name].splitlines()[0]})" if r.name in failures else "")
            for r in missing))

    rows_h5 = []
    for case, ex, runs in study.cases():
        ex_res = loaded.get(ex.name) if ex is not None else None
        ex_view = run_view(ex_res, "exact") if ex_res is not None else None
        views, members = [], []
        for r in runs:
            if r.name in loaded:
                views.append(run_view(loaded[r.name], labels[r.name]))
                members.append(r)
        doc.h(2, f"Case: {case}")
        some = views[0] if views else ex_view
        if some is None:
            doc.p("No results yet.")
            continue
        doc.p(plots.title_of(views + ([ex_view] if ex_view else [])) + "."
              + (f" Exact: {_exact_text(ex_res)}." if ex_res is not None else " No exact run."))
        ns = some.nstates
        allv = views + ([ex_view] if ex_view is not None else [])
        if some.T is not None:
            head = (["run", "N"] + [f"T{n}" for n in range(ns)] + [f"R{n}" for n in range(ns)]
                    + (["max abs(Δ) vs exact"] if ex_view else []))
            rows = []
            for v in allv:
                errs = errors_vs(v, ex_view) if (ex_view is not None and v is not ex_view) else {}
                vals = []
                for kind in ("T", "R"):
                    x, e = getattr(v, kind), getattr(v, kind + "_se")
                    for n in range(ns):
                        d = errs.get("delta_transmission" if kind == "T" else "delta_reflection")
                        cell = _pm(x[n], None if e is None else e[n])
                        if d is not None:
                            cell += f" (Δ {_pm(d[n], signed=True)})"
                        vals.append(cell)
                dmax = (_pm(errs["branching_delta_max"], errs["branching_delta_max_se"])
                        if "branching_delta_max" in errs else "—")
                rows.append([v.label, v.N or "exact"] + vals + ([dmax] if ex_view else []))
            doc.h(3, "Branching (transmitted T / reflected R on each adiabatic state)")
            doc.table(head, rows)
        if ex_view is not None and views:
            head = (["run", "populations"] + [f"abs(ΔP{n}) final" for n in range(ns)]
                    + [f"max abs(ΔP{n}) (at t)" for n in range(ns)]
                    + ["abs(Δ indicator) final", "max abs(Δ indicator) (at t)", "compared to t"])
            rows = []
            for v in views:
                e = errors_vs(v, ex_view)
                if "populations_error_max" not in e:
                    continue
                se = e.get("populations_se_final")
                rows.append([v.label, v.source.split("/")[-1]]
                            + [_pm(e["populations_error_final"][n], None if se is None else se[n])
                               for n in range(ns)]
                            + [f"{e['populations_error_max'][n]:.3f} ({e['populations_error_max_at'][n]:.0f})"
                               for n in range(ns)]
                            + ([_pm(e["indicator_error_final"], e.get("indicator_se_final")),
                                f"{e['indicator_error_max']:.3f} ({e['indicator_error_max_at']:.0f})"]
                               if "indicator_error_max" in e else ["—", "—"])
                            + [f"{e['time_compared']:.0f}"])
            doc.h(3, "Populations and decoherence indicator vs exact (times in a.u.)")
            doc.table(head, rows)
        rows = []
        for v in allv:
            tp = throughput(v.attrs)
            warn = run_problems(v.attrs)
            rows.append([v.label, tp["steps"], f"{v.t_end:.0f}", f"{tp['wall_time_s']:.1f}",
                         f"{tp['trajectory_steps_per_s']:.3g}" if "trajectory_steps_per_s" in tp
                         else "—", "; ".join(warn) or "—"])
        doc.h(3, "Cost")
        doc.table(["run", "steps", "final t (a.u.)", "wall time (s)", "trajectory-steps/s",
                   "warnings"], rows)
        if _want_case_figures(study):
            stem = file_name([case])
            made = [(plots.populations_figure(allv, out_dir / f"{stem}_populations.png", colours),
                     "populations"),
                    (plots.indicator_figure(allv, out_dir / f"{stem}_indicator.png", colours),
                     "decoherence indicator")]
            if some.T is not None:
                made.append((plots.branching_figure(allv, out_dir / f"{stem}_branching.png",
                                                    colours), "branching"))
            for p, alt in made:
                doc.img(Path(p).name, f"{case}: {alt}")
        for v, r in zip(allv, members + ([ex] if ex_view is not None else [])):
            rows_h5.append((case, r, v, errors_vs(v, ex_view) if (ex_view is not None and
                                                                  v is not ex_view) else {}))

    if study.scan:
        scan = {}
        for case, r, v, _ in rows_h5:
            x = _scan_x(r.labels.get(study.scan))
            if x is not None and v.T is not None:
                lab = "exact" if r.exact else labels[r.name]
                scan.setdefault(lab, []).append((x, v))
        if scan:
            order = {lab: i for i, lab in enumerate(colour_order + ["exact"])}
            scan = dict(sorted(scan.items(), key=lambda kv: order.get(kv[0], 99)))
            p = plots.scan_figure(scan, out_dir / "scan_branching.png", colours)
            doc.h(2, f"Branching vs {study.scan}")
            doc.img(Path(p).name, f"branching vs {study.scan}")
            doc.p("Exact row: T0 T1 ... R0 R1 ...; method rows: the largest abs(Δ) vs exact "
                  "over the channels, ± one standard error.")
            xs = sorted({x for pts in scan.values() for x, _ in pts})
            doc.table(["run"] + [f"{study.scan} = {x:g}" for x in xs], _scan_rows(scan))
    doc.h(2, "The study file")
    doc.code(study.text.rstrip())
    md = out_dir / "report.md"
    md.write_text(doc.markdown(), encoding="utf-8")
    (out_dir / "report.html").write_text(doc.html(study.title), encoding="utf-8")
    if rows_h5:
        write_result(out_dir / "study.h5", study_result(study, rows_h5, labels), force=True)
    return md


def _scan_rows(scan):
    """Rows of the scan table: exact branching (T0 T1 .. R0 R1 ..) per value, and per method the
    largest abs(Δ) vs exact over the channels, +- its standard error."""
    xs = sorted({x for pts in scan.values() for x, _ in pts})
    exact = {x: v for x, v in scan.get("exact", [])}
    rows = []
    for lab, pts in scan.items():
        by_x = dict(pts)
        cells = []
        for x in xs:
            v = by_x.get(x)
            if v is None:
                cells.append("—")
            elif v.is_exact:
                cells.append(" ".join(f"{t:.3f}" for t in np.concatenate([v.T, v.R])))
            elif x in exact:
                e = errors_vs(v, exact[x])
                cells.append(_pm(e["branching_delta_max"], e["branching_delta_max_se"]))
            else:
                cells.append("no exact")
        rows.append([lab] + cells)
    return rows


def _want_case_figures(study):
    if study.case_figures == "auto":
        return len(study.cases()) <= 4
    return study.case_figures == "yes"


def _exact_text(res):
    a = res.attrs
    pts = a.get("npoints")
    if isinstance(pts, str):
        pts = json.loads(pts)
    pts = " x ".join(str(int(n)) for n in np.atleast_1d(pts)) if pts is not None else "?"
    return (f"split-operator grid of {pts} points, dt = {float(a.get('dt', 0)):.3g} a.u., to t = "
            f"{float(res['time'][-1]):.0f} a.u. ({a.get('stop_reason', '')}), "
            f"{float(a.get('wall_time_s', 0)):.1f} s")


def study_result(study, rows, labels) -> Result:
    """Every number of the report as a :class:`Result` with dimensions ``run`` (one per run,
    coordinate: "case | label") and ``state``."""
    ns = max(v.nstates for _, _, v, _ in rows)

    def per_state(x):
        a = np.full(ns, np.nan)
        if x is not None:
            a[:len(x)] = x
        return a

    res = Result(attrs={"mqcd_version": __version__, "method": "study", "model": ",".join(
        sorted({str(v.attrs.get('model', '')) for _, _, v, _ in rows})), "study": str(study.path),
        "title": study.title, "study_text": study.text, "deck": ""})
    run_ids = [f"{case} | {labels[r.name]}" for case, r, _, _ in rows]
    res.add("run", np.array(run_ids), "1", dims=("run",))
    res.add("runs/final_time", np.array([v.t_end for _, _, v, _ in rows]), "atomic_unit_of_time",
            dims=("run",))
    text = {"case": [c for c, _, _, _ in rows], "label": [labels[r.name] for _, r, _, _ in rows],
            "method": [v.method for _, _, v, _ in rows], "kind": [v.kind for _, _, v, _ in rows],
            "file": [f"{r.name}.h5" for _, r, _, _ in rows]}
    for k, vals in text.items():
        res.add(f"runs/{k}", np.array(vals), "1", dims=("run",))
    res.add("runs/trajectories", np.array([v.N for _, _, v, _ in rows], np.int64), "1",
            dims=("run",))
    tp = [throughput(v.attrs) for _, _, v, _ in rows]
    res.add("runs/wall_time_s", np.array([t["wall_time_s"] for t in tp]), "second", dims=("run",))
    res.add("runs/trajectory_steps_per_s", np.array([t.get("trajectory_steps_per_s", np.nan)
                                                     for t in tp]), "1 / second", dims=("run",))
    for kind in ("transmission", "reflection"):
        k = kind[0].upper()
        res.add(f"branching/{kind}", np.array([per_state(getattr(v, k)) for _, _, v, _ in rows]),
                "1", dims=("run", "state"))
        res.add(f"branching/{kind}_se", np.array([per_state(getattr(v, k + "_se"))
                                                  for _, _, v, _ in rows]), "1",
                dims=("run", "state"))
        res.add(f"errors/delta_{kind}", np.array([per_state(e.get(f"delta_{kind}"))
                                                  for _, _, _, e in rows]), "1",
                dims=("run", "state"))
    res.add("populations/final", np.array([per_state(v.P[-1]) for _, _, v, _ in rows]), "1",
            dims=("run", "state"))
    for k in ("populations_error_final", "populations_error_max"):
        res.add(f"errors/{k}", np.array([per_state(e.get(k)) for _, _, _, e in rows]), "1",
                dims=("run", "state"))
    for k in ("indicator_error_final", "indicator_error_max"):
        res.add(f"errors/{k}", np.array([e.get(k, np.nan) for _, _, _, e in rows]), "1",
                dims=("run",))
    if study.scan:
        res.add("runs/scan_value", np.array([_scan_x(r.labels.get(study.scan)) or np.nan
                                             for _, r, _, _ in rows], float), "1", dims=("run",))
    res.attrs["nstates"] = ns
    return res
