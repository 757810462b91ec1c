"""Distributed field estimation (mqcd/fields/distributed.py): coupled runs on 2 and 3 ranks are
bit-for-bit the serial run on the grid path, where each rank deposits only its own trajectories
and the fixed-point grid moments are summed over ranks; a checkpoint written on 2 ranks extends on
3 to the serial result."""
import numpy as np
import pytest

import mqcd
from mqcd.fields.grid import fixed_scales, fixed_to_float
from test_mpi import MPIEXEC, assert_same_results, run_cli, run_mpi

DECK = """
[model]
name = "{model}"
[initial]
position = {x0}
momentum = {p0}
width = {w0}
[method]
name = "{method}"
{extra}
[run]
trajectories = {n}
dt = 0.5
t_end = {t_end}
seed = 4
[output]
stride = 20
checkpoint_every = {every}
"""

ONE_D = dict(model="tully3", x0="[-6.0]", p0="[10.0]", w0="[1.0]")
TWO_D = dict(model="conical2d", x0="[-1.0, 0.0]", p0="[6.0, 0.0]", w0="[0.5, 0.5]")


def write(tmp_path, name, method, extra="", n=301, t_end=40.0, every=0, geom=ONE_D):
    p = tmp_path / f"{name}.toml"
    p.write_text(DECK.format(method=method, extra=extra, n=n, t_end=t_end, every=every, **geom))
    return p


def test_fixed_point_deposit_is_order_independent_and_accurate():
    """The fixed-point cell sums do not depend on the order or the split of the sources and
    agree with a float sum to a relative 1e-15 of the column bound."""
    rng = np.random.default_rng(1)
    F = rng.normal(size=(5000, 3)) * np.array([1e-3, 1.0, 1e5])
    sc, e = fixed_scales(F, F.shape[0])

    def cellsum(rows):
        u = F[rows] * sc
        hi = np.floor(u)
        acc = np.stack([hi.astype(np.int64).sum(axis=0, dtype=np.int64),
                        ((u - hi) * 2.0 ** 32).astype(np.int64).sum(axis=0)])
        return acc

    whole = cellsum(np.arange(5000))
    perm = rng.permutation(5000)
    split = cellsum(perm[:1234]) + cellsum(perm[1234:])
    got = fixed_to_float(whole[:, None, None, :], e)[0, 0]
    assert np.array_equal(got, fixed_to_float(split[:, None, None, :], e)[0, 0])
    bound = np.abs(F).sum(axis=0)
    assert np.all(abs(got - F.sum(axis=0)) <= 1e-15 * bound)


CASES = [("ehrenfest-qc", "", ONE_D),                       # modes estimator, trajectory route
         ("fssh-coupled", "", ONE_D),                       # kernel estimator
         ("qhd", "", ONE_D),                                # kernel, conservative quantum force
         ("geometric-ehrenfest-qc", "", ONE_D),             # kernel, conservative rho2 route
         ("ehrenfest-qc", "", TWO_D)]


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec next to the python executable")
@pytest.mark.parametrize("method,extra,geom", CASES,
                         ids=[f"{m}-{len(g['w0'].split(','))}d" for m, _, g in CASES])
def test_grid_path_mpi_equals_serial(tmp_path, method, extra, geom):
    n = 301 if geom is ONE_D else 451
    deck = write(tmp_path, "d", method, extra, n=n, geom=geom)
    serial = mqcd.run(deck)
    assert serial["diagnostics/bandwidth_density"].shape[0] > 0
    for ranks in (2, 3):
        assert_same_results(run_mpi(deck, ranks, tmp_path / f"o{ranks}.h5"), serial)


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec next to the python executable")
def test_checkpoint_from_two_ranks_extends_on_three(tmp_path):
    full = write(tmp_path, "full", "qhd", n=301, t_end=40.0, every=40)
    ref = mqcd.run(full, output=tmp_path / "ref.h5")
    short = write(tmp_path, "short", "qhd", n=301, t_end=20.0, every=40)
    out = tmp_path / "ext.h5"
    run_cli(["run", short, "-o", out, "--quiet"], nranks=2)
    run_cli(["run", full, "-o", out, "--quiet", "--restart", "--force"], nranks=3)
    got = mqcd.load(out)
    for k in ("final/position", "final/momentum", "final/rho_diabatic", "populations/adiabatic"):
        assert np.array_equal(got[k], ref[k]), k
