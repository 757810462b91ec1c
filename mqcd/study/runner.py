"""Running a study: what is done, what is missing, running it (serial, ``--jobs K`` processes, or
under ``mpiexec`` with the ranks shared among the runs), then the report.

A run is *done* when a file in the runs folder holds a complete result of an identical deck (same
content, keys that cannot change the result aside: :func:`mqcd.study.spec.deck_fingerprint`),
under its own name or another; anything else is run (a file of an older deck under the run's name
is replaced). Each run writes its deck next to its result (``NAME.toml``), so that one run can be
repeated alone with ``mqcd run NAME.toml`` (``mqcd exact`` for the references).
"""
from __future__ import annotations

import os
import sys
import time
import tomllib
import traceback
import warnings
from pathlib import Path

import h5py

from ..io.deck import read_deck
from ..io.schema import DeckError
from .spec import deck_fingerprint, deck_text, load_study


def _say(msg):
    print(f"mqcd study: {msg}", file=sys.stderr, flush=True)


def file_fingerprint(path):
    """Fingerprint of the deck stored in an mqcd output file, or None (not an mqcd output, a
    partial result, unreadable)."""
    try:
        with h5py.File(path, "r") as f:
            a = f.attrs
            if "mqcd_version" not in a or "deck" not in a or a.get("partial", False):
                return None
            text, method = a["deck"], a.get("method", "")
        text = text.decode() if isinstance(text, bytes) else str(text)
        method = method.decode() if isinstance(method, bytes) else str(method)
        deck = read_deck(tomllib.loads(text), for_exact=method == "exact")
        return deck_fingerprint(deck)
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError):
        return None


def plan(study, force=False):
    """{run name: (state, path)} with state "done", "stale" (a file of another deck is there) or
    "missing"; a done run found under another name points to that file."""
    folder = study.runs_dir
    index = {}
    if folder.is_dir():
        for p in sorted(folder.glob("*.h5")):
            fp = file_fingerprint(p)
            if fp is not None:
                index.setdefault(fp, p)
    out = {}
    for r in study.all_runs:
        own = folder / f"{r.name}.h5"
        fp = r.fingerprint()
        if not force and fp in index:
            out[r.name] = ("done", index[fp])
        elif own.exists():
            out[r.name] = ("stale", own)
        else:
            out[r.name] = ("missing", own)
    return out


def execute(task):
    """Run one task {name, deck, output, exact} (in this process, or a worker); returns {name,
    ok, error, warnings, wall}. User-facing errors (bad deck, model check, write failure, ...)
    come back as text; so does any other error, with its traceback."""
    from ..api import run, run_exact_file
    from ..runtime import RunProblemWarning
    t0 = time.perf_counter()
    out = {"name": task["name"], "ok": False, "error": "", "warnings": []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if task["exact"]:
                run_exact_file(task["deck"], task["output"], force=True)
            else:
                run(task["deck"], output=task["output"], force=True, progress="none",
                    comm=task.get("comm"))
            out["ok"] = True
        except (DeckError, OSError, ValueError, RuntimeError) as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
        except Exception as exc:          # noqa: BLE001 - reported, the study goes on
            out["error"] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    out["warnings"] = [str(w.message) for w in caught if issubclass(w.category, RunProblemWarning)]
    out["wall"] = time.perf_counter() - t0
    return out


def _tasks(study, todo):
    tasks = []
    for r in todo:
        deck_path = study.runs_dir / f"{r.name}.toml"
        deck_path.write_text(deck_text(r, study), encoding="utf-8")
        tasks.append({"name": r.name, "deck": str(deck_path), "exact": r.exact,
                      "output": str(study.runs_dir / f"{r.name}.h5"),
                      "what": f"{r.method_label} ({r.case})"})
    return tasks


def _report_line(i, n, task, res):
    if res["ok"]:
        _say(f"[{i}/{n}] {task['what']}: done in {res['wall']:.1f} s -> {Path(task['output']).name}"
             + "".join(f"\n    warning: {w}" for w in res["warnings"]))
    else:
        _say(f"[{i}/{n}] {task['what']}: FAILED after {res['wall']:.1f} s: {res['error']}")


def _run_serial(tasks):
    results = []
    for i, t in enumerate(tasks, 1):
        _say(f"[{i}/{len(tasks)}] {t['what']}: running")
        res = execute(t)
        _report_line(i, len(tasks), t, res)
        results.append(res)
    return results


def _run_pool(tasks, jobs):
    """``jobs`` worker processes (spawned: a fresh interpreter each, numba threads shared out so
    that jobs x threads <= cores). Exact runs first: they are the longest."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    saved = os.environ.get("NUMBA_NUM_THREADS")
    if saved is None:
        os.environ["NUMBA_NUM_THREADS"] = str(max(1, (cores or 1) // jobs))
    results = []
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(execute, t): t for t in tasks}
            _say(f"{len(tasks)} runs on {jobs} processes")
            for i, fut in enumerate(as_completed(futures), 1):
                t = futures[fut]
                try:
                    res = fut.result()
                except Exception as exc:      # noqa: BLE001 - a worker died (killed, out of memory)
                    res = {"name": t["name"], "ok": False, "warnings": [], "wall": 0.0,
                           "error": f"the worker process failed: {type(exc).__name__}: {exc}"}
                _report_line(i, len(tasks), t, res)
                results.append(res)
    finally:
        if saved is None:
            os.environ.pop("NUMBA_NUM_THREADS", None)
    return results


def _run_mpi(tasks, jobs, comm):
    """Under mpiexec: the ranks split into ``jobs`` groups (contiguous blocks); group g runs
    tasks g, g + jobs, ... one after another, every trajectory run over all ranks of the group,
    exact runs (serial) on the group's first rank. Rank 0 gathers the outcomes."""
    from ..parallel import SerialComm
    from ..parallel.mpi import MPIComm
    world = comm.comm
    jobs = max(1, min(jobs, comm.size))
    colour = comm.rank * jobs // comm.size
    sub = world.Split(colour, comm.rank)
    group = MPIComm(sub) if sub.Get_size() > 1 else SerialComm()
    mine = []
    for j, t in enumerate(tasks):
        if j % jobs != colour:
            continue
        if group.is_root:
            _say(f"[{j + 1}/{len(tasks)}] {t['what']}: running on ranks {comm.rank}.."
                 f"{comm.rank + sub.Get_size() - 1}")
        if t["exact"]:
            res = execute(t) if group.is_root else None
            res = group.bcast(res) if sub.Get_size() > 1 else res
        else:
            res = execute({**t, "comm": group})
        if group.is_root:
            _report_line(j + 1, len(tasks), t, res)
        mine.append(res)
    sub.Free()
    gathered = world.gather(mine if group.is_root else [], root=0)
    world.Barrier()
    return [r for part in gathered for r in part] if comm.is_root else []


def run_study(path, jobs=1, report_only=False, dry_run=False, overrides=None, only=None,
              force=False, comm=None) -> int:
    """``mqcd study``: expand the study, run what is missing, write the report.

    Parameters
    ----------
    path : str | Path
        The study file (docs/studies.md).
    jobs : int
        Runs at once: worker processes, or under mpiexec groups of ranks.
    report_only, dry_run : bool
        Write the report from the results that exist / list the runs; run nothing.
    overrides : list of str
        ``--set section.key=value`` applied to every deck.
    only : list of str
        Run only the runs with one of these labels (the report uses whatever exists).
    force : bool
        Run every selected run again.

    Returns
    -------
    int
        Exit code: 0, or 2 if a run failed (the report is written from the others).
    """
    from ..parallel import get_comm
    from .report import write_report
    comm = comm or get_comm()
    study = load_study(path, overrides=overrides)        # every deck validated: nothing ran yet
    root = comm.is_root
    if root:
        study.runs_dir.mkdir(parents=True, exist_ok=True)
        study.report_dir.mkdir(parents=True, exist_ok=True)
    selected = [r for r in study.all_runs
                if not only or any(o in r.labels.values() or o == r.case for o in only)]
    state = plan(study) if root else None
    if root and force:                     # --force re-runs the selected runs only
        forced = plan(study, force=True)
        state.update({r.name: forced[r.name] for r in selected})
    state = comm.bcast(state) if comm.size > 1 else state
    todo = [r for r in selected if state[r.name][0] != "done"]
    if root:
        n_done = sum(state[r.name][0] == "done" for r in study.all_runs)
        _say(f"{study.path.name}: {len(study.runs)} trajectory runs, {len(study.exact_runs)} "
             f"exact references in {len(study.cases())} case(s); {n_done} done, "
             f"{len(todo)} to run" + (f" (--only {', '.join(only)})" if only else ""))
    if dry_run:
        if root:
            for r in study.all_runs:
                st, p = state[r.name]
                print(f"{st:8s} {r.method_label:24s} {r.case:24s} {p}")
        return 0
    results = []
    if todo and not report_only:
        tasks = _tasks(study, todo) if root else None
        tasks = comm.bcast(tasks) if comm.size > 1 else tasks
        if comm.size > 1:
            results = _run_mpi(tasks, jobs, comm)
        elif jobs > 1 and len(tasks) > 1:
            results = _run_pool(tasks, min(jobs, len(tasks)))
        else:
            results = _run_serial(tasks)
    rc = 0
    if root:
        failed = [r for r in results if not r["ok"]]
        state = plan(study)
        report = write_report(study, state, failures={r["name"]: r["error"] for r in failed},
                              run_warnings={r["name"]: r["warnings"] for r in results})
        _say(f"report: {report}")
        if failed:
            _say(f"{len(failed)} run(s) failed: " + ", ".join(r["name"] for r in failed))
            rc = 2
    return comm.bcast(rc) if comm.size > 1 else rc
