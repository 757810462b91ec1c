"""Tully 3 at k = 10: decoherence indicator and T_geo(t) of qhd against exact.

Runs (results cached as HDF5 in --data): the exact solution with the exact-factorisation budgets
(``[exact] factorization = true``: T_geo of the exact wavefunction, LRG(8)), qhd on the exact
fields from fluid elements (oracle, N = --n-oracle), qhd with the swarm's kernel fields from fluid
elements (qhd's defaults), and Ehrenfest; then plots the decoherence indicator
sum_{n<m} |rho^ad_nm|^2 (ensemble mean) and T_geo = energy/geometric over time.

    python tools/qhd_tully3_figure.py [--n 1000] [--n-oracle 200] [--data DIR]
                                      [--png docs/figures/qhd_tully3_tgeo.png]

Prints the T_geo peak (value, time) and the rms deviation of each curve from exact over the
common time range.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mqcd  # noqa: E402
from mqcd.analysis.validate import scattering_deck  # noqa: E402
from mqcd.exact import run_exact  # noqa: E402
from mqcd.io.results import load, write_result  # noqa: E402


def cached(path, make):
    if Path(path).exists():
        return load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = make()
    write_result(path, res, force=True)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--n-oracle", type=int, default=200)
    ap.add_argument("--data", default="exact_data")
    ap.add_argument("--png", default=str(ROOT / "docs" / "figures" / "qhd_tully3_tgeo.png"))
    a = ap.parse_args(argv)
    d = Path(a.data)
    d.mkdir(parents=True, exist_ok=True)

    def deck(method, n, sampling):
        dk = scattering_deck("tully3", 10.0, method, ntraj=n)
        dk["initial"]["sampling"] = sampling
        return dk

    exd = scattering_deck("tully3", 10.0)
    exd["exact"] = {"factorization": True}
    runs = {"exact": cached(d / "t3_exact_fact.h5", lambda: run_exact(exd))}
    spec = [("qhd, exact fields (oracle)", {"name": "qhd", "field_method": "exact"},
             a.n_oracle, "hydrodynamic", "t3_qhd_oracle.h5"),
            ("qhd, kernel fields", {"name": "qhd"}, a.n, "hydrodynamic", "t3_qhd_kernel.h5"),
            ("ehrenfest", {"name": "ehrenfest"}, a.n, "wigner", "t3_ehrenfest.h5")]
    for label, method, n, sampling, fname in spec:
        runs[label] = cached(d / fname, lambda: mqcd.run(deck(method, n, sampling)))
    ex = runs["exact"]
    te = np.asarray(ex["time"])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, r in runs.items():
        t = np.asarray(r["time"])
        style = dict(color="k", lw=2.5) if label == "exact" else dict(lw=1.5)
        axes[0].plot(t, r["coherence/indicator"], label=label, **style)
        if "energy/geometric" in r:
            axes[1].plot(t, 1e3 * np.asarray(r["energy/geometric"]), label=label, **style)
        m = t <= te[-1]
        coh = np.sqrt(np.mean((np.asarray(r["coherence/indicator"])[m]
                               - np.interp(t[m], te, ex["coherence/indicator"])) ** 2))
        line = f"{label}: decoherence indicator rms deviation {coh:.4f}"
        if "energy/geometric" in r:
            g = np.asarray(r["energy/geometric"])
            i = int(np.argmax(g))
            ge = np.interp(t[m], te, ex["energy/geometric"])
            line += (f"; T_geo peak {g[i]:.3e} hartree at t = {t[i]:.0f}, rms deviation "
                     f"{np.sqrt(np.mean((g[m] - ge) ** 2)):.2e} hartree")
        print(line)
    tmax = max(np.asarray(r["time"])[-1] for k, r in runs.items() if k != "exact")
    for ax in axes:
        ax.set_xlim(0, tmax)
        ax.set_xlabel("time (atomic_unit_of_time)")
    axes[0].set_ylabel("decoherence indicator")
    axes[1].set_ylabel("T_geo (millihartree)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Tully 3, k = 10")
    fig.tight_layout()
    Path(a.png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.png, dpi=110)
    print(f"figure: {a.png}")


if __name__ == "__main__":
    main()
