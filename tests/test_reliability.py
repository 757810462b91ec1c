"""Issue 12: a run never loses or silently corrupts a result, and says clearly what went wrong.

One test (or a few) per item of the issue, numbered as there; docs/reliability.md has the table of
cases, commands, and the behaviour before and after. Runs are small (tens of trajectories, a few
hundred steps); the subprocess tests use the slowed-down user model of test_restart.py so that a
signal or a second run reliably meets the first one in the middle of its loop.
"""
import json
import os
import resource
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

import mqcd
from mqcd.cli import main as cli

from test_mpi import MPIEXEC, assert_same_results, requires_mpi, run_cli, subprocess_env
from test_restart import write_deck

TULLY = """
[model]
name = "tully1"
{model_extra}
[initial]
position = [{x0}]
momentum = [10.0]
width = [1.0]
[method]
name = "ehrenfest"
[run]
trajectories = {ntraj}
dt = {dt}
t_end = {t_end}
seed = {seed}
{run_extra}
[output]
stride = 10
{output_extra}
"""


def tully(tmp_path, name="t.toml", x0=-15.0, ntraj=20, dt=0.5, t_end=200.0, seed=1,
          run_extra="", output_extra="", model_extra=""):
    p = tmp_path / name
    p.write_text(TULLY.format(x0=x0, ntraj=ntraj, dt=dt, t_end=t_end, seed=seed,
                              run_extra=run_extra, output_extra=output_extra,
                              model_extra=model_extra))
    return p


def quiet_run(*a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mqcd.run(*a, **k)


def start_cli(args, sleep="0.003"):
    """``python -m mqcd ARGS`` in the background, with the slowed model (seconds per step)."""
    env = subprocess_env()
    env["MQCD_TEST_SLEEP"] = sleep
    return subprocess.Popen([sys.executable, "-m", "mqcd", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, proc, timeout=60):
    t0 = time.time()
    while not Path(path).exists() and proc.poll() is None and time.time() - t0 < timeout:
        time.sleep(0.01)
    assert Path(path).exists(), f"{path} never appeared ({proc.poll()})"


# ----------------------------------------------------------------------------- 1. concurrent runs
def test_1_second_run_of_the_same_output_refuses_before_computing(tmp_path):
    deck = write_deck(tmp_path, ntraj=10, t_end=500.0, every=50)
    other = write_deck(tmp_path, name="other.toml", ntraj=10, t_end=500.0, every=50)
    other.write_text(other.read_text().replace("seed = 7", "seed = 8"))
    out = tmp_path / "out.h5"
    first = start_cli(["run", deck, "-o", out, "--quiet"])
    wait_for(str(out) + ".lock", first)
    second = run_cli(["run", other, "-o", out, "--quiet"], check=False)
    still_running = first.poll() is None                   # refused while the first computes
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert second.returncode == 2 and still_running
    assert f"pid {first.pid}" in second.stderr and "in use" in second.stderr, second.stderr
    assert mqcd.load(out).attrs["seed"] == 7                # the first run's result, intact
    assert not Path(str(out) + ".lock").exists()           # released on exit


def test_1_lock_is_held_for_the_run_and_a_stale_lock_file_does_not_block(tmp_path):
    from mqcd.runtime import LockedError, RunLock
    deck = tully(tmp_path)
    out = tmp_path / "o.h5"
    with RunLock([out]):
        with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
            quiet_run(deck, output=out)
    assert not out.exists()
    Path(str(out) + ".lock").write_text("12345 elsewhere 2020-01-01T00:00:00\n")   # kill -9 leftover
    quiet_run(deck, output=out)
    assert out.exists()


# ----------------------------------------------------------------------------- 2. model check
NONHERM = '''
import numpy as np
from mqcd.models import Model

class M(Model):
    name = "bad"
    nstates = 2
    ndof = 1
    scattering = True
    parameters = {"asym": (0.0, "hartree", "H12 - H21"), "shape": (0.0, "1", "1: H of shape (N,1,1)"),
                  "raise_after": (1e9, "1", "raise from this call of evaluate on")}
    calls = 0

    def evaluate(self, x):
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        self.calls += 1
        if self.calls >= self.param_values["raise_after"]:
            raise ZeroDivisionError("the user's own bug")
        q = x[:, 0]
        t = np.tanh(q)
        H = np.zeros((x.shape[0], 2, 2)); dH = np.zeros((x.shape[0], 1, 2, 2))
        H[:, 0, 0], H[:, 1, 1] = 0.01 * t, -0.01 * t
        H[:, 0, 1] = 0.005 * np.exp(-q * q) + self.param_values["asym"]
        H[:, 1, 0] = 0.005 * np.exp(-q * q)
        dH[:, 0, 0, 0], dH[:, 0, 1, 1] = 0.01 * (1 - t * t), -0.01 * (1 - t * t)
        dH[:, 0, 0, 1] = dH[:, 0, 1, 0] = -2 * q * 0.005 * np.exp(-q * q)
        if self.param_values["shape"]:
            return H[:, :1, :1], dH[:, :, :1, :1]
        return H, dH
'''


def user_deck(tmp_path, params="", source=NONHERM, t_end=200.0, x0=-5.0, every=0):
    """Deck of the user model NONHERM (m.py) with extra [model] lines ``params``."""
    (tmp_path / "m.py").write_text(source)
    p = tully(tmp_path, name="u.toml", x0=x0, t_end=t_end,
              output_extra=f"checkpoint_every = {every}")
    p.write_text(p.read_text().replace('name = "tully1"', f'file = "m.py"\nclass = "M"\n{params}'))
    return p


@pytest.mark.parametrize("params,message", [("asym = 3e-3", "not Hermitian"),
                                            ("shape = 1.0", r"shape \(20, 1, 1\)")])
def test_2_run_refuses_a_model_that_fails_check_model(tmp_path, params, message):
    deck = user_deck(tmp_path, params)
    out = tmp_path / "u.h5"
    with pytest.raises(ValueError, match=message) as err:
        quiet_run(deck, output=out)
    assert "initial positions" in str(err.value) and "m.py" in str(err.value)
    assert not out.exists()
    assert quiet_run(user_deck(tmp_path, "asym = 0.0"))["time"][-1] == 200.0   # a good model runs


def test_2_nonfinite_initial_values_refused_unless_dropping_was_asked_for(tmp_path):
    src = NONHERM.replace("        if self.param_values[\"shape\"]:",
                          "        H[q > -5.0] = np.nan\n        if self.param_values[\"shape\"]:")
    deck = user_deck(tmp_path, source=src)                 # x0 = -5: half the packet gives NaN
    with pytest.raises(ValueError, match="non-finite H or dH"):
        quiet_run(deck)
    deck.write_text(deck.read_text().replace("[run]", '[run]\non_nonfinite = "drop"'))
    res = quiet_run(deck)
    assert 0 < res.attrs["dropped"] < 20 and res["diagnostics/dropped_time"][0] == 0.0


# ----------------------------------------------------------------------------- 3. output location
def test_3_output_that_is_a_directory_is_refused_before_computing(tmp_path, monkeypatch):
    from mqcd import api
    deck = tully(tmp_path)
    (tmp_path / "dir.h5").mkdir()

    def no_compute(self):
        raise AssertionError("computed before checking the output")
    monkeypatch.setattr(api._Runner, "start", no_compute)
    for force in (False, True):
        with pytest.raises(IsADirectoryError, match="is a directory"):
            mqcd.run(deck, output=tmp_path / "dir.h5", force=force)


def test_3_read_only_folder_is_found_before_computing(tmp_path, monkeypatch):
    from mqcd import api
    from mqcd.io import atomic
    deck = tully(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
    else:                        # root ignores permissions: make creating files there fail
        real = os.open

        class OS:
            def __getattr__(self, k):
                return getattr(os, k)

            @staticmethod
            def open(path, flags, mode=0o777):
                if Path(path).parent == ro and flags & os.O_CREAT:
                    raise PermissionError(13, "Permission denied", str(path))
                return real(path, flags, mode)
        monkeypatch.setattr(atomic, "os", OS())
        monkeypatch.setattr("mqcd.runtime.lock.os", OS())
    monkeypatch.setattr(api._Runner, "start", lambda self: pytest.fail("computed"))
    with pytest.raises(PermissionError, match="ro"):
        mqcd.run(deck, output=ro / "x.h5")
    ro.chmod(0o755)


def test_3_full_disk_is_an_error_message_not_a_crash(tmp_path):
    deck = tully(tmp_path, ntraj=2000, t_end=50.0)
    out = tmp_path / "full.h5"
    # the same run in this process first: numba's cache files (tens of kB) must exist before
    # the subprocess below, whose file-size limit would also refuse writing them
    quiet_run(deck, output=tmp_path / "warm.h5")

    def limit():                 # files may not grow beyond 20 kB: writes fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
    cp = subprocess.run([sys.executable, "-m", "mqcd", "run", str(deck), "-o", str(out), "--quiet"],
                        env=subprocess_env(), capture_output=True, text=True, preexec_fn=limit,
                        timeout=120)
    assert cp.returncode == 2, (cp.returncode, cp.stderr[-2000:])      # was -11 (SIGSEGV)
    assert "could not write the output" in cp.stderr and "Traceback" not in cp.stderr
    assert not out.exists()


def test_3_failed_final_write_keeps_the_results_and_restart_finishes(tmp_path, monkeypatch):
    from mqcd import api
    deck = tully(tmp_path, t_end=123.0)
    ref = quiet_run(deck, output=tmp_path / "ref.h5")
    out = tmp_path / "o.h5"
    real = api.write_result

    def enospc(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(api, "write_result", enospc)
    with pytest.raises(RuntimeError, match="No space left.*final state is kept in the checkpoint"):
        quiet_run(deck, output=out)
    monkeypatch.setattr(api, "write_result", real)
    assert not out.exists() and Path(str(out) + ".ckpt").exists()
    res = quiet_run(deck, output=out, restart=True)          # writes it, computes nothing
    assert res.attrs["restarted_from_step"] == 246
    assert_same_results(mqcd.load(out), ref)
    # when the checkpoint cannot be written either, the results go to a fallback file
    monkeypatch.setattr(api, "write_result", lambda p, r, force=False: enospc() if Path(p) == out
                        else real(p, r, force))
    monkeypatch.setattr(api, "write_checkpoint", enospc)
    monkeypatch.setattr(api.tempfile, "gettempdir", lambda: str(tmp_path))
    with pytest.raises(RuntimeError, match="checkpoint .* either .* written to .*rescued"):
        quiet_run(deck, output=out, force=True)
    rescued = list(tmp_path.glob("o.h5.rescued-*.h5"))
    assert len(rescued) == 1
    assert np.array_equal(mqcd.load(rescued[0])["final/position"], ref["final/position"])


# ----------------------------------------------------------------------------- 4. deck numbers
@pytest.mark.parametrize("key,value,message", [
    ("trajectories", "9223372036854775807", r"needs at least .* of memory .* available"),
    ("trajectories", "1000000000000", r"\[run\] trajectories = 1000000000000 needs at least"),
    ("dt", "inf", r"\[run\] dt = inf: must be a finite number"),
    ("dt", "nan", r"\[run\] dt = nan: must be a finite number"),
    ("t_end", "inf", r"\[run\] t_end = inf: must be a finite number"),
    ("seed", str(2 ** 64), r"\[run\] seed = 18446744073709551616: out of range"),
])
def test_4_nonsense_numbers_are_refused_with_the_key(tmp_path, key, value, message):
    deck = tully(tmp_path)
    deck.write_text("\n".join(f"{key} = {value}" if line.startswith(f"{key} =") else line
                              for line in deck.read_text().splitlines()))
    t0 = time.time()
    with pytest.raises(mqcd.DeckError, match=message):
        mqcd.run(deck, output=tmp_path / "o.h5")
    assert time.time() - t0 < 5                          # refused up front
    assert not (tmp_path / "o.h5").exists()


def test_4_memory_estimate_counts_the_swarm():
    from mqcd.models import build_model
    from mqcd.runtime.resources import swarm_memory
    m = build_model({"name": "tully1"})
    a = swarm_memory(m, 1000, 1000)["swarm"]
    b = swarm_memory(m, 2000, 2000)["swarm"]
    assert b == 2 * a
    # at least the arrays the swarm certainly holds: x, p, F, rho, H, H_prev, dH per trajectory
    assert a >= 1000 * (3 * 8 + 16 * 4 + 3 * 8 * 4)


@pytest.mark.parametrize("line,message", [("points = [1000000000]", r"1000000000 points .* needs"),
                                          ("box = [nan, 10.0]", r"\[exact\] box entry = nan")])
def test_4_exact_grid_numbers(tmp_path, capsys, line, message):
    deck = tmp_path / "e.toml"
    text = (Path(__file__).parents[1] / "inputs" / "tully1_exact.toml").read_text()
    deck.write_text(text.replace("[exact]", f"[exact]\n{line}"))
    assert cli(["exact", str(deck), "-o", str(tmp_path / "e.h5"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert __import__("re").search(message, err), err


def test_4_model_parameters_must_be_finite(tmp_path):
    with pytest.raises(mqcd.DeckError, match=r"\[model\] C = nan"):
        mqcd.read_deck(tully(tmp_path, model_extra="C = nan"))


# ----------------------------------------------------------------------------- 5. model file edited
def test_5_restart_after_the_model_file_changed_is_refused(tmp_path):
    deck = write_deck(tmp_path, ntraj=10, t_end=50.0, every=40)
    out = tmp_path / "a.h5"
    quiet_run(deck, output=out)
    src = tmp_path / "crossing.py"
    src.write_text(src.read_text().replace("0.005 * np.exp", "0.006 * np.exp"))
    with pytest.raises(mqcd.DeckError, match="crossing.py changed"):
        quiet_run(deck, output=out, restart=True)
    src.write_text(src.read_text().replace("0.006 * np.exp", "0.005 * np.exp"))   # undone: fine
    assert quiet_run(deck, output=out, restart=True).attrs["restarted_from_step"] == 100


# ----------------------------------------------------------------------------- 6. energy drift
def spin_boson(tmp_path, dt, extra=""):
    n = 10
    p = tmp_path / f"sb_{dt}.toml"
    p.write_text(f"""
[model]
name = "spin_boson"
modes = {n}
[initial]
position = {[0.0] * n}
momentum = {[0.0] * n}
width = {[0.5] * n}
[method]
name = "ehrenfest"
[run]
trajectories = 8
dt = {dt}
t_end = 40.0
{extra}
""")
    return p


def test_6_exploding_run_is_reported_at_the_end_and_by_summary(tmp_path, capsys):
    from mqcd.runtime import RunProblemWarning
    # w_max dt = 2.9 > 2: velocity Verlet unstable; the up-front check is told to only warn
    deck = spin_boson(tmp_path, 0.39, 'on_unstable_step = "warn"')
    out = tmp_path / "x.h5"
    with pytest.warns(RunProblemWarning) as caught:
        res = mqcd.run(deck, output=out)
    text = " ".join(str(w.message) for w in caught)
    assert "beyond the stability limit" in text and "running anyway" in text
    assert __import__("re").search("energy drift .* exceeds", text)
    assert res["energy/drift_mean"][-1] > 1e3
    assert 0 <= res.attrs["energy_drift_exceeded_at"] < 40
    assert cli(["summary", str(out)]) == 0
    text = capsys.readouterr().out
    assert "EXCEEDED" in text and "warning: energy drift" in text
    assert cli(["summary", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["energy_drift_exceeded_at"] is not None and any("energy drift" in w for w in
                                                             s["warnings"])
    # the same model with a stable step is not flagged (the check can fail both ways)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunProblemWarning)
        ok = mqcd.run(spin_boson(tmp_path, 0.005, "energy_tolerance = 0.05"))
    assert ok.attrs["energy_drift_exceeded_at"] == -1.0


def test_6_unstable_time_step_is_refused_before_computing(tmp_path, capsys):
    from mqcd.models.multidim import ohmic_bath
    w_max = ohmic_bath(0.1, 2.5, 10)[0].max()                  # the deck's stiffest mode
    deck = spin_boson(tmp_path, 2.05 / w_max)                  # just beyond omega dt = 2
    out = tmp_path / "u.h5"
    assert cli(["run", str(deck), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "[run] dt" in err and f"omega = {w_max:.4g} hartree" in err and "Traceback" not in err
    assert f"dt >= 2/omega = {2 / w_max:.4g} a.u." in err and "on_unstable_step" in err
    assert not out.exists()
    assert cli(["check-model", str(deck)]) == 0                # the model itself is fine ...
    said = capsys.readouterr().out
    assert f"omega = {w_max:.4g} hartree" in said and "UNSTABLE" in said    # ... the step is not
    # just inside the limit the run starts (and is not refused), and 'off' skips the check
    assert cli(["run", str(spin_boson(tmp_path, 1.95 / w_max, "")), "-o",
                str(tmp_path / "s.h5"), "--quiet", "--force"]) == 0
    assert cli(["run", str(spin_boson(tmp_path, 2.05 / w_max, 'on_unstable_step = "off"\n'
                                      'energy_tolerance = 0')),
                "-o", str(tmp_path / "o.h5"), "--quiet", "--force"]) == 0


def test_6_stiffest_frequency_is_the_harmonic_bath_frequency():
    from mqcd.models import build_model
    from mqcd.models.stiffness import DENSE_MAX_DOF, sample_rows, stiffest_frequency
    rng = np.random.default_rng(3)
    for modes in (3, DENSE_MAX_DOF + 36):                       # full matrix; Lanczos
        m = build_model({"name": "spin_boson", "modes": modes})
        w = stiffest_frequency(m, 0.3 * rng.standard_normal((5, modes)))
        assert abs(w - m.omega.max()) < 1e-6 * m.omega.max(), (modes, w, m.omega.max())
    # a mass scales the frequency by 1/sqrt(M); an anharmonic scattering model is soft
    heavy = build_model({"name": "spin_boson", "modes": 3, "mass": 4.0})
    assert np.isclose(stiffest_frequency(heavy, np.zeros((1, 3))), heavy.omega.max() / 2, rtol=1e-6)
    assert stiffest_frequency(build_model({"name": "tully1"}), np.linspace(-5, 5, 9)[:, None]) < 1e-2
    # the sampled trajectories are fixed by global index: any split into rank blocks picks them
    whole = sample_rows(np.arange(1000), 1000, 3)
    blocks = np.concatenate([b[sample_rows(b, 1000, 3)] for b in np.array_split(np.arange(1000), 7)])
    assert np.array_equal(whole, blocks) and 0 < whole.size <= 256


def squeezed_qhd(tmp_path, dt, extra=""):
    """qhd on one harmonic mode (omega = 1.733 hartree, M = 1), packet squeezed to half the
    ground-state width: the density bandwidth is 0.132 bohr at N = 500, so the quantum force's
    fastest fluid-element mode has omega_Q = (2/e)/(M h^2) = 42 hartree (limit dt < 0.047 a.u.)
    while the model's own limit is dt < 1.15 a.u."""
    p = tmp_path / f"q_{dt}.toml"
    p.write_text(f"""
[model]
name = "spin_boson"
modes = 1
[initial]
position = [0.0]
momentum = [0.0]
width = [0.25]
[method]
name = "qhd"
[run]
trajectories = 500
dt = {dt}
t_end = 3.0
energy_tolerance = 0
{extra}
""")
    return p


def test_6_qhd_bohm_stiffness_is_refused_and_predicts_the_breakdown(tmp_path, capsys):
    from mqcd.runtime import RunProblemWarning
    with pytest.raises(mqcd.DeckError, match=r"qhd quantum force .* omega_Q = \(2/e\)/\(M h\^2\)"):
        mqcd.run(squeezed_qhd(tmp_path, 0.1))
    out = tmp_path / "bad.h5"
    with pytest.warns(RunProblemWarning) as caught:
        bad = mqcd.run(squeezed_qhd(tmp_path, 0.1, 'on_unstable_step = "warn"'), output=out)
    said = " ".join(str(m.message) for m in caught)
    assert "initial density bandwidths" in said and "running anyway" in said   # at the start
    assert "too stiff for the time step from t = 0 a.u." in said                # and at the end
    assert bad.attrs["bohm_unstable_at"] == 0.0 and bad.attrs["bohm_stiffness_max"] > 3
    assert cli(["summary", str(out)]) == 0
    assert "quantum force was too stiff" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunProblemWarning)
        good = mqcd.run(squeezed_qhd(tmp_path, 0.02))
    assert good.attrs["bohm_unstable_at"] == -1.0 and good.attrs["bohm_stiffness_max"] < 1
    # the flag is physics, not bookkeeping: the width of the flagged run is far off the exact
    # breathing of the squeezed packet, the unflagged one close (measured 0.47 vs 0.12 bohr)
    w, s0, t = 1.7328679513998633, 0.25, 3.0
    exact = np.hypot(s0 * np.cos(w * t), np.sin(w * t) / (2 * w * s0))
    err = [abs(np.std(r["final/position"][:, 0]) - exact) for r in (bad, good)]
    assert err[0] > 3 * err[1], err


def test_6_drift_datasets_are_the_means_of_the_per_trajectory_drift(tmp_path):
    res = quiet_run(spin_boson(tmp_path, 0.05))
    d = res["final/energy_drift"]
    assert np.isclose(res["energy/drift_mean"][-1], np.mean(np.abs(d)), rtol=1e-12)
    assert np.isclose(res["energy/ensemble_drift"][-1], np.mean(d), rtol=1e-12)
    assert np.isclose(res["energy/ensemble_drift"][-1],
                      res["energy/total"][-1] - res["energy/total"][0], rtol=1e-9)


def test_6_stop_on_drift_writes_a_checkpoint_and_exits_nonzero(tmp_path, capsys):
    deck = spin_boson(tmp_path, 0.39, 'on_energy_drift = "stop"\non_unstable_step = "warn"')
    out = tmp_path / "s.h5"
    assert cli(["run", str(deck), "-o", str(out), "--quiet", "--partial"]) == 2
    err = capsys.readouterr().err
    assert "exceeds [run] energy_tolerance" in err and "saved in" in err
    ck = mqcd.io.checkpoint.read_checkpoint(str(out) + ".ckpt")
    assert ck.attrs["reason"] == "energy_drift" and ck.step < 40 / 0.39
    part = mqcd.load(out)
    assert part.attrs["partial"] and part.attrs["stop_reason"] == "energy_drift"


def test_6_ensemble_methods_are_judged_on_the_swarm_total(tmp_path, monkeypatch):
    from mqcd.methods.ehrenfest import Ehrenfest
    monkeypatch.setattr(Ehrenfest, "energy_conservation", "ensemble")
    deck = spin_boson(tmp_path, 0.05, "energy_tolerance = 0.02")
    res = quiet_run(deck)
    assert res.attrs["energy_conservation"] == "ensemble"
    worst = np.max(np.abs(res["energy/ensemble_drift"]))
    assert res.attrs["energy_drift"] == worst
    assert (res.attrs["energy_drift_exceeded_at"] >= 0) == (worst > 0.02)


# ----------------------------------------------------------------------------- 7. checkpoint checksum
@pytest.mark.parametrize("edit", ["value", "attribute"])
def test_7_changed_checkpoint_is_refused(tmp_path, edit):
    deck = write_deck(tmp_path, ntraj=10, t_end=50.0, every=40)
    out = tmp_path / "a.h5"
    quiet_run(deck, output=out)
    with h5py.File(str(out) + ".ckpt", "r+") as f:
        if edit == "value":
            f["swarm/p"][3, 0] += 1e-9
        else:
            f.attrs["adiabatic_step"] = 3
    with pytest.raises(mqcd.DeckError, match="corrupt: " + ("dataset swarm/p" if edit == "value"
                                                             else "the attributes")):
        quiet_run(deck, output=out, restart=True)


# ----------------------------------------------------------------------------- 8. unreadable files
def test_8_summary_and_compare_explain_unreadable_files(tmp_path, capsys):
    good = tmp_path / "good.h5"
    deck = tully(tmp_path, output_extra="checkpoint_every = 100")
    quiet_run(deck, output=good)
    (tmp_path / "text.h5").write_text("not hdf5\n")
    (tmp_path / "empty.h5").write_bytes(b"")
    (tmp_path / "trunc.h5").write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    (tmp_path / "adir.h5").mkdir()
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = np.arange(3)
    cases = {"text.h5": "not an HDF5 file", "empty.h5": "empty", "trunc.h5": "truncated or damaged",
             "adir.h5": "directory", "good.h5.ckpt": "checkpoint", "foreign.h5": "not an mqcd output",
             "missing.h5": "no such file"}
    for name, message in cases.items():
        for cmd in (["summary", str(tmp_path / name)], ["compare", str(good), str(tmp_path / name)]):
            assert cli(cmd) == 2, (cmd, capsys.readouterr())
            err = capsys.readouterr().err
            assert message in err and "Traceback" not in err, (name, err)


def test_8_compare_warns_about_different_models(tmp_path, capsys):
    a, b, c = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    quiet_run(tully(tmp_path, name="a.toml"), output=a)
    quiet_run(tully(tmp_path, name="b.toml", model_extra="C = 0.01"), output=b)
    quiet_run(tully(tmp_path, name="c.toml", model_extra="mass = 2000.0", seed=9), output=c)
    assert cli(["compare", str(a), str(b)]) == 0
    assert "another model" in capsys.readouterr().out
    assert cli(["compare", str(a), str(c)]) == 0          # the default mass written out: same model
    assert "another model" not in capsys.readouterr().out


def test_8_summary_into_a_closed_pipe_is_quiet(tmp_path):
    out = tmp_path / "g.h5"
    quiet_run(tully(tmp_path), output=out)
    cp = subprocess.run(f"{sys.executable} -m mqcd summary {out} | true", shell=True,
                        env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert "BrokenPipeError" not in cp.stderr and "Traceback" not in cp.stderr, cp.stderr


# ----------------------------------------------------------------------------- 9. user model errors
def test_9_syntax_and_import_errors_name_the_file_and_line(tmp_path):
    bad = NONHERM.replace("        q = x[:, 0]\n", "        q = x[:, 0\n", 1)
    with pytest.raises(mqcd.DeckError, match=r"m.py: syntax error at line \d+"):
        mqcd.read_deck(user_deck(tmp_path, source=bad))
    bad = NONHERM.replace("from mqcd.models import Model\n",
                          "from mqcd.models import Model\nimport no_such_module_xyz\n")
    with pytest.raises(mqcd.DeckError, match=r"m.py failed when imported: ModuleNotFoundError.*"
                                             r"line 4"):
        mqcd.read_deck(user_deck(tmp_path, source=bad))


def test_9_evaluate_raising_names_line_step_and_trajectories(tmp_path):
    deck = user_deck(tmp_path, "raise_after = 30")               # in the time loop
    with pytest.raises(ValueError, match=r"raised ZeroDivisionError: the user's own bug \(line "
                                         r"\d+ of .*m.py: `raise ZeroDivisionError.*in step \d+ "
                                         r"\(t = .* trajectories 0\.\.19\)"):
        quiet_run(deck)
    deck = user_deck(tmp_path, "raise_after = 1")                # already at t = 0
    with pytest.raises(ValueError, match=r"first evaluation \(t = 0"):
        quiet_run(deck)


# ----------------------------------------------------------------------------- 10. small traps
def test_10_mass_length_utf8_short_t_end_and_old_checkpoint(tmp_path, monkeypatch):
    with pytest.raises(mqcd.DeckError, match="mass has 3 entries; model 'tully1' has 1"):
        mqcd.read_deck(tully(tmp_path, model_extra="mass = [1.0, 2.0, 3.0]"))
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(tully(tmp_path).read_bytes().replace(b"[model]", b"# caf\xe9\n[model]"))
    with pytest.raises(mqcd.DeckError, match=r"latin1.toml is not valid UTF-8.*line 2"):
        mqcd.read_deck(bad)
    with pytest.raises(mqcd.DeckError, match="shorter than one time step"):
        mqcd.read_deck(tully(tmp_path, dt=0.5, t_end=0.1))
    deck = write_deck(tmp_path, ntraj=10, t_end=50.0, every=40)
    out = tmp_path / "r.h5"
    quiet_run(deck, output=out)
    out.unlink()                                           # the output is gone, its checkpoint not
    with pytest.raises(FileExistsError, match="checkpoint .* of an earlier run exists"):
        quiet_run(deck, output=out)
    assert quiet_run(deck, output=out, force=True).attrs["steps"] == 100


# ----------------------------------------------------------------------------- 11. signals
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_11_signal_saves_a_checkpoint_and_restart_is_bit_for_bit(tmp_path, sig):
    deck = write_deck(tmp_path, ntraj=20, t_end=500.0, every=0)      # no periodic checkpoints
    ref = quiet_run(deck, output=tmp_path / "ref.h5")
    out = tmp_path / "sig.h5"
    proc = start_cli(["run", deck, "-o", out, "--partial", "--progress", "none"])
    wait_for(str(out) + ".lock", proc)
    time.sleep(0.6)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err                        # was: nothing saved
    assert f"interrupted by {signal.Signals(sig).name}" in err and "--restart" in err
    step = mqcd.io.checkpoint.read_checkpoint(str(out) + ".ckpt").step
    assert 0 < step < 1000
    part = mqcd.load(out)
    assert part.attrs["partial"] and part["time"][-1] == step * 0.5
    run_cli(["run", deck, "-o", out, "--quiet", "--restart"])
    got = mqcd.load(out)
    assert got.attrs["restarted_from_step"] == step and "partial" not in got.attrs
    assert_same_results(got, ref)


@requires_mpi
@pytest.mark.mpi
def test_11_sigterm_under_mpi_stops_every_rank_at_the_same_step(tmp_path):
    deck = write_deck(tmp_path, ntraj=20, t_end=500.0, every=0)
    ref = quiet_run(deck, output=tmp_path / "ref.h5")
    out = tmp_path / "m.h5"
    env = subprocess_env()
    env["MQCD_TEST_SLEEP"] = "0.003"
    proc = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable, "-m", "mqcd", "run", str(deck),
                             "-o", str(out), "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(str(out) + ".lock", proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert "interrupted by SIGTERM" in err and err.count("interrupted by") == 1, err
    step = mqcd.io.checkpoint.read_checkpoint(str(out) + ".ckpt").step
    assert step % 10 == 0 and 0 < step < 1000
    run_cli(["run", deck, "-o", out, "--quiet", "--restart"])
    assert_same_results(mqcd.load(out), ref)


# ----------------------------------------------------------------------------- 12. quiet, summary
def test_12_quiet_prints_one_line_for_many_dropped_trajectories(tmp_path, capsys):
    deck = write_deck(tmp_path, method="ehrenfest", method_extra="", dt=1.0, t_end=500.0, every=0,
                      model_extra="xmax = 2.0", run_extra='on_nonfinite = "drop"')
    out = tmp_path / "d.h5"
    assert cli(["run", str(deck), "-o", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    n = mqcd.load(out).attrs["dropped"]
    assert n > 5
    assert [line for line in err if "dropped" in line] == [
        next(line for line in err if "dropped" in line)]
    assert f"{n} of 40 trajectories were dropped" in "\n".join(err)
    assert cli(["run", str(deck), "-o", str(out), "--force"]) == 0
    err = capsys.readouterr().err
    assert err.count("mqcd: warning: dropped") <= 5 and "not shown" in err


def test_12_summary_shows_stop_reason_dropped_and_unfinished_scattering(tmp_path, capsys):
    out = tmp_path / "early.h5"
    quiet_run(tully(tmp_path, t_end=1000.0), output=out)     # packet at x = -10: not arrived yet
    assert cli(["summary", str(out)]) == 0
    text = capsys.readouterr().out
    assert "stop: t_end" in text and "20 of 20 trajectories are still inside" in text
    assert "reflected" in text                               # the numbers, now with the warning
    done = tmp_path / "done.h5"
    quiet_run(tully(tmp_path, name="d.toml", t_end=10000.0, run_extra='stop = "exit"'), output=done)
    assert cli(["summary", str(done), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["stop_reason"] == "exit" and s["inside_at_end"] == 0 and s["warnings"] == []
    assert s["dropped"] == 0


def test_12_output_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "perm.h5"
        quiet_run(tully(tmp_path, output_extra="checkpoint_every = 100"), output=out)
        assert out.stat().st_mode & 0o777 == 0o644
        assert Path(str(out) + ".ckpt").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


# ----------------------------------------------------------------------------- 13. progress
@requires_mpi
@pytest.mark.mpi
def test_13_progress_lines_under_mpiexec_and_in_the_log_file(tmp_path):
    deck = write_deck(tmp_path, ntraj=20, t_end=500.0, every=0)
    log = tmp_path / "run.log"
    env = subprocess_env()
    env["MQCD_TEST_SLEEP"] = "0.002"
    cp = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "mqcd", "run", str(deck),
                         "-o", str(tmp_path / "p.h5"), "--log-interval", "0.5", "--log", str(log)],
                        env=env, capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    lines = [line for line in cp.stderr.splitlines() if "traj-steps/s" in line]
    assert len(lines) >= 2, cp.stderr                      # stderr is a pipe: log lines, not a bar
    assert cp.stderr.count("starting at step 0") == 1      # rank 0 only
    assert "ETA" in lines[0] and "energy drift" in lines[0] and "t = " in lines[0]
    logged = log.read_text()
    assert all(line.split("mqcd: ", 1)[1] in logged for line in lines)


def test_13_eta_follows_the_exit_rule(tmp_path, caplog):
    deck = tully(tmp_path, ntraj=50, t_end=100000.0, run_extra='stop = "exit"')
    with caplog.at_level("INFO", logger="mqcd"):
        res = quiet_run(deck, progress="log", progress_interval=0.0)
    est = [int(r.getMessage().split("/~")[1].split()[0]) for r in caplog.records
           if "(exit rule)" in r.getMessage()]
    assert est, [r.getMessage() for r in caplog.records][:5]
    nsteps = 100000.0 / 0.5
    steps = res.attrs["steps"]
    assert steps < nsteps / 10                                # the exit rule ends the run early
    assert abs(est[-1] - steps) <= 10                         # last estimate within one stride
    assert abs(est[len(est) // 2] - steps) < 0.2 * steps      # and already close half-way
