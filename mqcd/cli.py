"""Command line: ``mqcd run | exact | summary | compare | check-model | validate``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_run(a):
    from .api import run
    from .io.deck import read_deck
    deck = read_deck(a.deck)
    out = Path(a.output) if a.output else deck.output_path()
    res = run(deck, output=out, force=a.force, progress=not a.quiet, restart=a.restart)
    if res is not None and not a.quiet:
        print(f"wrote {out}  ({res.attrs['steps']} steps, {res.attrs['wall_time_s']:.2f} s)")


def _cmd_exact(a):
    from .exact import run_exact
    from .io.deck import read_deck
    from .io.results import check_writable, write_result
    deck = read_deck(a.deck, for_exact=True)
    suffix = "" if deck.output["file"] or (deck.path and deck.path.stem.endswith("exact")) else "_exact"
    out = Path(a.output) if a.output else deck.output_path(suffix)
    check_writable(out, a.force)
    bar = None
    if not a.quiet:
        from tqdm import tqdm
        bar = tqdm(total=deck.run["t_end"], unit="a.u.", desc="exact", disable=None,
                   mininterval=0.5)

    def progress(t, t_end):
        if bar is not None:
            bar.update(t - bar.n)
    res = run_exact(deck, progress=progress)
    if bar is not None:
        bar.close()
    write_result(out, res, force=a.force)
    if not a.quiet:
        print(f"wrote {out}")


def _cmd_summary(a):
    from .analysis.summary import format_summary, summarize, summary_json
    from .io.results import load
    res = load(a.file)
    print(summary_json(res) if a.json else format_summary(summarize(res)))


def _cmd_compare(a):
    from .analysis.compare import compare_files
    print(compare_files(a.files, plot=a.plot))


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
    r.add_argument("--force", action="store_true", help="overwrite an existing output file")
    r.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    r.add_argument("--restart", action="store_true",
                   help="continue from the checkpoint OUTPUT.ckpt (same deck; only [run] t_end, "
                   "[run] on_nonfinite, [output] checkpoint_every may change)")
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
    try:
        rc = a.func(a)
    except (DeckError, FileExistsError, FileNotFoundError, ValueError, RuntimeError) as exc:
        if getattr(exc, "mqcd_rank", 0) == 0:      # under MPI every rank raises; one reports
            print(f"mqcd {a.cmd}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mqcd: interrupted", file=sys.stderr)
        return 130
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
