"""Reproduce the cases of issue 12 (docs/reliability.md) and print what mqcd does in each.

    python tools/reliability_cases.py [--root CHECKOUT] [--dir DIR] [--only 3a,6]

Writes small decks and model files to DIR (default: a fresh temporary folder), runs each case's
commands with the mqcd found in CHECKOUT (default: this one; give an older checkout to see the
behaviour before the fixes) and prints a markdown table: case, command (run inside DIR), exit
code, and the message (the last line of stderr: for a traceback, the exception line), plus what
happened to the files where that matters. Every command is shown as it would be typed, with
`mqcd` for `python -m mqcd`.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

TULLY = """[model]
name = "tully1"
{model}
[initial]
position = [{x0}]
momentum = [10.0]
width = [1.0]
[method]
name = "ehrenfest"
[run]
trajectories = {n}
dt = {dt}
t_end = {t_end}
seed = {seed}
{run}
[output]
stride = 10
{out}
"""

# a user model: tanh avoided crossing; optional asymmetry (non-Hermitian), wrong shape, NaN beyond
# xmax, a sleep per evaluation (so a run lasts long enough to be signalled), a raise at call N
USER = '''import os, time
import numpy as np
from mqcd.models import Model


class M(Model):
    name = "user"
    nstates = 2
    ndof = 1
    scattering = True
    parameters = {"asym": (0.0, "hartree", ""), "shape": (0.0, "1", ""), "xmax": (1e9, "bohr", ""),
                  "raise_after": (1e9, "1", "")}
    calls = 0

    def evaluate(self, x):
        time.sleep(float(os.environ.get("SLEEP", "0")))
        self.calls += 1
        if self.calls >= self.param_values["raise_after"]:
            raise ZeroDivisionError("a bug in the user's model")
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        q = x[:, 0]
        t = np.tanh(q)
        H = np.zeros((x.shape[0], 2, 2))
        dH = np.zeros((x.shape[0], 1, 2, 2))
        H[:, 0, 0], H[:, 1, 1] = 0.01 * t, -0.01 * t
        H[:, 0, 1] = 0.005 * np.exp(-q * q) + self.param_values["asym"]
        H[:, 1, 0] = 0.005 * np.exp(-q * q)
        dH[:, 0, 0, 0], dH[:, 0, 1, 1] = 0.01 * (1 - t * t), -0.01 * (1 - t * t)
        dH[:, 0, 0, 1] = dH[:, 0, 1, 0] = -2 * q * 0.005 * np.exp(-q * q)
        H[q > self.param_values["xmax"]] = np.nan
        if self.param_values["shape"]:
            return H[:, :1, :1], dH[:, :, :1, :1]
        return H, dH
'''


def tully(d, name, x0=-15.0, n=200, dt=0.5, t_end=2000.0, seed=1, model="", run="", out=""):
    (d / name).write_text(TULLY.format(x0=x0, n=n, dt=dt, t_end=t_end, seed=seed, model=model,
                                       run=run, out=out))


def user(d, name, params="", **kw):
    (d / "m.py").write_text(USER)
    tully(d, name, **kw)
    p = d / name
    p.write_text(p.read_text().replace('name = "tully1"', f'file = "m.py"\nclass = "M"\n{params}'))


def setup(d):
    """Every deck and file the cases use."""
    tully(d, "t.toml")
    tully(d, "seed2.toml", seed=2)
    tully(d, "ck.toml", out="checkpoint_every = 200")
    tully(d, "ck2.toml", seed=2, out="checkpoint_every = 200")
    for key, val in (("trajectories", "9223372036854775807"), ("trajectories", "1000000000000"),
                     ("dt", "inf"), ("t_end", "inf"), ("seed", str(2 ** 64)), ("t_end", "0.1")):
        p = d / f"bad_{key}_{val[:6]}.toml"
        tully(d, p.name)
        p.write_text("\n".join(f"{key} = {val}" if line.startswith(f"{key} =") else line
                               for line in p.read_text().splitlines()))
    ex = (HERE / "inputs" / "tully1_exact.toml").read_text()
    (d / "exact_points.toml").write_text(ex.replace("[exact]", "[exact]\npoints = [1000000000]"))
    (d / "exact_box.toml").write_text(ex.replace("[exact]", "[exact]\nbox = [nan, 10.0]"))
    user(d, "nonherm.toml", "asym = 3e-3")
    user(d, "shape.toml", "shape = 1.0")
    user(d, "good_user.toml", out="checkpoint_every = 200", n=20)
    (d / "edit.py").write_text(USER)
    (d / "edit.toml").write_text((d / "good_user.toml").read_text().replace('"m.py"', '"edit.py"'))
    user(d, "slow.toml", n=20, t_end=2000.0)
    user(d, "raises.toml", "raise_after = 30", n=20)
    user(d, "drops.toml", "xmax = -10.5", n=200, t_end=1000.0, run='on_nonfinite = "drop"')
    (d / "syntax.py").write_text(USER.replace("q = x[:, 0]\n", "q = x[:, 0\n", 1))
    (d / "syntax.toml").write_text((d / "nonherm.toml").read_text().replace('"m.py"', '"syntax.py"'))
    (d / "importerr.py").write_text("import no_such_module\n" + USER)
    (d / "importerr.toml").write_text((d / "nonherm.toml").read_text()
                                      .replace('"m.py"', '"importerr.py"'))
    tully(d, "mass.toml", model="mass = [1.0, 2.0, 3.0]")
    (d / "latin1.toml").write_bytes(b"# caf\xe9\n" + (d / "t.toml").read_bytes())
    tully(d, "short.toml", t_end=1000.0)
    tully(d, "tully1_c.toml", model="C = 0.01")
    sb = "\n".join(["[model]", 'name = "spin_boson"', "[initial]", f"position = {[0.0] * 100}",
                    f"momentum = {[0.0] * 100}", f"width = {[0.5] * 100}", "[method]",
                    'name = "ehrenfest"', "[run]", "trajectories = 20", "dt = 0.39",
                    "t_end = 40.0", ""])
    (d / "spin_boson_dt039.toml").write_text(sb)
    (d / "text.h5").write_text("not hdf5\n")
    (d / "empty.h5").write_bytes(b"")
    (d / "adir.h5").mkdir(exist_ok=True)
    (d / "outdir.h5").mkdir(exist_ok=True)


OLD = False
NEW_OPTIONS = (" --partial", " --progress none", " --log-interval 1")


def strip_new(cmd):
    for opt in NEW_OPTIONS if OLD else ():
        cmd = cmd.replace(opt, "")
    return cmd


def sh(cmd, d, root, env=None, timeout=600):
    """Run ``cmd`` (a shell command with `mqcd` meaning this checkout's python -m mqcd) in d."""
    cmd = strip_new(cmd)
    e = dict(os.environ, PYTHONPATH=str(root), OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    e.update(env or {})
    real = cmd.replace("mqcd ", f"{sys.executable} -m mqcd ")
    return subprocess.run(real, shell=True, cwd=d, env=e, capture_output=True, text=True,
                          timeout=timeout)


def background(cmd, d, root, env=None):
    e = dict(os.environ, PYTHONPATH=str(root), OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    e.update(env or {})
    argv = [sys.executable, "-m", "mqcd", *strip_new(cmd).split()[1:]]
    return subprocess.Popen(argv, cwd=d, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def last(stderr):
    lines = [line for line in stderr.strip().splitlines() if line.strip()
             and not line.startswith(("  ", "Traceback", "Exception ignored"))
             and "%|" not in line]
    msg = lines[-1] if lines else "(nothing)"
    msg = msg.replace("\\n", " ")
    return msg if len(msg) < 260 else msg[:257] + "..."


def seed_of(d, root, f):
    cp = sh(f"{sys.executable} -c \"import mqcd; print(mqcd.load('{f}').attrs['seed'])\"", d, root)
    return cp.stdout.strip() or "unreadable"


def rm(d, *names):
    for n in names:
        for p in d.glob(n):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def case_concurrent(d, root, deck_a, deck_b, out):
    rm(d, out + "*")
    a = background(f"mqcd run {deck_a} -o {out} --quiet", d, root)
    time.sleep(0.2)
    b = sh(f"mqcd run {deck_b} -o {out} --quiet", d, root)
    a.communicate()
    return (f"first rc {a.returncode}, second rc {b.returncode}: {last(b.stderr)}; "
            f"file holds seed {seed_of(d, root, out)}")


def case_signal(d, root, sig):
    rm(d, "sig.h5*")
    p = background("mqcd run slow.toml -o sig.h5 --partial --progress none", d, root,
                   {"SLEEP": "0.002"})
    time.sleep(3.0)
    p.send_signal(sig)
    _, err = p.communicate()
    files = sorted(x.name for x in d.glob("sig.h5*"))
    return f"rc {p.returncode}: {last(err)}; files: {', '.join(files) or 'none'}"


def cases(d, root):
    ro = "/sys/mqcd_out.h5" if os.geteuid() == 0 else "ro/out.h5"
    if os.geteuid() != 0:
        (d / "ro").mkdir(exist_ok=True)
        (d / "ro").chmod(0o555)
    return [
        ("1", "two runs of the same output at once",
         "mqcd run t.toml -o race.h5 & mqcd run seed2.toml -o race.h5",
         lambda: case_concurrent(d, root, "t.toml", "seed2.toml", "race.h5")),
        ("1", "the same with checkpoints on",
         "mqcd run ck.toml -o race2.h5 & mqcd run ck2.toml -o race2.h5",
         lambda: case_concurrent(d, root, "ck.toml", "ck2.toml", "race2.h5")),
        ("2", "non-Hermitian user model (H12 - H21 = 3e-3)", "mqcd run nonherm.toml", None),
        ("2", "user model returning H of shape (N, 1, 1)", "mqcd run shape.toml", None),
        ("3", "output in a folder that cannot be written", f"mqcd run t.toml -o {ro}", None),
        ("3", "full disk (file size limit 20 kB)",
         "bash -c \"trap '' XFSZ; ulimit -f 20; mqcd run t.toml -o full.h5 --force\"", None),
        ("3", "output path is a directory", "mqcd run t.toml -o outdir.h5 --force", None),
        ("4", "trajectories = 2**63 - 1", "mqcd run bad_trajectories_922337.toml", None),
        ("4", "trajectories = 1e12", "mqcd run bad_trajectories_100000.toml", None),
        ("4", "dt = inf", "mqcd run bad_dt_inf.toml", None),
        ("4", "t_end = inf", "mqcd run bad_t_end_inf.toml", None),
        ("4", "seed = 2**64", "mqcd run bad_seed_184467.toml", None),
        ("4", "[exact] points = [10**9]", "mqcd exact exact_points.toml -o e1.h5 --quiet", None),
        ("4", "[exact] box = [nan, 10]", "mqcd exact exact_box.toml -o e2.h5 --quiet", None),
        ("5", "--restart after the model file was edited",
         "mqcd run edit.toml -o edit.h5 --force && sed -i 's/0.005 \\* np.exp/0.006 * np.exp/' "
         "edit.py && mqcd run edit.toml -o edit.h5 --restart", None),
        ("6", "spin_boson, dt = 0.39 (Verlet unstable): E from 4.5 to 1e288 hartree",
         "mqcd run spin_boson_dt039.toml --force && mqcd summary spin_boson_dt039.h5", None),
        ("7", "one value of the checkpoint changed, then --restart",
         "mqcd run ck.toml -o cs.h5 --force && python -c \"import h5py; f = h5py.File('cs.h5.ckpt', "
         "'r+'); f['swarm/p'][3, 0] += 1e-9\" && mqcd run ck.toml -o cs.h5 --restart", None),
        ("8", "summary of a text file", "mqcd summary text.h5", None),
        ("8", "summary of an empty file", "mqcd summary empty.h5", None),
        ("8", "summary of a truncated HDF5",
         "mqcd run t.toml -o whole.h5 --force && head -c 20000 whole.h5 > trunc.h5 && "
         "mqcd summary trunc.h5", None),
        ("8", "summary of a directory", "mqcd summary adir.h5", None),
        ("8", "summary of a checkpoint", "mqcd run ck.toml -o c8.h5 --force && mqcd summary c8.h5.ckpt",
         None),
        ("8", "summary of an HDF5 not written by mqcd",
         "python -c \"import h5py; h5py.File('foreign.h5', 'w')['x'] = [1]\" && mqcd summary "
         "foreign.h5", None),
        ("8", "compare runs of different models",
         "mqcd run t.toml -o a.h5 --force && mqcd run tully1_c.toml -o b.h5 --force && "
         "mqcd compare a.h5 b.h5 | grep -c 'another model'", "stdout"),
        ("8", "summary into a closed pipe", "mqcd summary whole.h5 | true", None),
        ("9", "user model with a syntax error", "mqcd run syntax.toml", None),
        ("9", "user model failing at import", "mqcd run importerr.toml", None),
        ("9", "user model raising in evaluate (call 30)", "mqcd run raises.toml", None),
        ("10", "[model] mass with 3 entries for 1 dof", "mqcd run mass.toml", None),
        ("10", "deck with invalid UTF-8", "mqcd run latin1.toml", None),
        ("10", "t_end = 0.1 < dt = 0.5", "mqcd run bad_t_end_0.1.toml", None),
        ("10", "fresh run over an earlier run's checkpoint",
         "mqcd run ck.toml -o old.h5 --force && rm old.h5 && mqcd run ck.toml -o old.h5", None),
        ("11", "SIGTERM during a run", "mqcd run slow.toml -o sig.h5 --partial & kill -TERM $!",
         lambda: case_signal(d, root, signal.SIGTERM)),
        ("11", "SIGINT (Ctrl-C) during a run", "mqcd run slow.toml -o sig.h5 --partial & kill -INT $!",
         lambda: case_signal(d, root, signal.SIGINT)),
        ("12", "--quiet with many dropped trajectories",
         "mqcd run drops.toml -o drops.h5 --force --quiet 2>&1 | wc -l", "stdout"),
        ("12", "summary of a swarm still approaching the interaction region",
         "mqcd run short.toml --force --quiet && mqcd summary short.h5 | grep -E 'reflected|warning'",
         "stdout"),
        ("12", "permissions of the output (umask 022)",
         "umask 022 && mqcd run t.toml -o perm.h5 --force && stat -c %a perm.h5", "stdout"),
        ("13", "progress under mpiexec -n 2 (stderr not a terminal)",
         f"{Path(sys.executable).parent / 'mpiexec'} -n 2 mqcd run slow.toml -o mpi.h5 --force "
         "--log-interval 1 2>&1 | grep -c traj-steps", "stdout"),
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(HERE), help="checkout whose mqcd is run")
    ap.add_argument("--dir", help="working folder (default: a new temporary one)")
    ap.add_argument("--only", help="comma-separated case numbers")
    ap.add_argument("--old", action="store_true", help="leave out the options older versions do "
                    "not have (--partial, --progress, --log-interval)")
    a = ap.parse_args(argv)
    d = Path(a.dir or tempfile.mkdtemp(prefix="mqcd_cases_"))
    d.mkdir(parents=True, exist_ok=True)
    setup(d)
    only = set(a.only.split(",")) if a.only else None
    global OLD
    OLD = a.old
    print(f"cases run in {d} with the mqcd of {a.root}\n")
    print("| # | case | command | exit code: message |\n|---|---|---|---|")
    for num, what, cmd, how in cases(d, Path(a.root)):
        if only and num not in only:
            continue
        if callable(how):
            got = how()
        else:
            env = {"SLEEP": "0.002"} if "slow.toml" in cmd else None
            cp = sh(cmd, d, a.root, env)
            text = cp.stdout.strip().splitlines()[-1] if how == "stdout" and cp.stdout.strip() \
                else last(cp.stderr)
            got = f"{cp.returncode}: {text}"
        got = re.sub(r"/tmp/mqcd_cases_\w+/", "", got).replace("|", "\\|")
        print(f"| {num} | {what} | `{cmd}` | {got} |", flush=True)


if __name__ == "__main__":
    main()
