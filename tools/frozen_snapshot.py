"""Frozen-snapshot test of the swarm field estimators against the exact fields.

A swarm is put where the exact solution says its fluid elements are: at time t the N elements sit
at the quantiles (I + 1/2)/N of the exact nuclear density n(x, t) of Tully 3 (k = 10, the standard
packet of docs/validation.md), each with the exact conditional density matrix rho(x_I, t). Every
estimator then computes the fields from that swarm alone and is compared with the exact fields at
the same points (mqcd/exact/factorization.py): relative rms errors over the swarm
(||estimate - exact|| / ||exact||, each element one sample of n) of d rho, Delta_M rho,
T2 = (1/n) d_x(n g / M) (the MB(64) force term) and the quantum force MB(68), for
N = 1e3, 4e3, 1e4, 4e4 and t = 2500, 2750, 3000 a.u.

    python tools/frozen_snapshot.py [--times 2500,2750,3000] [--n 1000,4000,10000,40000]
                                    [--estimators fluid,kernel] [--out docs/frozen_snapshot.md]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mqcd.analysis.validate import scattering_deck  # noqa: E402
from mqcd.electronic.geometry import geometry_from_fields  # noqa: E402
from mqcd.exact.factorization import quantile_positions  # noqa: E402
from mqcd.fields import ExactWavefunction, FieldOptions, FluidFields1D, estimate_fields  # noqa: E402
from mqcd.fields.conservative import divergence_pairs  # noqa: E402
from mqcd.fields.fluid import FluidOptions  # noqa: E402
from mqcd.io.deck import deck_model, read_deck  # noqa: E402

M = 2000.0


def snapshot(t, model="tully3", k=10.0):
    """(exact wavefunction at time t, its GridFields)."""
    deck = read_deck(scattering_deck(model, k, {"name": "qhd"}, ntraj=10))
    wf = ExactWavefunction(deck, deck_model(deck))
    wf.advance(int(round(t / deck.run["dt"])))
    return wf


def exact_terms(f):
    """d rho, Delta_M rho, T2 and Fq from exact (or estimated, pointwise) fields."""
    geo = geometry_from_fields(f, [M])
    return dict(drho=f.drho[:, 0], lap=f.d2rho[:, 0, 0] / M, T2=geo.T2[:, 0], Fq=geo.Fq[:, 0])


def estimated_terms(name, x, rho, V, fluid_opts=None):
    if name == "fluid":
        est = FluidFields1D(fluid_opts or FluidOptions())
        f = est.estimate(x, rho, need=("density", "logn3", "rho2"))
        f.masses = np.array([M])
        geo = geometry_from_fields(f, [M])
        T2 = est.divergence(f, (geo.g / M).transpose(0, 2, 1))[:, 0]
        Fq = est.divergence(f, 0.25 / M * f.d2logn)[:, 0]
    else:
        f = estimate_fields(x, rho, [M], FieldOptions(density_deriv=3),
                            need=("density", "logn3", "rho2"))
        geo = geometry_from_fields(f, [M])
        T2 = divergence_pairs(f, x, (geo.g / M).transpose(0, 2, 1))[:, 0]
        Fq = divergence_pairs(f, x, 0.25 / M * f.d2logn)[:, 0]
    return dict(drho=f.drho[:, 0], lap=f.d2rho[:, 0, 0] / M, T2=T2, Fq=Fq)


def rel(a, b):
    return float(np.sqrt(np.sum(np.abs(a - b) ** 2) / np.sum(np.abs(b) ** 2)))


def table(times, ns, estimators, fluid_opts=None, log=print):
    rows = []
    for t in times:
        wf = snapshot(t)
        gf = wf.grid_fields()
        for N in ns:
            x = quantile_positions(wf.psi, wf.op.axes, N)[:, None]
            ex = gf.fields_at(x)
            ref = exact_terms(ex)
            H, _ = wf.op.model.evaluate(x)
            V = np.linalg.eigh(H)[1].astype(np.complex128)
            for name in estimators:
                t0 = time.perf_counter()
                est = estimated_terms(name, x, ex.rho, V, fluid_opts)
                wall = time.perf_counter() - t0
                r = {k: rel(est[k], ref[k]) for k in ref}
                rows.append((t, N, name, r, wall))
                log(f"t={t:g} N={N} {name}: " + " ".join(f"{k} {v:.3g}" for k, v in r.items())
                    + f"  ({wall:.2f} s)")
    return rows


def markdown(rows):
    out = ["| t (a.u.) | N | estimator | d rho | Delta_M rho | (1/n) d(n g)/M | quantum force |",
           "|---|---:|---|---:|---:|---:|---:|"]
    for t, N, name, r, _ in rows:
        out.append(f"| {t:g} | {N} | {name} | {r['drho']:.3g} | {r['lap']:.3g} | {r['T2']:.3g} | "
                   f"{r['Fq']:.3g} |")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--times", default="2500,2750,3000")
    p.add_argument("--n", default="1000,4000,10000,40000")
    p.add_argument("--estimators", default="fluid,kernel")
    p.add_argument("--out", default=None, help="write the markdown table here")
    a = p.parse_args(argv)
    rows = table([float(v) for v in a.times.split(",")], [int(v) for v in a.n.split(",")],
                 a.estimators.split(","))
    md = markdown(rows)
    print(md)
    if a.out:
        Path(a.out).write_text(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
