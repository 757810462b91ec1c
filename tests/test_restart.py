"""Checkpoints and restarts (bit-for-bit), refused restarts, atomic writes, non-finite numbers."""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import mqcd
from mqcd.io import checkpoint as ckmod
from mqcd.io.checkpoint import Checkpoint, read_checkpoint, write_checkpoint

from test_mpi import assert_same_results, requires_mpi, run_cli, subprocess_env

# A user model: tanh avoided crossing (numpy), optionally slowed down by MQCD_TEST_SLEEP seconds
# per evaluation (so a subprocess can be killed mid-run on any machine), and returning NaN for
# x > xmax (non-finite tests; xmax = 1e9 by default).
MODEL = '''
import os, time
import numpy as np
from mqcd.models import Model

class Crossing(Model):
    name = "test_crossing"
    nstates = 2
    ndof = 1
    mass = 2000.0
    scattering = True
    interaction_radius = 10.0
    parameters = {"xmax": (1e9, "bohr", "H is NaN beyond this position")}

    def evaluate(self, x):
        delay = float(os.environ.get("MQCD_TEST_SLEEP", "0"))
        if delay:
            time.sleep(delay)
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        q = x[:, 0]
        t = np.tanh(q)
        v12 = 0.005 * np.exp(-0.5 * q * q)
        H = np.zeros((x.shape[0], 2, 2))
        dH = np.zeros((x.shape[0], 1, 2, 2))
        H[:, 0, 0], H[:, 1, 1] = 0.01 * t, -0.01 * t
        H[:, 0, 1] = H[:, 1, 0] = v12
        dH[:, 0, 0, 0], dH[:, 0, 1, 1] = 0.01 * (1 - t * t), -0.01 * (1 - t * t)
        dH[:, 0, 0, 1] = dH[:, 0, 1, 0] = -q * v12
        H[q > self.param_values["xmax"]] = np.nan
        return H, dH
'''

DECK = """
[model]
file = "crossing.py"
class = "Crossing"
{model_extra}
[initial]
position = [-3.0]
momentum = [20.0]
width = [0.5]
[method]
name = "{method}"
{method_extra}
[run]
trajectories = {ntraj}
dt = {dt}
t_end = {t_end}
seed = 7
{run_extra}
[output]
stride = 10
checkpoint_every = {every}
"""


def write_deck(tmp_path, name="run.toml", method="fssh", method_extra='decoherence = "edc"',
               ntraj=40, dt=0.5, t_end=500.0, every=50, run_extra="", model_extra=""):
    (tmp_path / "crossing.py").write_text(MODEL)
    p = tmp_path / name
    p.write_text(DECK.format(method=method, method_extra=method_extra, ntraj=ntraj, dt=dt,
                             t_end=t_end, every=every, run_extra=run_extra,
                             model_extra=model_extra))
    return p


def test_sigkill_then_restart_is_bit_for_bit(tmp_path):
    deck = write_deck(tmp_path, t_end=500.0, every=50)              # 1000 steps
    ref = mqcd.run(deck, output=tmp_path / "ref.h5")
    assert ref["final/hops"].sum() > 3
    out = tmp_path / "killed.h5"
    ckpt = ckmod.checkpoint_path(out)
    env = subprocess_env()
    env["MQCD_TEST_SLEEP"] = "0.003"                                 # >= 3 s for 1000 steps
    proc = subprocess.Popen([sys.executable, "-m", "mqcd", "run", str(deck), "-o", str(out),
                             "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while not ckpt.exists() and proc.poll() is None and time.time() - t0 < 60:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not out.exists()
    step = read_checkpoint(ckpt).step
    assert 0 < step < 1000 and step % 50 == 0
    res = run_cli(["run", deck, "-o", out, "--quiet", "--restart"])
    assert res.returncode == 0
    got = mqcd.load(out)
    assert got.attrs["restarted_from_step"] == step
    assert_same_results(got, ref)


def test_restart_with_changed_physics_is_refused(tmp_path):
    deck = write_deck(tmp_path, ntraj=10, t_end=50.0, every=40)
    out = tmp_path / "a.h5"
    mqcd.run(deck, output=out)
    changed = write_deck(tmp_path, ntraj=10, t_end=50.0, every=40, dt=0.25,
                         method_extra='decoherence = "idc"')
    cp = run_cli(["run", changed, "-o", out, "--quiet", "--restart"], check=False)
    assert cp.returncode == 2
    assert "[run] dt: 0.5 -> 0.25" in cp.stderr and "[method] decoherence" in cp.stderr
    assert "t_end" in cp.stderr                                         # says what may change
    cp = run_cli(["run", deck, "-o", tmp_path / "none.h5", "--quiet", "--restart"], check=False)
    assert cp.returncode == 2 and "no checkpoint" in cp.stderr


def test_extending_t_end_equals_the_long_run(tmp_path):
    long = write_deck(tmp_path, name="long.toml", method="ehrenfest", method_extra="",
                      t_end=300.0, every=0)
    ref = mqcd.run(long)
    short = write_deck(tmp_path, name="short.toml", method="ehrenfest", method_extra="",
                       t_end=123.0, every=100)          # ends between two stride points
    out = tmp_path / "ext.h5"
    first = mqcd.run(short, output=out)
    assert first["time"][-1] == 123.0                    # end-of-run row...
    res = mqcd.run(long, output=out, restart=True)       # ...is not kept when extending
    assert res.attrs["restarted_from_step"] == 246
    assert_same_results(res, ref)
    with pytest.raises(mqcd.DeckError, match="beyond the deck's t_end"):
        mqcd.run(write_deck(tmp_path, name="shorter.toml", method="ehrenfest", method_extra="",
                            t_end=100.0, every=100), output=out, restart=True)


def _ck(step, n=3):
    return Checkpoint(step=step, deck_text="", deck_dict={"run": {"t_end": 1.0}},
                      arrays={"swarm/x": np.full((n, 1), float(step))},
                      records={"time": np.arange(3.0)}, units={"time": "a.u."},
                      attrs={"adiabatic_step": step})


def test_checkpoint_is_written_to_a_temporary_file_then_replaced(tmp_path, monkeypatch):
    path = tmp_path / "o.h5.ckpt"
    opened, replaced = [], []
    real_file, real_replace = h5py.File, os.replace

    def spy_file(name, mode="r", *a, **k):
        opened.append((str(name), mode))
        return real_file(name, mode, *a, **k)

    def spy_replace(src, dst):
        replaced.append((str(src), str(dst)))
        return real_replace(src, dst)
    monkeypatch.setattr(ckmod.h5py, "File", spy_file)
    monkeypatch.setattr(ckmod.os, "replace", spy_replace)
    write_checkpoint(path, _ck(10))
    assert [m for _, m in opened] == ["w"] and opened[0][0] == str(path) + ".tmp"
    assert replaced == [(str(path) + ".tmp", str(path))]
    assert read_checkpoint(path).step == 10

    # a crash in the middle of the next write leaves the previous checkpoint intact
    def crash(*a, **k):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(h5py.Group, "create_dataset", crash)
    with pytest.raises(OSError, match="simulated"):
        write_checkpoint(path, _ck(20))
    monkeypatch.undo()
    assert read_checkpoint(path).step == 10
    assert not os.path.exists(str(path) + ".tmp")
    # a partial temporary file left by kill -9 is ignored, then overwritten
    (tmp_path / "o.h5.ckpt.tmp").write_bytes(b"\x89HDF partial")
    assert read_checkpoint(path).step == 10
    write_checkpoint(path, _ck(30))
    assert read_checkpoint(path).step == 30


def test_nonfinite_stop_names_trajectory_and_time_and_leaves_checkpoint(tmp_path):
    drop = write_deck(tmp_path, name="drop.toml", method="ehrenfest", method_extra="", dt=1.0,
                      t_end=500.0, every=0, model_extra="xmax = 2.0",
                      run_extra='on_nonfinite = "drop"')
    with pytest.warns(RuntimeWarning, match="dropped"):
        ref = mqcd.run(drop, output=tmp_path / "direct.h5")
    t1 = ref["diagnostics/dropped_time"][0]
    first = ref["diagnostics/dropped_index"][ref["diagnostics/dropped_time"] == t1]
    deck = write_deck(tmp_path, method="ehrenfest", method_extra="", dt=1.0, t_end=500.0,
                      every=0, model_extra="xmax = 2.0")
    out = tmp_path / "nan.h5"
    cp = run_cli(["run", deck, "-o", out, "--quiet"], check=False)
    assert cp.returncode == 2
    msg = cp.stderr
    assert "non-finite" in msg and f"t = {t1:g} a.u." in msg, msg
    assert all(f"#{i} (x, p, rho)" in msg for i in first), msg
    assert not out.exists()
    ck = read_checkpoint(ckmod.checkpoint_path(out))
    assert ck.step == int(t1) and not ck.attrs["post_step_done"]
    # switching to "drop" and restarting equals the run that dropped from the start
    with pytest.warns(RuntimeWarning, match="dropped"):
        res = mqcd.run(drop, output=out, restart=True)
    assert_same_results(res, ref)


@pytest.mark.parametrize("method", ["ehrenfest", "fssh"])
def test_nonfinite_drop_counts_and_means_over_survivors(tmp_path, method):
    deck = write_deck(tmp_path, method=method, method_extra="", dt=1.0, t_end=500.0, every=0,
                      model_extra="xmax = 2.0", run_extra='on_nonfinite = "drop"')
    with pytest.warns(RuntimeWarning, match="dropped"):
        res = mqcd.run(deck)
    n = res.attrs["dropped"]
    assert 0 < n < 40
    assert res["diagnostics/dropped"][-1] == n and res["diagnostics/dropped"][0] == 0
    assert np.all(np.diff(res["diagnostics/dropped"]) >= 0)
    assert res["diagnostics/dropped_index"].size == n and res["final/position"].shape == (40 - n, 1)
    assert np.all(np.isfinite(res["final/position"]))
    assert set(res["diagnostics/dropped_quantity"]) <= set(range(1, 8))
    # ensemble means are over the survivors: populations still sum to one
    assert np.allclose(res["populations/adiabatic"].sum(axis=1), 1.0, atol=1e-12)
    if method == "fssh":
        assert np.allclose(res["populations/active"].sum(axis=1), 1.0, atol=1e-14)
    assert np.all(np.isfinite(res["energy/total"]))
    assert np.isclose(res["branching/transmission"].sum() + res["branching/reflection"].sum(), 1)


@requires_mpi
@pytest.mark.mpi
def test_nonfinite_under_mpi_stop_then_drop_restart_on_other_rank_count(tmp_path):
    """3 ranks stop together (one checkpoint, exit code 2, no hang); 2 ranks restart with
    'drop'; the result equals the serial run that dropped from the start."""
    kw = dict(method="fssh", method_extra='decoherence = "edc"', dt=1.0, t_end=500.0, every=0,
              model_extra="xmax = 2.0")
    deck = write_deck(tmp_path, **kw)
    drop = write_deck(tmp_path, name="drop.toml", run_extra='on_nonfinite = "drop"', **kw)
    with pytest.warns(RuntimeWarning, match="dropped"):
        ref = mqcd.run(drop)
    out = tmp_path / "nan.h5"
    cp = run_cli(["run", deck, "-o", out, "--quiet"], nranks=3, check=False)
    assert cp.returncode != 0 and "non-finite" in cp.stderr
    assert read_checkpoint(ckmod.checkpoint_path(out)).attrs["ranks"] == 3
    run_cli(["run", drop, "-o", out, "--quiet", "--restart"], nranks=2)
    got = mqcd.load(out)
    assert got.attrs["dropped"] == ref.attrs["dropped"] > 0
    assert_same_results(got, ref)
