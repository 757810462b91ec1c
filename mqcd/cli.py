"""Command line: ``mqcd run | exact | summary | compare | study | check-model | friction |
validate``.

Exit codes: 0 success; 2 an error with a message (bad deck, refused restart, model check, a run
stopped on non-finite numbers or on the energy drift, output not writable, file not readable);
128 + N when the run stopped on signal N after saving (130 SIGINT, 143 SIGTERM); 141 when the
reader of stdout went away (``mqcd summary F | head``). Messages go to stderr through the
``logging`` module (logger ``mqcd``), on MPI rank 0 only.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

LOG = logging.getLogger("mqcd")
SET_HELP = ("override one deck key, e.g. --set run.trajectories=4000 --set method.name=fssh "
            "(repeatable; the value is TOML, a bare word is a string; validated like the deck "
            "and recorded in the output's deck text)")


def _cmd_run(a):
    from .api import run
    from .io.deck import read_deck
    from .parallel import get_comm
    from .runtime import cli_logging, resolve_mode
    comm = get_comm()
    a.rank = comm.rank
    mode = a.progress or ("none" if a.quiet else "auto")
    shown = resolve_mode(mode) if comm.is_root else "none"
    with cli_logging(shown, quiet=a.quiet, logfile=a.log, is_root=comm.is_root):
        deck = read_deck(a.deck, overrides=a.set)
        out = Path(a.output) if a.output else deck.output_path()
        res = run(deck, output=out, force=a.force, progress=shown, restart=a.restart, comm=comm,
                  partial_output=a.partial, progress_interval=a.log_interval)
        if res is not None and not a.quiet:
            print(f"wrote {out}  ({res.attrs['steps']} steps, {res.attrs['wall_time_s']:.2f} s)")


def _cmd_exact(a):
    from .api import run_exact_file
    from .io.deck import read_deck
    deck = read_deck(a.deck, for_exact=True, overrides=a.set)
    bar = None
    if not a.quiet:
        from tqdm import tqdm
        bar = tqdm(total=deck.run["t_end"], unit="a.u.", desc="exact", disable=None,
                   mininterval=0.5)

    def progress(t, t_end):
        if bar is not None:
            bar.update(t - bar.n)
    try:
        _, out = run_exact_file(deck, Path(a.output) if a.output else None, force=a.force,
                                progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if not a.quiet:
        print(f"wrote {out}")


def _cmd_summary(a):
    from .analysis.summary import format_summary, summarize, summary_json
    from .io.results import load
    res = load(a.file)
    print(summary_json(res) if a.json else format_summary(summarize(res)))
    sys.stdout.flush()


def _cmd_compare(a):
    from .analysis.compare import compare_files
    fmt = "json" if a.json else ("csv" if a.csv else "markdown")
    print(compare_files(a.files, plot=a.plot, labels=a.label, fmt=fmt,
                        transfer_plot=a.transfer_plot))
    sys.stdout.flush()


def _cmd_study(a):
    from .study import run_study
    return run_study(a.study, jobs=a.jobs, report_only=a.report_only, dry_run=a.dry_run,
                     overrides=a.set, only=a.only, force=a.force)


def _cmd_check_model(a):
    from .io.deck import deck_model, read_deck
    from .models.check import check_model, format_report
    deck = read_deck(a.deck, for_exact=True, overrides=a.set)
    model = deck_model(deck)
    rep = check_model(model)
    print(format_report(rep))
    line = _time_step_line(deck, model) if rep["ok"] else None
    if line:
        print(line)
    return 0 if rep["ok"] else 1


def _time_step_line(deck, model):
    """`mqcd check-model`: the model's stiffest mode at (up to 256 of) the deck's initial
    positions against ``[run] dt`` (the check `mqcd run` makes before the first step), or None
    when the deck has no trajectories to sample."""
    import numpy as np
    from .ensemble.initial import initial_conditions
    from .models.stiffness import VERLET_LIMIT, sample_rows, stiffest_frequency
    run = getattr(deck, "run", None) or {}
    if not run.get("trajectories") or not run.get("dt") or not getattr(deck, "initial", None) \
            or not getattr(deck, "method", None):           # exact decks: dt is not a Verlet step
        return None
    n = int(run["trajectories"])
    index = sample_rows(np.arange(n), n, model.ndof)
    try:
        w = stiffest_frequency(model, initial_conditions(deck, model, index).x)
    except Exception as exc:                  # the deck's sampling needs more than the model
        return f"time step: not checked ({type(exc).__name__}: {exc})"
    dt = float(run["dt"])
    if w <= 0:
        return f"time step: no positive curvature at the initial positions; [run] dt = {dt:g} a.u."
    verdict = "ok" if w * dt < VERLET_LIMIT else "UNSTABLE (mqcd run refuses it)"
    return (f"time step: stiffest nuclear mode at {index.size} initial positions omega = {w:.4g} "
            f"hartree, velocity-Verlet limit dt < 2/omega = {VERLET_LIMIT / w:.4g} a.u.; [run] "
            f"dt = {dt:g} a.u. (omega dt = {w * dt:.3g})  {verdict}")


def _cmd_friction(a):
    import json
    from .friction.calculator import format_table, friction, write_h5
    res = friction(a.deck, a.x, source=a.source, overrides=a.set)
    if a.output:
        write_h5(a.output, res)
    print(json.dumps(res.to_json()) if a.json else format_table(res))
    sys.stdout.flush()


def _cmd_validate(a):
    from .analysis.validate import main as validate_main
    return validate_main(a.rest)


def main(argv=None):
    p = argparse.ArgumentParser(prog="mqcd", description="Mixed quantum-classical dynamics "
                                "(atomic units throughout).")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="cmd")

    r = sub.add_parser("run", help="run a swarm from a TOML deck and write one HDF5 file")
    r.add_argument("deck")
    r.add_argument("-o", "--output", help="output HDF5 file (default: [output] file)")
    r.add_argument("--force", action="store_true",
                   help="overwrite an existing output file and an earlier run's checkpoint")
    r.add_argument("--quiet", action="store_true",
                   help="no progress or messages; problems (dropped trajectories, energy drift, "
                   "unfinished scattering) still get one line each at the end")
    r.add_argument("--restart", action="store_true",
                   help="continue from the checkpoint OUTPUT.ckpt (same deck; only [run] t_end, "
                   "on_nonfinite, energy_tolerance, on_energy_drift, on_unstable_step and "
                   "[output] checkpoint_every may change)")
    r.add_argument("--progress", choices=("auto", "bar", "log", "none"),
                   help="progress on MPI rank 0: a bar, a log line every --log-interval seconds "
                   "(steps, time, traj-steps/s, ETA, energy drift), or none; default auto: a bar "
                   "on a terminal, lines otherwise (mpiexec, batch jobs); none with --quiet")
    r.add_argument("--log-interval", type=float, default=10.0, metavar="SECONDS",
                   help="seconds between progress lines (default 10)")
    r.add_argument("--log", metavar="FILE", help="also write the progress lines and messages, "
                   "time-stamped, to FILE")
    r.add_argument("--partial", action="store_true",
                   help="when the run stops early (SIGINT/SIGTERM, energy drift with "
                   "on_energy_drift = \"stop\"), also write the output so far, marked partial")
    r.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help=SET_HELP)
    r.set_defaults(func=_cmd_run)

    e = sub.add_parser("exact", help="exact grid quantum dynamics for the deck's model and packet")
    e.add_argument("deck")
    e.add_argument("-o", "--output")
    e.add_argument("--force", action="store_true")
    e.add_argument("--quiet", action="store_true")
    e.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help=SET_HELP)
    e.set_defaults(func=_cmd_exact)

    s = sub.add_parser("summary", help="final populations and branching of an output file")
    s.add_argument("file")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(func=_cmd_summary)

    c = sub.add_parser("compare", help="side-by-side table of several output files")
    c.add_argument("files", nargs="+")
    c.add_argument("--plot", help="PNG: populations per state (hopping methods: active states), "
                   "decoherence indicator, branching; bands and error bars of 1 s.e.")
    c.add_argument("--transfer-plot", metavar="PNG", help="PNG: T_geo(t), T_marg(t), mean force, "
                   "power and the identity residuals of each run beside the exact ones "
                   "(docs/transfer.md)")
    c.add_argument("--label", action="append", metavar="LABEL",
                   help="name of a file in the table and legend, once per file in order "
                   "(default: the file names)")
    fmt = c.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="every number as one JSON object")
    fmt.add_argument("--csv", action="store_true", help="one CSV line per file")
    c.set_defaults(func=_cmd_compare)

    st = sub.add_parser("study", help="run a method-comparison study (STUDY.toml): every "
                        "variant x case x axis value, the exact references, one report")
    st.add_argument("study")
    st.add_argument("--jobs", type=int, default=1, metavar="K",
                    help="runs at once (default 1; under mpiexec the runs share the ranks)")
    st.add_argument("--report-only", action="store_true",
                    help="write the report from the results there are; run nothing")
    st.add_argument("--dry-run", action="store_true",
                    help="list the runs (done / to run) and their files; run nothing")
    st.add_argument("--only", action="append", metavar="LABEL",
                    help="run only the runs whose labels include LABEL (repeatable)")
    st.add_argument("--force", action="store_true",
                    help="run again even the runs whose result is already there")
    st.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a key of every run's deck (e.g. run.trajectories=500)")
    st.set_defaults(func=_cmd_study)

    m = sub.add_parser("check-model", help="check hermiticity, shapes and gradients of a model")
    m.add_argument("deck")
    m.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help=SET_HELP)
    m.set_defaults(func=_cmd_check_model)

    fr = sub.add_parser("friction", help="F0, friction tensor eta and its antisymmetric part B "
                        "at a nuclear position (docs/friction.md)")
    fr.add_argument("deck")
    fr.add_argument("--x", type=float, nargs="+", required=True, metavar="X",
                    help="nuclear position, one value per dof (bohr)")
    fr.add_argument("--json", action="store_true", help='one JSON object {"x", "F0", "eta", '
                    '"B", ...} in atomic units')
    fr.add_argument("--source", choices=("auto", "band", "wide-band"), default="auto",
                    help="the model's discretised spectrum ('band') or its wide-band limit "
                    "(default auto: 'wide-band' when [initial] bias != 0)")
    fr.add_argument("-o", "--output", metavar="H5", help="also write the numbers to HDF5")
    fr.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help=SET_HELP)
    fr.set_defaults(func=_cmd_friction)

    v = sub.add_parser("validate", help="run the validation cases and write docs/validation.md")
    v.add_argument("rest", nargs=argparse.REMAINDER)
    v.set_defaults(func=_cmd_validate)

    from .jellium.cli import add_parser as add_jellium_parser
    add_jellium_parser(sub)       # mqcd jellium run | equilibrium | coefficients (docs/jellium.md)
    from .conservation.cli import add_parser as add_fields_parser
    add_fields_parser(sub)        # mqcd fields (docs/conservation_fields.md)

    a = p.parse_args(argv)
    if a.version:
        from ._version import __version__
        print(__version__)
        return 0
    if not a.cmd:
        p.print_help()
        return 2
    from .io.deck import DeckError
    from .runtime import RunInterrupted
    try:
        rc = a.func(a)
    except BrokenPipeError:
        # the reader of stdout went away (`mqcd summary F | head`): not an error of mqcd
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (DeckError, OSError, ValueError, RuntimeError) as exc:
        if getattr(exc, "mqcd_rank", getattr(a, "rank", 0)) == 0:   # under MPI: rank 0 reports
            print(f"mqcd {a.cmd}: error: {exc}", file=sys.stderr)
        return 128 + exc.signum if isinstance(exc, RunInterrupted) else 2
    except KeyboardInterrupt:
        print("mqcd: interrupted", file=sys.stderr)
        return 130
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
