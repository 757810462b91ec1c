"""``mqcd jellium run | equilibrium | coefficients`` (wired into mqcd/cli.py by ``add_parser``).

Heavy imports happen inside the commands, so ``mqcd --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _cmd_run(a):
    from ..io.results import check_writable, write_result
    from .deck import read_jellium_deck
    from .run import plot_result, run_jellium
    deck = read_jellium_deck(a.deck)
    out = Path(a.output) if a.output else deck.output_path()
    check_writable(out, a.force)                   # before any compute
    png = None
    if a.plot:
        png = Path(a.plot)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError("--plot needs matplotlib (pip install 'mqcd[plot]')") from None
    elif deck.output["plot"]:     # next to the HDF5 file unless [output] plot_file says otherwise
        png = deck.plot_path() if deck.output["plot_file"] else out.with_suffix(".png")
    if png is not None:
        check_writable(png, a.force)
    if not a.quiet:
        print(f"mqcd jellium run {a.deck}: kernels {', '.join(deck.kernels)}")
    res = run_jellium(deck, progress=not a.quiet)
    write_result(out, res, force=a.force)
    msg = f"wrote {out}"
    if png is not None:
        plot_result(res, png, title=f"r_s = {deck.medium['rs']}, Z = {deck.impurity['charges']}, "
                    f"angle = {deck.pulse['angle']} deg")
        msg += f" and {png}"
    if not a.quiet:
        print(f"{msg}  ({res.attrs['wall_time_s']:.1f} s)")


def _response(a):
    from .kernels import KERNELS
    from .response import Response
    if a.kernel not in KERNELS:
        raise ValueError(f"--kernel {a.kernel!r} is not known; allowed: " + ", ".join(KERNELS))
    if not a.rs > 0:
        raise ValueError(f"--rs {a.rs}: the density parameter must be > 0 (bohr)")
    return Response(a.rs, a.kernel, a.lda)


def _cmd_equilibrium(a):
    import numpy as np

    from . import interaction as inter
    if not 0 < a.d_min < a.d_max or a.points < 2:
        raise ValueError("--d-min, --d-max must satisfy 0 < d_min < d_max and --points >= 2")
    resp = _response(a)
    d_eq = inter.equilibrium_distance(resp, charge_product=a.charges[0] * a.charges[1])
    ds = np.linspace(a.d_min, a.d_max, a.points)
    tab = inter.table(resp, ds, *a.charges)
    k_par, _ = inter.stiffness(resp, d_eq, *a.charges)
    if a.json:
        print(json.dumps({"d_eq": d_eq, "rs": a.rs, "kernel": a.kernel, "lda": a.lda,
                          "charges": list(a.charges), "U_min": inter.energy(resp, d_eq, *a.charges),
                          "k_par": k_par, "table": tab,
                          "units": {"d_eq": "bohr", "U_min": "hartree", "k_par": "hartree / bohr ** 2",
                                    "d": "bohr", "F": "hartree / bohr", "U": "hartree"}}))
        return
    print(f"r_s = {a.rs} bohr, kernel {a.kernel} ({a.lda}), Z1 Z2 = {a.charges[0] * a.charges[1]:g}")
    print(f"equilibrium distance d_eq = {d_eq:.6f} bohr   (U(d_eq) = "
          f"{inter.energy(resp, d_eq, *a.charges):.6e} hartree, U''(d_eq) = {k_par:.6e} "
          f"hartree/bohr^2)")
    print(f"{'d (bohr)':>10} {'F (hartree/bohr)':>18} {'U (hartree)':>16}")
    for d, F, U in zip(tab["d"], tab["F"], tab["U"]):
        print(f"{d:10.4f} {F:18.8e} {U:16.8e}")


def _cmd_coefficients(a):
    from .dynamics import MotionCoefficients
    _response(a)
    c = MotionCoefficients.compute(a.rs, a.kernel, a.charges, a.masses, a.lda)
    s = c.summary()
    if a.json:
        print(json.dumps(s))
        return
    print(f"r_s = {a.rs}, kernel {a.kernel} ({a.lda}), Z = {a.charges}, M = {a.masses} electron_mass")
    print(f"d_eq = {s['d_eq']:.6f} bohr; k_par = {s['k_par']:.6e}, k_perp = {s['k_perp']:.2e} "
          f"hartree/bohr^2")
    print(f"friction integrals (hartree atomic_unit_of_time/bohr^2): I0 = {s['I0']:.6e}, "
          f"I_par = {s['I_par']:.6e}, I_perp = {s['I_perp']:.6e}")
    for g in ("par", "perp"):
        w0 = s[f"omega0_sq_{g}"]
        print(f"{g:>4}: kappa = {s[f'kappa_{g}']:.6e} /a.u.t, omega0^2 = {w0:.6e} /a.u.t^2, "
              f"c.m. rate = {s[f'cm_rate_{g}']:.6e} /a.u.t, viscous share of the c.m. friction = "
              f"{100 * s[f'viscous_share_cm_{g}']:.2f} %")
        print(f"      (D7)-(D10): wind_cm = {s[f'wind_cm_{g}']:.6e}, cross_cm = {s[f'cross_cm_{g}']:.6e}"
              f" hartree a.u.t/bohr^2, wind_rel = {s[f'wind_rel_{g}']:.6e} /a.u.t")


def add_parser(sub) -> None:
    """Add the ``jellium`` command (with its sub-commands) to the subparsers ``sub``."""
    from .kernels import KERNELS
    j = sub.add_parser("jellium", help="diatomic impurity in an electron gas under current "
                       "(Nazarov-Todorov-Gross); see docs/jellium.md")
    js = j.add_subparsers(dest="jcmd", required=True)

    r = js.add_parser("run", help="integrate the motion under a current pulse from a TOML deck; "
                      "HDF5 + PNG")
    r.add_argument("deck")
    r.add_argument("-o", "--output", help="output HDF5 file (default: [output] file)")
    r.add_argument("--plot", help="PNG path (overrides [output] plot and plot_file)")
    r.add_argument("--force", action="store_true", help="overwrite existing output files")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=_cmd_run)

    def medium(p):
        p.add_argument("--rs", type=float, required=True, help="density parameter (bohr)")
        p.add_argument("--kernel", default="mcp07", help="xc kernel: " + ", ".join(KERNELS))
        p.add_argument("--lda", default="pz81", choices=("pz81", "pw92"))
        p.add_argument("--charges", type=float, nargs=2, default=(1.0, 1.0), metavar=("Z1", "Z2"))
        p.add_argument("--json", action="store_true", help="one JSON object")

    e = js.add_parser("equilibrium", help="equilibrium distance and the F(d), U(d) table "
                      "(eqs. (10)-(11))")
    medium(e)
    e.add_argument("--d-min", type=float, default=1.0, help="table start (bohr)")
    e.add_argument("--d-max", type=float, default=12.0, help="table end (bohr)")
    e.add_argument("--points", type=int, default=45, help="table rows")
    e.set_defaults(func=_cmd_equilibrium)

    c = js.add_parser("coefficients", help="friction, wind, damping and vibration coefficients "
                      "(App. D-E) at d_eq")
    medium(c)
    c.add_argument("--masses", type=float, nargs=2, default=(1836.15267343, 3670.48296788),
                   metavar=("M1", "M2"), help="electron_mass (default proton, deuteron)")
    c.set_defaults(func=_cmd_coefficients)

