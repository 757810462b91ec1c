"""HEOM reference for the seven-site FMO model (mqcd's ``fmo`` built-in), site 1 initially excited.

    <python with qutip> tools/fmo_heom_reference.py --temperature 77 [--depth 4 --nk 1]
        [--out docs/figures/fmo_heom_77K.json]

Runs the hierarchical equations of motion of qutip's ``HEOMSolver`` (qutip 5, a separate
environment: ``pip install qutip``; mqcd does not depend on it) for the electronic Hamiltonian of
mqcd/models/exciton.py (Adolphs and Renger 2006; read from that file) with an independent Drude-Lorentz (Debye) bath per
site, lambda = 35 cm^-1, 1/gamma = 50 fs - the model of A. Ishizaki and G. R. Fleming, Proc. Natl.
Acad. Sci. USA 106, 17255 (2009) - with ``--nk`` Matsubara terms plus the terminator, hierarchy
depth ``--depth``. Writes the site populations every 5 fs up to 1 ps as JSON (read by
tools/fmo_figure.py). Units inside: energies as angular frequencies in rad/fs.
"""
import argparse
import ast
import json
import time
from pathlib import Path

import numpy as np
import qutip
from qutip.solver.heom import DrudeLorentzBath, HEOMSolver

def fmo_hamiltonian_cm():
    """The electronic Hamiltonian of mqcd's ``fmo`` model (cm^-1) and its energy origin, read
    from mqcd/models/exciton.py without importing mqcd (this script runs where qutip is)."""
    src = (Path(__file__).resolve().parents[1] / "mqcd" / "models" / "exciton.py").read_text()
    vals = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and node.targets[0].id in ("FMO_HAMILTONIAN_CM",
                                                                 "FMO_ORIGIN_CM"):
            v = node.value
            vals[node.targets[0].id] = ast.literal_eval(v.args[0] if isinstance(v, ast.Call) else v)
    return np.array(vals["FMO_HAMILTONIAN_CM"]), float(vals["FMO_ORIGIN_CM"])


CM_TO_RAD_FS = 2.0 * np.pi * 2.99792458e-5          # omega (rad/fs) per wavenumber (cm^-1)
KB_CM = 0.69503476                                  # k_B in cm^-1 per kelvin


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--temperature", type=float, default=77.0)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--nk", type=int, default=1)
    ap.add_argument("--t-end", type=float, default=1000.0, help="fs")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    h_cm, origin = fmo_hamiltonian_cm()
    H = qutip.Qobj((h_cm - origin * np.eye(7)) * CM_TO_RAD_FS)
    lam = 35.0 * CM_TO_RAD_FS
    gamma = 1.0 / 50.0
    kT = KB_CM * a.temperature * CM_TO_RAD_FS
    baths = []
    for n in range(7):
        Q = qutip.basis(7, n) * qutip.basis(7, n).dag()
        bath = DrudeLorentzBath(Q, lam=lam, gamma=gamma, T=kT, Nk=a.nk, tag=n)
        _, term = bath.terminator()
        baths.append((bath, term))
    L = qutip.liouvillian(H) + sum(t for _, t in baths)
    solver = HEOMSolver(L, [b for b, _ in baths], max_depth=a.depth,
                        options={"nsteps": 100000, "store_states": True, "rtol": 1e-8,
                                 "atol": 1e-10})
    rho0 = qutip.basis(7, 0) * qutip.basis(7, 0).dag()
    tlist = np.arange(0.0, a.t_end + 1e-9, 5.0)
    t0 = time.perf_counter()
    res = solver.run(rho0, tlist)
    pops = np.array([[s.full()[n, n].real for n in range(7)] for s in res.states])
    wall = time.perf_counter() - t0
    print(f"HEOM T = {a.temperature} K, depth {a.depth}, Nk {a.nk}: {wall:.0f} s; "
          f"site-1 population at 100, 200, 500, 1000 fs: "
          + ", ".join(f"{pops[int(round(t / 5)), 0]:.3f}" for t in (100, 200, 500, 1000)
                      if t <= a.t_end))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"temperature_K": a.temperature, "depth": a.depth, "nk": a.nk,
                       "time_fs": tlist.tolist(), "populations": pops.tolist(),
                       "solver": f"qutip {qutip.__version__} HEOMSolver (Drude-Lorentz, "
                                 f"Nk = {a.nk} + terminator, depth {a.depth})"}, f)
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
