"""The "method floor" of every ladder rung: runs with the exact fields (oracle) against exact.

Each rung runs with ``[method] field_method = "exact"``: the split-operator solution of the same
deck is propagated beside the swarm and supplies n, d^k ln n (k <= 3), rho(x), d rho and d^2 rho
at the trajectories at every step (mqcd/fields/oracle.py), so that what is left of the error to
exact is the method's own (plus the statistical error of N trajectories), not the estimator's.
qhd runs twice: from fluid elements (``[initial] sampling = "hydrodynamic"``, its default) and
from Wigner-sampled momenta. Ehrenfest (no fields) is the reference row. ehrenfest-qc takes d rho
from the oracle too (``rho_derivatives = "regression"``: the estimator's d rho, here the exact
one), not from its default per-trajectory route (b).

    python tools/oracle_table.py [--n 200] [--cases tully1:10,tully2:16,tully3:10,double_arch:15]
                                 [--json oracle.json] [--data DIR]

Prints a markdown table of max |Δ| (branching T0 T1 R0 R1 against the exact run) with the
energy drift of each run; the JSON file is rewritten after every run (partial results survive).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mqcd  # noqa: E402
from mqcd.analysis.validate import branching_vec, exact_result, scattering_deck  # noqa: E402

RUNGS = [
    ("ehrenfest", {"name": "ehrenfest"}, None),
    ("geometric-ehrenfest", {"name": "geometric-ehrenfest", "field_method": "exact"}, None),
    ("ehrenfest-qc", {"name": "ehrenfest-qc", "field_method": "exact",
                      "rho_derivatives": "regression"}, None),
    ("geometric-ehrenfest-qc", {"name": "geometric-ehrenfest-qc", "field_method": "exact"}, None),
    ("qhd, fluid elements", {"name": "qhd", "field_method": "exact"}, "hydrodynamic"),
    ("qhd, Wigner momenta", {"name": "qhd", "field_method": "exact"}, "wigner"),
]


def run_one(model, k, method, sampling, n, data):
    deck = scattering_deck(model, k, method, ntraj=n)
    if sampling is not None:
        deck["initial"]["sampling"] = sampling
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = mqcd.run(deck)
    wall = time.perf_counter() - t0
    ex = exact_result(model, k, data)
    v, e = branching_vec(res), branching_vec(ex)
    E = np.asarray(res["energy/total"])
    out = {"branching": v.tolist(), "exact": e.tolist(), "max_delta": float(np.abs(v - e).max()),
           "energy_drift_end": float(E[-1] - E[0]), "energy_drift_max": float(np.abs(E - E[0]).max()),
           "stop": str(res.attrs.get("stop_reason", "")), "t_last": float(res["time"][-1]),
           "wall_s": wall, "warnings": [str(w.message)[:200] for w in caught]}
    if "diagnostics/rho_deviation" in res:
        out["rho_deviation_max"] = float(np.nanmax(res["diagnostics/rho_deviation"]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--cases", default="tully1:10,tully2:16,tully3:10,double_arch:15")
    ap.add_argument("--rungs", default=None, help="';'-separated subset of the row names")
    ap.add_argument("--json", default="oracle_table.json")
    ap.add_argument("--data", default="exact_data", help="folder of cached exact runs")
    a = ap.parse_args(argv)
    Path(a.data).mkdir(parents=True, exist_ok=True)
    cases = [(c.split(":")[0], float(c.split(":")[1])) for c in a.cases.split(",")]
    rungs = RUNGS if a.rungs is None else [r for r in RUNGS if r[0] in a.rungs.split(";")]
    results = json.loads(Path(a.json).read_text()) if Path(a.json).exists() else {}
    for model, k in cases:
        for label, method, sampling in rungs:
            key = f"{model} k={k:g} | {label} | N={a.n}"
            if key in results:
                continue
            try:
                results[key] = run_one(model, k, method, sampling, a.n, a.data)
            except Exception as exc:           # keep the table going; the row says why
                print(f"{key}: failed: {exc}", flush=True)
                continue
            r = results[key]
            print(f"{key}: max|Δ| {r['max_delta']:.3f} drift {r['energy_drift_end']:+.1e} "
                  f"stop {r['stop']} wall {r['wall_s']:.0f}s", flush=True)
            Path(a.json).write_text(json.dumps(results, indent=1))
    head = "| method, exact fields | " + " | ".join(f"{m} k={k:g}" for m, k in cases) + " |"
    print("\n" + head + "\n|---|" + "---|" * len(cases))
    for label, _, _ in rungs:
        cells = []
        for model, k in cases:
            r = results.get(f"{model} k={k:g} | {label} | N={a.n}")
            cells.append("-" if r is None else f"{r['max_delta']:.3f} ({r['energy_drift_end']:+.0e})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\nentries: max |Δ| of T0 T1 R0 R1 to exact (energy drift of energy/total at the end, "
          f"hartree); N = {a.n}, statistical error of the branching ~{1 / np.sqrt(a.n):.2f}/2")


if __name__ == "__main__":
    main()
