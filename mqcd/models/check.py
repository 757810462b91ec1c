"""Consistency check of a model: shapes, dtype, finiteness, hermiticity, batch independence and
analytic gradients against central finite differences.

>>> from mqcd.models import build_model
>>> from mqcd.models.check import check_model, format_report
>>> report = check_model(build_model({"name": "tully1"}))
>>> report["ok"]
True
>>> print(format_report(report))            # doctest: +SKIP

Works for any :class:`~mqcd.models.base.Model`: built-ins, user models with a numba ``kernel``
and user models that override ``evaluate()`` in numpy. The matrices are obtained through
``evaluate_into`` (the path the dynamics uses); for a model that overrides ``evaluate()`` the
arrays it returns are checked as well, so that a wrong shape cannot hide behind numpy
broadcasting.

Pass criteria (all must hold for ``ok``)
----------------------------------------
* ``masses``: ``model.masses`` has shape ``(ndof,)``, entries finite and > 0;
* shapes ``H (N, ns, ns)``, ``dH (N, ndof, ns, ns)``; dtype castable to ``model.dtype`` without
  loss (a complex H in a real model fails);
* every entry of H and dH finite;
* hermiticity: ``max |H - H^dagger|`` and ``max |dH_k - dH_k^dagger|`` at most
  ``HERM_RTOL * (max|H| resp. max|dH|) + HERM_ATOL``;
* batch independence: evaluating each point alone, and the batch in reverse order, gives the
  same matrices (to ``HERM_RTOL`` relative) -- catches kernels that mix rows of the batch;
* gradient: for every degree of freedom k,
  ``max |dH_k - (H(x + h e_k) - H(x - h e_k)) / (2h)|`` (maximum over points and matrix
  elements) is at most ``FD_RTOL * max|dH_k| + FD_ATOL + FD_NOISE * eps * max|H| / h`` with
  ``FD_RTOL = 1e-6`` relative to the largest entry of that dof's analytic gradient,
  ``FD_ATOL = 1e-10`` hartree/bohr, and the rounding noise of the difference quotient itself
  (eps = machine epsilon, ``FD_NOISE = 8``; the observed rounding error of the built-ins is about
  1-3 eps max|H| / h). The central-difference truncation error (h^2/6 times the third
  derivative, ~1e-10 relative for h = 1e-5 and smooth models) is far below the tolerance,
  while a wrong sign, a missing factor or a swapped component gives an error of the order of
  the gradient itself. Because the tolerance is per dof, an error in a weakly coupled dof is
  not hidden by a large gradient along another one.

The relative error reported per dof is ``abs error / max|dH_k|``. A model with a kink (e.g.
``|x|``) can fail only if a sample point falls within ``h`` of the kink.
"""
from __future__ import annotations

import numpy as np

FD_RTOL = 1e-6
FD_ATOL = 1e-10
FD_NOISE = 8.0
HERM_RTOL = 1e-12
HERM_ATOL = 1e-14
NPOINTS = 64


def _sample(model, seed, npoints):
    r = float(getattr(model, "interaction_radius", 1.0) or 1.0)
    if not np.isfinite(r) or r <= 0:
        r = 1.0
    rng = np.random.default_rng(seed)
    return rng.uniform(-r, r, size=(npoints, int(model.ndof))), r


def _evaluate(model, x):
    """``(H, dH)`` through ``evaluate_into`` on freshly allocated arrays."""
    H, dH = model.allocate(x.shape[0])
    model.evaluate_into(np.ascontiguousarray(x, dtype=np.float64), H, dH)
    return H, dH


def _max(a):
    return float(np.max(np.abs(a))) if np.size(a) else 0.0


def check_model(model, x=None, seed=0, h=1e-5, npoints=NPOINTS):
    """Check ``model`` and return a report dictionary.

    Parameters
    ----------
    model : Model
        The model instance to check.
    x : array (N, ndof), optional
        Positions (bohr). Default: ``npoints`` points drawn uniformly in
        ``[-interaction_radius, interaction_radius]`` in every dof with ``seed``.
    h : float
        Finite-difference step (bohr).

    Returns
    -------
    dict with ``name``, ``class``, ``nstates``, ``ndof``, ``dtype``, ``npoints``, ``h``,
    ``sample_radius``, ``masses``, the individual check results (``masses_ok``, ``shapes_ok``,
    ``dtype_ok``, ``finite_ok``, ``hermiticity_H``, ``hermiticity_dH``, ``hermitian_ok``,
    ``batch_error``, ``batch_ok``, ``fd_abs_error``, ``fd_rel_error``, ``fd_scale_per_dof``
    (max|dH_k|) and ``fd_tolerance`` (lists per dof), ``fd_scale`` (max|dH|), ``fd_noise``,
    ``fd_worst`` (the deviation largest relative to its tolerance: dof, point, element, x,
    analytic and finite-difference values), ``fd_ok``), ``worst_error`` (largest relative
    gradient error), ``worst_dof`` (its dof) and ``worst_ratio`` (largest error / tolerance; the
    gradient check passes when it is <= 1),
    ``failures`` (list of messages), ``tolerances`` and ``ok``.
    """
    rep = _new_report(model, h, seed)
    fail = rep["failures"].append
    ns, ndof = rep["nstates"], rep["ndof"]
    _check_masses(model, rep)

    # ---------------------------------------------------------------- positions
    if x is None:
        x, radius = _sample(model, seed, npoints)
    else:
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        radius = float(np.max(np.abs(x))) if x.size else 0.0
        if x.shape[1] != ndof:
            fail(f"x has {x.shape[1]} columns but the model has ndof = {ndof}")
            return _finish(rep)
    x = np.ascontiguousarray(x)
    n = x.shape[0]
    rep["npoints"] = n
    rep["sample_radius"] = radius

    H, dH = _check_values(model, x, rep)
    if H is None:
        return _finish(rep)
    hmax, dhmax = _max(H), _max(dH)

    # ---------------------------------------------------------------- batch independence
    try:
        Hr, dHr = _evaluate(model, x[::-1])
        err = max(_max(Hr[::-1] - H) / (hmax + HERM_ATOL), _max(dHr[::-1] - dH) / (dhmax + HERM_ATOL))
        for i in (0, n - 1):
            H1, dH1 = _evaluate(model, x[i:i + 1])
            err = max(err, _max(H1[0] - H[i]) / (hmax + HERM_ATOL),
                      _max(dH1[0] - dH[i]) / (dhmax + HERM_ATOL))
    except Exception as exc:
        fail(f"evaluating a sub-batch raised {type(exc).__name__}: {exc}")
        return _finish(rep)
    rep["batch_error"] = float(err)
    rep["batch_ok"] = bool(err <= HERM_RTOL * 10)
    if not rep["batch_ok"]:
        fail(f"results depend on the batch (relative difference {err:.3g} when a point is "
             "evaluated alone or the batch is reversed): rows must be independent")

    # ---------------------------------------------------------------- finite differences
    noise = FD_NOISE * np.finfo(np.float64).eps * hmax / h
    rep["fd_scale"] = dhmax
    rep["fd_noise"] = float(noise)
    abs_err, rel_err, scales, tols = [], [], [], []
    worst = None
    for k in range(ndof):
        xp = x.copy()
        xm = x.copy()
        xp[:, k] += h
        xm[:, k] -= h
        try:
            Hp, _ = _evaluate(model, xp)
            Hm, _ = _evaluate(model, xm)
        except Exception as exc:
            fail(f"evaluate at x +- h e_{k} raised {type(exc).__name__}: {exc}")
            return _finish(rep)
        fd = (Hp - Hm) / (2.0 * h)
        diff = np.abs(dH[:, k] - fd)
        e = float(diff.max())
        sk = _max(dH[:, k])
        tk = FD_RTOL * sk + FD_ATOL + noise
        abs_err.append(e)
        scales.append(sk)
        tols.append(float(tk))
        rel_err.append(e / (sk + FD_ATOL))
        if worst is None or e / tk > worst["ratio"]:
            p, i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
            worst = {"dof": k, "point": int(p), "i": int(i), "j": int(j), "x": x[p].tolist(),
                     "analytic": _scalar(dH[p, k, i, j]), "finite_difference": _scalar(fd[p, i, j]),
                     "abs_error": e, "tolerance": float(tk), "ratio": e / tk}
    rep["fd_abs_error"] = abs_err
    rep["fd_rel_error"] = rel_err
    rep["fd_scale_per_dof"] = scales
    rep["fd_tolerance"] = tols
    rep["fd_worst"] = worst
    bad = [k for k in range(ndof) if abs_err[k] > tols[k]]
    rep["fd_ok"] = not bad
    if bad:
        w = worst
        fail(f"analytic dH disagrees with finite differences for dof {bad[:10]}"
             + (" ..." if len(bad) > 10 else "")
             + f"; worst at dof {w['dof']}, element ({w['i']},{w['j']}), x = "
             + _fmt_vec(w["x"]) + f": analytic {_fmt_num(w['analytic'])}, finite difference "
             + f"{_fmt_num(w['finite_difference'])} (abs error {w['abs_error']:.3g} > tolerance "
             + f"{w['tolerance']:.3g})")
    if rel_err:
        rep["worst_dof"] = int(np.argmax(rel_err))
        rep["worst_error"] = float(max(rel_err))
        rep["worst_ratio"] = float(worst["ratio"])
    return _finish(rep)


def _new_report(model, h=1e-5, seed=0):
    ns, ndof = int(model.nstates), int(model.ndof)
    rep = {"name": getattr(model, "name", type(model).__name__), "class": type(model).__name__,
           "nstates": ns, "ndof": ndof, "dtype": np.dtype(model.dtype).name, "h": float(h),
           "seed": int(seed),
           "tolerances": {"fd_rtol": FD_RTOL, "fd_atol": FD_ATOL, "herm_rtol": HERM_RTOL,
                          "herm_atol": HERM_ATOL},
           "failures": []}
    return rep


def _check_masses(model, rep):
    m = np.asarray(getattr(model, "masses", np.nan), dtype=np.float64)
    rep["masses"] = m.ravel().tolist()
    ndof = rep["ndof"]
    rep["masses_ok"] = bool(m.shape == (ndof,) and np.all(np.isfinite(m)) and np.all(m > 0))
    if not rep["masses_ok"]:
        rep["failures"].append(f"masses must be {ndof} finite positive numbers, got {rep['masses']}")


def _check_values(model, x, rep, require_finite=True):
    """Evaluation at ``x``: shapes, dtype, finite values, hermiticity (fills ``rep``); returns
    ``(H, dH)``, or ``(None, None)`` when a failure makes further checks meaningless. Without
    ``require_finite`` points with non-finite H or dH are left out instead of failing."""
    fail = rep["failures"].append
    ns, ndof = rep["nstates"], rep["ndof"]
    n = x.shape[0]
    try:
        H, dH = _evaluate(model, x)
    except Exception as exc:  # report, do not crash the checker
        fail(f"evaluate_into raised {type(exc).__name__}: {exc}")
        return None, None

    shape_msgs, dtype_msgs = [], []
    if type(model).evaluate is not _base_evaluate():
        # a numpy model: check what evaluate() itself returns (evaluate_into broadcasts)
        try:
            out = model.evaluate(x)
            h_raw, dh_raw = out
            h_raw, dh_raw = np.asarray(h_raw), np.asarray(dh_raw)
        except Exception as exc:
            fail(f"evaluate raised {type(exc).__name__}: {exc}")
            return None, None
        if h_raw.shape != (n, ns, ns):
            shape_msgs.append(f"evaluate() returned H of shape {h_raw.shape}, expected {(n, ns, ns)}")
        if dh_raw.shape != (n, ndof, ns, ns):
            shape_msgs.append(f"evaluate() returned dH of shape {dh_raw.shape}, "
                              f"expected {(n, ndof, ns, ns)}")
        for what, arr in (("H", h_raw), ("dH", dh_raw)):
            if not np.can_cast(arr.dtype, np.dtype(model.dtype), "safe"):
                if np.iscomplexobj(arr) and np.dtype(model.dtype).kind != "c":
                    lost = _max(arr.imag)
                    if lost > 0:
                        dtype_msgs.append(f"evaluate() returned complex {what} (max |Im| = "
                                          f"{lost:.3g}) but model.dtype is {rep['dtype']}: the "
                                          "imaginary part is dropped; set dtype = np.complex128")
                else:
                    dtype_msgs.append(f"evaluate() returned {what} of dtype {arr.dtype}, which "
                                      f"does not cast safely to {rep['dtype']}")
    rep["shapes"] = {"H": list(H.shape), "dH": list(dH.shape)}
    if H.shape != (n, ns, ns) or dH.shape != (n, ndof, ns, ns):
        shape_msgs.append(f"allocate() gives H {H.shape}, dH {dH.shape}; expected "
                          f"{(n, ns, ns)}, {(n, ndof, ns, ns)}")
    if H.dtype != np.dtype(model.dtype) or dH.dtype != np.dtype(model.dtype):
        dtype_msgs.append(f"H/dH dtype {H.dtype}/{dH.dtype} differs from model.dtype {rep['dtype']}")
    rep["shapes_ok"] = not shape_msgs
    rep["dtype_ok"] = not dtype_msgs
    for msg in shape_msgs + dtype_msgs:
        fail(msg)
    if not rep["shapes_ok"]:
        return None, None

    rep["finite_ok"] = bool(np.all(np.isfinite(H)) and np.all(np.isfinite(dH)))
    if not rep["finite_ok"] and not require_finite:
        keep = np.isfinite(H).all(axis=(1, 2)) & np.isfinite(dH).all(axis=(1, 2, 3))
        H, dH, rep["finite_ok"] = H[keep], dH[keep], True
    if not rep["finite_ok"]:
        bad = np.unique(np.nonzero(~np.isfinite(H).all(axis=(1, 2))
                                   | ~np.isfinite(dH).all(axis=(1, 2, 3)))[0])
        fail(f"non-finite H or dH at {len(bad)} point(s), e.g. x = {x[bad[0]].tolist()}")
        return None, None

    # hermiticity
    hmax, dhmax = _max(H), _max(dH)
    herm_h = _max(H - np.conj(np.swapaxes(H, -1, -2)))
    herm_dh = [_max(dH[:, k] - np.conj(np.swapaxes(dH[:, k], -1, -2))) for k in range(ndof)]
    rep["hermiticity_H"] = herm_h
    rep["hermiticity_dH"] = max(herm_dh) if herm_dh else 0.0
    rep["hermiticity_dH_per_dof"] = herm_dh
    ok_h = herm_h <= HERM_RTOL * hmax + HERM_ATOL
    ok_dh = rep["hermiticity_dH"] <= HERM_RTOL * dhmax + HERM_ATOL
    rep["hermitian_ok"] = bool(ok_h and ok_dh)
    if not ok_h:
        fail(f"H is not Hermitian: max |H - H^dagger| = {herm_h:.3g}")
    if not ok_dh:
        k = int(np.argmax(herm_dh))
        fail(f"dH is not Hermitian: max |dH - dH^dagger| = {herm_dh[k]:.3g} (dof {k})")

    return H, dH


def check_at(model, x, max_points=4096, require_finite=True):
    """The cheap part of :func:`check_model` at the given positions ``x`` (N, ndof) in bohr:
    masses, shapes, dtype, finite values and hermiticity (no finite differences). Used by
    ``mqcd run`` at the initial positions before the first step (and, without
    ``require_finite``, at the finite positions of a checkpoint). At most ``max_points`` evenly
    spaced rows of ``x`` are evaluated. Returns the list of failure messages (empty: ok)."""
    rep = _new_report(model)
    _check_masses(model, rep)
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if not require_finite:
        x = x[np.isfinite(x).all(axis=1)]
    if x.shape[0] > max_points:
        x = x[:: -(-x.shape[0] // max_points)]
    if x.shape[0]:
        _check_values(model, np.ascontiguousarray(x), rep, require_finite)
    return rep["failures"]


def _base_evaluate():
    from .base import Model
    return Model.evaluate


def _scalar(v):
    v = complex(v)
    return v.real if v.imag == 0 else v


def _fmt_num(v):
    if isinstance(v, complex):
        return f"{v.real:.6g}{v.imag:+.6g}j"
    return f"{v:.6g}"


def _fmt_vec(v, n=6):
    s = ", ".join(f"{a:.4g}" for a in v[:n])
    return "[" + s + (", ..." if len(v) > n else "") + "]"


def _finish(rep):
    for key in ("masses_ok", "shapes_ok", "dtype_ok", "finite_ok", "hermitian_ok", "batch_ok",
                "fd_ok"):
        rep.setdefault(key, False)
    rep.setdefault("worst_error", float("nan"))
    rep.setdefault("worst_dof", None)
    rep.setdefault("worst_ratio", float("nan"))
    rep["ok"] = bool(not rep["failures"] and all(rep[k] for k in (
        "masses_ok", "shapes_ok", "dtype_ok", "finite_ok", "hermitian_ok", "batch_ok", "fd_ok")))
    return rep


def format_report(report, max_rows=20):
    """Readable table of a :func:`check_model` report (used by ``mqcd check-model``)."""
    r = report
    yes = {True: "ok", False: "FAILED"}
    lines = [f"model {r['name']} (class {r['class']}): {r['nstates']} states, {r['ndof']} dof, "
             f"dtype {r['dtype']}"]
    if "npoints" in r:
        lines.append(f"sample: {r['npoints']} points, |x| <= {r.get('sample_radius', 0):.4g} bohr "
                     f"(seed {r['seed']}), finite-difference step h = {r['h']:g} bohr")
    rows = [("masses", _fmt_vec(r.get("masses", []), 4) + " m_e", r["masses_ok"])]
    if "shapes" in r:
        rows.append(("shapes, dtype", f"H {tuple(r['shapes']['H'])}, dH {tuple(r['shapes']['dH'])}",
                     r["shapes_ok"] and r["dtype_ok"]))
    if "finite_ok" in r and "shapes" in r:
        rows.append(("finite values", "", r["finite_ok"]))
    if "hermiticity_H" in r:
        rows.append(("hermiticity", f"max|H-H^+| = {r['hermiticity_H']:.2e}, "
                     f"max|dH-dH^+| = {r['hermiticity_dH']:.2e}", r["hermitian_ok"]))
    if "batch_error" in r:
        rows.append(("batch independence", f"rel. difference {r['batch_error']:.2e}", r["batch_ok"]))
    if "fd_abs_error" in r:
        rows.append(("gradient vs finite diff.", f"max error/tolerance {r['worst_ratio']:.2g} "
                     f"(dof {r['fd_worst']['dof']})", r["fd_ok"]))
    w = max(len(a) for a, _, _ in rows)
    wv = max(len(b) for _, b, _ in rows)
    for a, b, ok in rows:
        lines.append(f"  {a:<{w}}  {b:<{wv}}  {yes[bool(ok)]}")

    if "fd_abs_error" in r:
        t = r["tolerances"]
        lines.append(f"gradient check (hartree/bohr): tolerance = {t['fd_rtol']:g} * max|dH_k| + "
                     f"{t['fd_atol']:g} + rounding {r['fd_noise']:.2g}")
        lines.append(f"  {'dof':>5}  {'max|dH_k|':>10}  {'abs error':>10}  {'tolerance':>10}  "
                     f"{'rel error':>10}  status")
        order = list(range(r["ndof"]))
        shown = order
        ratio = [e / tk for e, tk in zip(r["fd_abs_error"], r["fd_tolerance"])]
        if len(order) > max_rows:
            shown = sorted(sorted(order, key=lambda k: -ratio[k])[:max_rows])
        for k in shown:
            lines.append(f"  {k:>5}  {r['fd_scale_per_dof'][k]:>10.3e}  {r['fd_abs_error'][k]:>10.3e}  "
                         f"{r['fd_tolerance'][k]:>10.3e}  {r['fd_rel_error'][k]:>10.3e}  "
                         f"{'ok' if ratio[k] <= 1 else 'FAILED'}")
        if len(shown) < len(order):
            lines.append(f"  ({len(order) - len(shown)} more dof, each further below its "
                         "tolerance, not shown)")
    if r["failures"]:
        lines.append("problems:")
        lines.extend(f"  - {f}" for f in r["failures"])
    lines.append("RESULT: " + ("OK" if r["ok"] else f"FAILED ({len(r['failures'])} problem(s))"))
    return "\n".join(lines)
