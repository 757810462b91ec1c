"""Error of the swarm fields against analytic fields as the swarm grows.

Swarms are sampled with fixed seeds from known densities (one Gaussian; two Gaussians of different
widths) and carry an analytic pure-state density matrix rho(x) = |psi(x)><psi(x)| with
psi = (cos theta(x), exp(i phi(x)) sin theta(x)). For each N the script reports root-mean-square
errors over the bulk trajectories (exact density above ``bulk`` times its maximum) of

* n (relative), grad ln n (bohr^-1), d rho and Laplacian of rho (Frobenius norm, bohr^-1, bohr^-2),

averaged over seeds, and the convergence exponent fitted between the smallest and largest N,
for the default options (normal-reference bandwidths) and with both bandwidth multipliers chosen
by cross-validation (``density_scale = regression_scale = "cv"``). Prints markdown.

    python tools/fields_convergence.py [--D 1] [--seeds 3] [--Ns 1000,4000,16000,64000,256000]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mqcd.fields import FieldOptions, estimate_fields  # noqa: E402


# ------------------------------------------------------------------------- analytic test fields
def sample_density(kind, N, D, rng):
    """Samples and the exact density / grad ln n at the samples for ``kind`` in
    ``("gauss", "bimodal")`` (the bimodal mixture is separated along the first dof)."""
    if kind == "gauss":
        x = rng.normal(size=(N, D))
        n = np.exp(-0.5 * (x ** 2).sum(1)) / (2 * np.pi) ** (D / 2)
        return x, n, -x
    # 0.5 N(-1.5, 0.6^2) + 0.5 N(+1.5, 0.9^2) along dof 0, unit normal in the others
    mu, sd = np.array([-1.5, 1.5]), np.array([0.6, 0.9])
    c = rng.integers(0, 2, size=N)
    x = rng.normal(size=(N, D))
    x[:, 0] = mu[c] + sd[c] * x[:, 0]
    comp = np.exp(-0.5 * ((x[:, 0, None] - mu) / sd) ** 2) / (np.sqrt(2 * np.pi) * sd)
    n0 = 0.5 * comp.sum(1)
    dn0 = 0.5 * (comp * (-(x[:, 0, None] - mu) / sd ** 2)).sum(1)
    rest = np.exp(-0.5 * (x[:, 1:] ** 2).sum(1)) / (2 * np.pi) ** ((D - 1) / 2)
    g = -x.copy()
    g[:, 0] = dn0 / n0
    return x, n0 * rest, g


def pure_state_field(x):
    """rho, d rho (N, D, 2, 2) and the Laplacian sum_j d_j d_j rho of the analytic pure state
    with theta = 0.6 + 0.5 tanh(x_0) + 0.2 sum_j x_j, phi = 0.8 sum_j x_j + 0.3 x_0^2."""
    N, D = x.shape
    s = np.tanh(x[:, 0])
    th = 0.6 + 0.5 * s + 0.2 * x.sum(1)
    dth = np.full((N, D), 0.2)
    dth[:, 0] += 0.5 * (1 - s ** 2)
    d2th = np.zeros((N, D))
    d2th[:, 0] = 0.5 * (-2 * s * (1 - s ** 2))
    ph = 0.8 * x.sum(1) + 0.3 * x[:, 0] ** 2
    dph = np.full((N, D), 0.8)
    dph[:, 0] += 0.6 * x[:, 0]
    d2ph = np.zeros((N, D))
    d2ph[:, 0] = 0.6
    c, sn, e = np.cos(th), np.sin(th), np.exp(1j * ph)
    psi = np.stack([c, e * sn], -1)
    dpsi = np.stack([-sn[:, None] * dth, e[:, None] * (c[:, None] * dth + 1j * sn[:, None] * dph)], -1)
    d2psi = np.stack([-c[:, None] * dth ** 2 - sn[:, None] * d2th,
                      e[:, None] * (-sn[:, None] * dth ** 2 + c[:, None] * d2th
                                    + 2j * c[:, None] * dth * dph + 1j * sn[:, None] * d2ph
                                    - sn[:, None] * dph ** 2)], -1)
    out = lambda a, b: a[..., :, None] * b[..., None, :].conj()  # noqa: E731
    rho = out(psi, psi)
    drho = out(dpsi, psi[:, None]) + out(psi[:, None], dpsi)
    lap = (out(d2psi, psi[:, None]) + 2 * out(dpsi, dpsi) + out(psi[:, None], d2psi)).sum(1)
    return rho, drho, lap


def errors(kind, N, D, seed, opts=None):
    rng = np.random.default_rng(seed)
    x, n, dlogn = sample_density(kind, N, D, rng)
    rho, drho, lap = pure_state_field(x)
    f = estimate_fields(x, rho, opts=opts, need=("density", "rho2"))
    bulk = n > BULK * n.max()
    lap_est = np.einsum("njjab->nab", f.d2rho)
    rms = lambda a: float(np.sqrt(np.mean(a[bulk] ** 2)))  # noqa: E731
    return np.array([rms(f.n / n - 1.0),
                     rms(np.linalg.norm(f.dlogn - dlogn, axis=1)),
                     rms(np.linalg.norm((f.drho - drho).reshape(N, -1), axis=1)),
                     rms(np.linalg.norm((lap_est - lap).reshape(N, -1), axis=1))]), f.method


BULK = 0.05


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--D", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--Ns", default="1000,4000,16000,64000,256000")
    args = ap.parse_args(argv)
    Ns = [int(v) for v in args.Ns.split(",")]
    names = ["n (rel.)", "grad ln n", "d rho", "Laplacian rho"]
    variants = {"rule": FieldOptions(), "cv": FieldOptions(density_scale="cv", regression_scale="cv")}
    for kind in ("gauss", "bimodal"):
        for vname, opts in variants.items():
            print(f"\n### {kind} density, D = {args.D}, bandwidths: {vname}; pure-state rho field, "
                  f"{args.seeds} seeds, bulk = exact n > {BULK} max n\n")
            print("| N | method | " + " | ".join(names) + " |")
            print("|---:|---|" + "---:|" * len(names))
            prev = None
            for N in Ns:
                errs = []
                for s in range(args.seeds):
                    e, meth = errors(kind, N, args.D, 1000 * s + N % 997, opts)
                    errs.append(e)
                e = np.mean(errs, axis=0)
                print(f"| {N} | {meth} | " + " | ".join(f"{v:.3e}" for v in e) + " |", flush=True)
                prev = (N, e) if prev is None else prev
                last = (N, e)
            (N0, e0), (N1, e1) = prev, last
            slope = np.log(e1 / e0) / np.log(N1 / N0)
            print("| fitted exponent | | " + " | ".join(f"{v:+.2f}" for v in slope) + " |")


if __name__ == "__main__":
    main()
