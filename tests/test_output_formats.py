"""Output files that the ecosystem reads: named dimensions (xarray through h5netcdf), pint units,
``Result.to_xarray()`` and group access, the ensemble spread records."""
import warnings

import h5py
import numpy as np
import pytest

import mqcd
from mqcd.exact import run_exact
from mqcd.io.results import write_result

from conftest import make_deck

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")
pint = pytest.importorskip("pint")

UREG = pint.UnitRegistry()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """One file of each output kind: a hopping run, a mean-field run, 1D exact (absorbing
    boundary) and 2D exact, written by mqcd."""
    d = tmp_path_factory.mktemp("out")
    files = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in ("fssh", "ehrenfest"):
            res = mqcd.run(make_deck(method=m, ntraj=40, t_end=3000.0, dt=1.0, stop="exit"))
            files[m] = write_result(d / f"{m}.h5", res)
        ex = make_deck(t_end=600.0)
        ex.pop("method")
        ex["output"]["stride"] = 50
        ex["exact"] = {"absorb": True}
        files["exact"] = write_result(d / "exact.h5", run_exact(ex))
        ex2 = {"model": {"name": "conical2d"},
               "initial": {"position": [0.0, 0.0], "momentum": [0.0, 0.0], "width": [0.3, 0.3],
                           "state": 1},
               "run": {"dt": 0.5, "t_end": 5.0}, "output": {"stride": 5},
               "exact": {"points": [48, 48], "box": [-3.0, 3.0, -3.0, 3.0]}}
        files["exact2d"] = write_result(d / "exact2d.h5", run_exact(ex2))
    return files


def _all_variables(tree):
    for node in tree.subtree:
        for name, var in node.ds.variables.items():
            yield node.path, name, var


@pytest.mark.parametrize("kind", ["fssh", "ehrenfest", "exact", "exact2d"])
def test_xarray_opens_every_output_with_named_dims(outputs, kind):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no phony-dimension warnings either
        tree = xr.open_datatree(outputs[kind], engine="h5netcdf")
    res = mqcd.load(outputs[kind])
    nt, ns, nd = len(res["time"]), res.attrs["nstates"], res.attrs["ndof"]
    seen = set()
    for path, name, var in _all_variables(tree):
        assert not any(d.startswith("phony_dim") for d in var.dims), (path, name, var.dims)
        seen.update(var.dims)
    root = tree.ds
    assert root.sizes["time"] == nt and root.sizes["state"] == ns
    np.testing.assert_array_equal(root["time"].values, res["time"])
    assert root["time"].attrs["units"] == "atomic_unit_of_time"
    pops = tree["populations"]["adiabatic"]
    assert pops.dims == ("time", "state") and "time" in pops.coords and "state" in pops.coords
    np.testing.assert_array_equal(pops.values, res["populations/adiabatic"])
    assert tree["nuclear"]["momentum_mean"].dims == ("time", "dof") and root.sizes["dof"] == nd
    if kind in ("fssh", "ehrenfest"):
        fin = tree["final"]
        assert fin["rho_adiabatic"].dims == ("trajectory", "state", "state2")
        assert fin["position"].dims == ("trajectory", "dof")
        np.testing.assert_array_equal(fin["trajectory"].values, np.arange(40))
        assert tree["diagnostics"]["dropped_time"].dims == ("dropped_index",)
        assert tree["branching"]["transmission"].dims == ("state",)
    if kind == "fssh":
        assert tree["populations"]["active"].dims == ("time", "state")
    if kind == "exact":
        assert tree["density"]["n"].dims == ("time", "grid_x")
        np.testing.assert_array_equal(tree["density"]["grid_x"].values, res["density/grid_x"])
        assert tree["exact"]["absorbed"].dims == ("time", "side", "state")
        assert list(tree["exact"]["side"].values) == [-1, 1]
    if kind == "exact2d":
        assert tree["density"]["n"].dims == ("time", "grid_x", "grid_y")
        assert tree["density"].sizes["grid_x"] == 48 and tree["density"].sizes["grid_y"] == 48
    assert {"time", "state", "dof"} <= seen


@pytest.mark.parametrize("kind", ["fssh", "ehrenfest", "exact", "exact2d"])
def test_to_xarray_is_the_tree_of_the_file(outputs, kind):
    res = mqcd.load(outputs[kind])
    mem = res.to_xarray()
    disk = xr.open_datatree(outputs[kind], engine="h5netcdf")
    assert sorted(n.path for n in mem.subtree) == sorted(n.path for n in disk.subtree)
    for node in disk.subtree:
        m = mem[node.path] if node.path != "/" else mem
        for name, var in node.ds.data_vars.items():
            assert m[name].dims == var.dims, (node.path, name)
            np.testing.assert_array_equal(m[name].values, var.values)
            assert m[name].attrs["units"] == var.attrs["units"]


def test_every_unit_attribute_parses_with_pint(outputs):
    """One spelling per unit, all parsable by pint (docs/output.md)."""
    spellings = {}
    for f in outputs.values():
        with h5py.File(f, "r") as h:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset) and "units" in obj.attrs:
                    u = obj.attrs["units"]
                    spellings[name] = u.decode() if isinstance(u, bytes) else str(u)
            h.visititems(visit)
    assert len(spellings) > 30
    dims = {}
    for name, u in spellings.items():
        assert u, f"{name} has an empty units attribute"
        q = UREG.parse_units(u)                       # raises on a unit pint does not know
        dims.setdefault(u, q.dimensionality)
    # one spelling per unit: no two different strings for the same unit
    canon = {}
    for u in dims:
        key = str(UREG.parse_units(u))
        assert key not in canon, f"two spellings of one unit: {u!r} and {canon[key]!r}"
        canon[key] = u
    assert UREG.Quantity(1.0, spellings["nuclear/momentum_mean"]).to("kg*m/s").magnitude == \
        pytest.approx(1.99285e-24, rel=1e-4)
    assert UREG.Quantity(1.0, spellings["time"]).to("fs").magnitude == pytest.approx(0.0241888,
                                                                                    rel=1e-5)
    assert UREG.parse_units(spellings["final/position"]) == UREG.bohr
    assert UREG.parse_units(spellings["energy/total"]) == UREG.hartree


def test_group_attribute_access(outputs):
    res = mqcd.load(outputs["fssh"])
    np.testing.assert_array_equal(res.populations.active, res["populations/active"])
    np.testing.assert_array_equal(res.final.position, res["final/position"])
    np.testing.assert_array_equal(res.time, res["time"])
    assert res.energy.units["total"] == "hartree"
    assert "adiabatic" in res.populations.keys() and "populations" in dir(res)
    with pytest.raises(AttributeError, match="no dataset or group 'populatons'"):
        res.populatons


def test_ensemble_spread_records_match_the_final_swarm():
    """populations/adiabatic_std and coherence/indicator_std are the standard deviations over
    trajectories: at the last record they equal the spread of final/rho_adiabatic."""
    res = mqcd.run(make_deck(method="ehrenfest", ntraj=64, t_end=1400.0, dt=1.0, x0=-6.0))
    rho = res["final/rho_adiabatic"]
    pops = rho.diagonal(axis1=1, axis2=2).real
    np.testing.assert_allclose(res["populations/adiabatic_std"][-1], pops.std(axis=0), atol=1e-12)
    assert res["populations/adiabatic_std"][-1].max() > 1e-3           # the swarm has spread
    coh = np.abs(rho[:, 0, 1]) ** 2
    np.testing.assert_allclose(res["coherence/indicator_std"][-1], coh.std(), atol=1e-12)
    np.testing.assert_allclose(res["populations/adiabatic_std"][0], 0.0, atol=1e-12)  # pure start


def test_datasets_without_declared_dims_get_named_dims_in_every_group(tmp_path):
    """A dataset mqcd has no dimension names for (a method's or another part's extra) still gets
    named, group-local dimensions, so netCDF readers open the file (same leaf in two groups)."""
    from mqcd.io.results import Result
    res = Result(attrs={"mqcd_version": "x", "method": "m", "nstates": 2, "ndof": 3})
    res.add("time", np.arange(5.0), "atomic_unit_of_time")
    res.add("a/v", np.ones((5, 7)), "bohr")
    res.add("b/v", np.zeros((5, 7)), "bohr")
    res.add("b/c/w", np.zeros((4, 3)), "bohr", dims=("site", "dof"))
    res.add("b/q", np.zeros((5, 3)), "1")
    assert res.dims_of("a/v") == ("time", "v_dim1") and res.dims_of("b/q") == ("time", "dof")
    write_result(tmp_path / "x.h5", res)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = xr.open_datatree(tmp_path / "x.h5", engine="h5netcdf")
    assert tree["a"]["v"].dims == ("time", "v_dim1") and tree["b"]["v"].dims == ("time", "v_dim1")
    assert tree["b/c"]["w"].dims == ("site", "dof") and tree["b"]["q"].dims == ("time", "dof")
    back = mqcd.load(tmp_path / "x.h5")
    assert back.dims_of("b/c/w") == ("site", "dof") and set(back.keys()) == set(res.keys())
