"""``mqcd fields RUN.h5`` (wired into mqcd/cli.py by ``add_parser``; docs/conservation_fields.md)."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def _cmd_fields(a):
    from ..io.results import check_writable
    from .api import fields_from_file, summary, write_fields
    if a.output:
        check_writable(Path(a.output), a.force)              # before any compute
    series = fields_from_file(a.file, a.grid, a.width, derivatives=a.derivatives,
                              paths=a.paths, records=a.records, surface=a.surface,
                              weights=a.weights)
    info = summary(series, with_residuals=not a.no_residuals)
    if a.output:
        write_fields(Path(a.output), series, force=a.force)
        info["output"] = str(a.output)
    if a.json:
        print(json.dumps(info, indent=1))
    else:
        d = info["dim"]
        print(f"fields of {a.file}: {info['records']} records, t = {info['time_au'][0]:g} .. "
              f"{info['time_au'][1]:g} atomic_unit_of_time, grid {info['grid']}^{d} on a box "
              f"of {info['box_bohr']:g} bohr, kernel width {info['width_bohr']:g} bohr, "
              f"{info['derivatives']} pair derivatives, {info['paths']} heat-flux paths")
        print(f"  mass in the box    {info['mass_electron_mass']:.10g} electron_mass")
        print(f"  energy in the box  {info['energy_hartree']:.10g} hartree")
        print(f"  pressure (mean)    {info['pressure_hartree_per_bohr_dim']:.6e} hartree/bohr^{d}"
              f" (kinetic part {info['pressure_kinetic_hartree_per_bohr_dim']:.6e})")
        if "residuals" in info:
            print("  relative residuals: " + ", ".join(f"{k} {v:.2e}"
                                                     for k, v in info["residuals"].items()))
        if a.output:
            print(f"wrote {a.output}")
    sys.stdout.flush()


def add_parser(sub):
    f = sub.add_parser("fields", help="continuum fields (density, momentum, energy, stress, heat "
                       "flux) of a many-particle run with [output] trajectories = true, and the "
                       "residuals of their balance laws")
    f.add_argument("file", help="mqcd output HDF5 file")
    f.add_argument("--grid", type=int, required=True, metavar="NG",
                   help="grid points per direction of the periodic box (spacing at most "
                   "width/2)")
    f.add_argument("--width", type=float, required=True, metavar="BOHR",
                   help="width of the Gaussian smoothing kernel eta, bohr")
    f.add_argument("--derivatives", default="minimum-norm",
                   choices=("minimum-norm", "hellmann-feynman"),
                   help="pair derivatives of the eigenvalue in the bond stress: PSS Sec. 7 "
                   "minimum-norm (default) or the pair-local Hellmann-Feynman ones")
    f.add_argument("--paths", default="pairs", choices=("pairs", "star", "tree"),
                   help="bond paths of the non-pair-local heat flux: all ordered pairs as PSS "
                   "(3.12) (O(N^2)), through atom 0 (star, O(N) box-long segments) or along a "
                   "spanning tree of the bonds (tree, O(N) bond-long segments); same divergence")
    f.add_argument("--records", metavar="START:STOP[:STEP]",
                   help="records to use (Python slice; default all; the balance residuals need "
                   "5 or more equally spaced ones)")
    f.add_argument("--weights", default="stored", choices=("stored", "bar", "equal"),
                   help="trajectory weights: the run's final/weight (default), 'bar' (q_j "
                   "re-estimated from the run's configurations by Bennett's acceptance ratio: "
                   "use it for many-particle gibbs runs, docs/conservation_fields.md), 'equal'")
    f.add_argument("--surface", type=int, help="only the trajectories on this adiabatic surface")
    f.add_argument("-o", "--output", metavar="FIELDS.h5", help="write the fields to HDF5")
    f.add_argument("--force", action="store_true", help="overwrite --output")
    f.add_argument("--no-residuals", action="store_true",
                   help="skip the balance residuals (e.g. for a single record)")
    f.add_argument("--json", action="store_true",
                   help='print {"residuals": {"mass", "momentum", "energy", "virial"}, ...}')
    f.set_defaults(func=_cmd_fields)
