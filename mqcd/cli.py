"""Command line: ``mqcd run | exact | summary | compare | check-model | validate``.

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
        deck = read_deck(a.deck)
        out = Path(a.output) if a.output else deck.output_path()
        res = run(deck, output=out, force=a.force, progress=shown, restart=a.restart, comm=comm,
                  partial_output=a.partial, progress_interval=a.log_interval)
        if res is not None and not a.quiet:
            print(f"wrote {out}  ({res.attrs['steps']} steps, {res.attrs['wall_time_s']:.2f} s)")


def _cmd_exact(a):
    from .exact import exact_plan, run_exact
    from .io.deck import deck_model, read_deck
    from .io.results import check_writable, write_result
    from .runtime import RunLock
    from .runtime.resources import exact_memory, refuse_if_too_big
    deck = read_deck(a.deck, for_exact=True)
    suffix = "" if deck.output["file"] or (deck.path and deck.path.stem.endswith("exact")) else "_exact"
    out = Path(a.output) if a.output else deck.output_path(suffix)
    plan, _, _ = exact_plan(deck)
    run = deck.run
    nrec = int(run["t_end"] / (deck.output["stride"] * run["dt"])) + 2 if run["stop"] == "time" else 0
    need = exact_memory(plan, deck_model(deck), deck.exact.get("store_density", True), nrec)
    pts = " x ".join(str(n) for n in plan.npoints)
    refuse_if_too_big(need, f"the exact grid of {pts} points ([exact] points / dx / box)",
                      "use fewer points (a larger [exact] dx or fewer [exact] points, a smaller box)"
                      + (", or store_density = false" if need["density"] else ""))
    with RunLock([out], what="exact run"):
        check_writable(out, a.force)
        bar = None
        if not a.quiet:
            from tqdm import tqdm
            bar = tqdm(total=deck.run["t_end"], unit="a.u.", desc="exact", disable=None,
                       mininterval=0.5)

        def progress(t, t_end):
            if bar is not None:
                bar.update(t - bar.n)
        try:
            res = run_exact(deck, progress=progress)
        finally:
            if bar is not None:
                bar.close()
        try:
            write_result(out, res, force=a.force)
        except OSError as exc:
            from .api import _rescue_write
            path = _rescue_write(out, res)
            raise RuntimeError(f"could not write the output {out} ({exc}); "
                               + (f"the results were written to {path} instead: move it to {out}"
                                  if path else "the results could not be written anywhere else "
                                  "either")) from None
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
    print(compare_files(a.files, plot=a.plot))
    sys.stdout.flush()


def _cmd_check_model(a):
    from .io.deck import deck_model, read_deck
    from .models.check import check_model, format_report
    deck = read_deck(a.deck, for_exact=True)
    rep = check_model(deck_model(deck))
    print(format_report(rep))
    return 0 if rep["ok"] else 1


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
                   "on_nonfinite, energy_tolerance, on_energy_drift and [output] "
                   "checkpoint_every may change)")
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
    r.set_defaults(func=_cmd_run)

    e = sub.add_parser("exact", help="exact grid quantum dynamics for the deck's model and packet")
    e.add_argument("deck")
    e.add_argument("-o", "--output")
    e.add_argument("--force", action="store_true")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=_cmd_exact)

    s = sub.add_parser("summary", help="final populations and branching of an output file")
    s.add_argument("file")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(func=_cmd_summary)

    c = sub.add_parser("compare", help="side-by-side table of several output files")
    c.add_argument("files", nargs="+")
    c.add_argument("--plot", help="PNG with populations and decoherence indicator vs time")
    c.set_defaults(func=_cmd_compare)

    m = sub.add_parser("check-model", help="check hermiticity, shapes and gradients of a model")
    m.add_argument("deck")
    m.set_defaults(func=_cmd_check_model)

    v = sub.add_parser("validate", help="run the validation cases and write docs/validation.md")
    v.add_argument("rest", nargs=argparse.REMAINDER)
    v.set_defaults(func=_cmd_validate)

    from .jellium.cli import add_parser as add_jellium_parser
    add_jellium_parser(sub)       # mqcd jellium run | equilibrium | coefficients (docs/jellium.md)

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
