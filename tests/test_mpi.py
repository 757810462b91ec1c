"""MPI runs (`mpiexec -n P python -m mqcd run`) give bit-for-bit the serial results.

The helpers ``find_mpiexec``, ``run_mpi`` and ``assert_same_results`` are meant for reuse by
later tests (coupled methods):

    from test_mpi import run_mpi, assert_same_results, requires_mpi
    res = run_mpi(deck_path, 3, tmp_path / "out3.h5")     # -> mqcd.Result read from the file

mpiexec is looked up next to the running python first (``pip install mpi4py mpich`` puts it
there), then on PATH; the tests are skipped, with the reason, only if none is found or mpi4py
is not importable.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mqcd
from mqcd.parallel import SerialComm, block_range
from mqcd.parallel.exactsum import exact_column_sums

ROOT = Path(__file__).resolve().parents[1]


def find_mpiexec():
    """Path of an mpiexec matching this python's mpi4py, or None."""
    here = Path(sys.executable).parent
    for name in ("mpiexec", "mpirun"):
        if (here / name).is_file():
            return str(here / name)
    return shutil.which("mpiexec") or shutil.which("mpirun")


def _mpi4py_ok():
    try:
        import mpi4py  # noqa: F401
        return True
    except ImportError:
        return False


MPIEXEC = find_mpiexec()
requires_mpi = pytest.mark.skipif(
    MPIEXEC is None or not _mpi4py_ok(),
    reason=("no mpiexec found next to sys.executable or on PATH" if MPIEXEC is None else
            "mpi4py is not importable") + "; install the test extra: pip install '.[test]'")


def subprocess_env():
    env = dict(os.environ)
    env.update(OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def run_cli(args, nranks=None, timeout=180, check=True):
    """Run ``python -m mqcd ARGS`` (under ``mpiexec -n nranks`` if given); CompletedProcess."""
    cmd = [sys.executable, "-m", "mqcd", *map(str, args)]
    if nranks is not None:
        cmd = [MPIEXEC, "-n", str(nranks), *cmd]
    cp = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True,
                        timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}")
    return cp


def run_mpi(deck_path, n, output=None, *extra):
    """``mpiexec -n n python -m mqcd run deck -o output --quiet --force``; the loaded Result.

    ``output`` defaults to DECK.mpiN.h5 next to the deck; ``extra`` are more CLI arguments."""
    deck_path = Path(deck_path)
    output = output or deck_path.with_suffix(f".mpi{n}.h5")
    run_cli(["run", deck_path, "-o", output, "--quiet", "--force", *extra], nranks=n)
    return mqcd.load(output)


def assert_same_results(a, b, skip=()):
    """Every dataset of two Results bit-for-bit equal (np.array_equal), same dataset names."""
    assert set(a.keys()) == set(b.keys())
    diff = [k for k in a.keys() if k not in skip and not np.array_equal(a[k], b[k])]
    assert not diff, f"datasets differ: {diff}"


EHRENFEST = """
[model]
name = "tully1"
[initial]
position = [-4.0]
momentum = [15.0]
width = [0.7]
[method]
name = "ehrenfest"
[run]
trajectories = 30
dt = 1.0
t_end = 400.0
seed = 3
[output]
stride = 10
"""

FSSH_EDC = """
[model]
name = "tully2"
[initial]
position = [-4.0]
momentum = [20.0]
width = [0.5]
[method]
name = "fssh"
decoherence = "edc"
[run]
trajectories = 30
dt = 1.0
t_end = 500.0
seed = 5
[output]
stride = 10
"""


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    d = tmp_path_factory.mktemp("mpi")
    out = {}
    for name, text in (("ehrenfest", EHRENFEST), ("fssh", FSSH_EDC)):
        p = d / f"{name}.toml"
        p.write_text(text)
        out[name] = (p, mqcd.run(p, output=d / f"{name}_serial.h5"))
    return out


def test_fssh_deck_has_hops(decks):
    assert decks["fssh"][1]["final/hops"].sum() > 5     # the test exercises hops + momentum jumps


@requires_mpi
@pytest.mark.mpi
@pytest.mark.parametrize("method", ["ehrenfest", "fssh"])
@pytest.mark.parametrize("nranks", [2, 3])
def test_mpi_equals_serial_bit_for_bit(decks, tmp_path, method, nranks):
    deck, ref = decks[method]
    res = run_mpi(deck, nranks, tmp_path / f"{method}_{nranks}.h5")
    assert res.attrs["ranks"] == nranks
    assert_same_results(res, ref)


@requires_mpi
@pytest.mark.mpi
def test_mpi_checkpoint_extends_on_other_rank_count(decks, tmp_path):
    """Checkpoint gathered by 2 ranks, restart scattered over 3 ranks, t_end extended: equal to
    the serial uninterrupted long run (the results do not depend on the rank count)."""
    text = FSSH_EDC.replace("stride = 10", "stride = 10\ncheckpoint_every = 70")
    short = tmp_path / "short.toml"
    short.write_text(text.replace("t_end = 500.0", "t_end = 250.0"))
    out = tmp_path / "ext.h5"
    run_cli(["run", short, "-o", out, "--quiet"], nranks=2)
    long = tmp_path / "long.toml"
    long.write_text(text)
    res = run_mpi(long, 3, out, "--restart")
    assert res.attrs["restarted_from_step"] == 250
    assert_same_results(res, decks["fssh"][1])


def test_exact_sums_do_not_depend_on_the_split():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(1001, 4)) * np.exp(rng.normal(size=(1001, 4)) * 8)
    ref = exact_column_sums(a)
    import math
    assert all(ref[j] == math.fsum(a[:, j]) for j in range(4))    # correctly rounded
    from mqcd.parallel.exactsum import finalize, local_accumulator
    for size in (2, 3, 7):
        acc = sum(local_accumulator(a[slice(*block_range(1001, size, r))]) for r in range(size))
        assert np.array_equal(finalize(acc), ref)
    assert np.array_equal(SerialComm().sum_rows(a[::-1]), ref)          # order independent
    assert np.isnan(exact_column_sums(np.array([1.0, np.nan])))
    assert exact_column_sums(np.array([np.inf, 1.0])) == np.inf


def test_get_comm_without_launcher_is_serial(monkeypatch):
    from mqcd.parallel import get_comm, launcher_size
    assert launcher_size({}) is None
    assert launcher_size({"PMI_SIZE": "4", "PMI_RANK": "0"}) == 4
    assert launcher_size({"HYDRA_CONTROL_FD": "3"}) == 0
    for k in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_RANK",
              "PMI_RANK", "MPI_LOCALNRANKS", "HYDRA_CONTROL_FD", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert isinstance(get_comm(), SerialComm)


def test_several_ranks_without_mpi4py_is_a_clear_error(monkeypatch):
    from mqcd import parallel
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setitem(sys.modules, "mqcd.parallel.mpi", None)     # import fails
    with pytest.raises(RuntimeError, match="mpi4py"):
        parallel.get_comm()
    monkeypatch.setenv("PMI_SIZE", "1")
    assert isinstance(parallel.get_comm(), SerialComm)
