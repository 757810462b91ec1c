"""Studies (`mqcd study`), `--set` overrides, deck errors reported at once, `mqcd compare` formats and
the comparison figures (hopping methods drawn from their active states)."""
import json
import os
import warnings

import numpy as np
import pytest

import mqcd
from mqcd.cli import main as cli
from mqcd.io.deck import DeckError, read_deck
from mqcd.io.results import write_result
from mqcd.study import StudyError, load_study, plan, run_study

from conftest import make_deck
from test_mpi import assert_same_results, requires_mpi, run_cli

# a short Tully 1 crossing: packet starts at -6 bohr with k = 20, so it is through the coupling
# region and out of |x| < 4 bohr in ~900 a.u.
BASE = """
[deck]
model = {name = "tully1"}
initial = {position = [-6.0], momentum = [20.0], width = [0.5]}
run = {trajectories = 24, dt = 1.0, t_end = 1500.0, stop = "exit", exit_radius = 4.0}
output = {stride = 10}
"""


def _study(tmp_path, body, name="s.toml", head='exact = {exact = {store_density = false}}'):
    p = tmp_path / name
    p.write_text(f"[study]\nruns = \"runs\"\n{head}\n{BASE}\n{body}")
    return p


METHODS = """
[methods]
ehrenfest = "ehrenfest"
"fssh+edc" = {name = "fssh", decoherence = "edc"}
fixed = {method = {name = "fssh"}, initial = {sampling = "fixed"}}
"""


def test_expansion_is_the_product_and_exact_runs_are_shared(tmp_path):
    p = _study(tmp_path, METHODS + """
[axes]
"run.seed" = [1, 2]
[axes.case]
soft = {model = {C = 0.005}}
strong = {"model.C" = 0.01}
""")
    st = load_study(p)
    assert len(st.runs) == 3 * 2 * 2                  # methods x seeds x cases
    # seeds, trajectories, the method and the sampling do not change the exact reference
    assert len(st.exact_runs) == 2
    assert {r.case for r in st.runs} == {"case=soft", "case=strong"}
    names = [r.name for r in st.all_runs]
    assert len(set(names)) == len(names)
    r = next(r for r in st.runs if r.labels == {"run.seed": "seed=2", "case": "case=strong",
                                                "method": "fixed"})
    assert r.name == "seed=2__case=strong__fixed"
    assert r.deck.method["name"] == "fssh" and r.deck.initial["sampling"] == "fixed"
    assert r.deck.run["seed"] == 2 and r.deck.model["C"] == 0.01
    assert r.reference.deck.model["C"] == 0.01 and r.reference.name == "case=strong__exact"
    edc = next(r for r in st.runs if r.variant == "fssh+edc")
    assert edc.deck.method["decoherence"] == "edc"
    # a variant's [method] replaces the base's: ehrenfest gets no fssh keys
    eh = next(r for r in st.runs if r.variant == "ehrenfest")
    assert eh.deck.method == read_deck(make_deck(method="ehrenfest")).method
    # a variant that changes the physics gets its own exact reference
    p2 = _study(tmp_path, METHODS + 'heavy = {method = {name = "ehrenfest"}, model = {mass = 4000.0}}',
                name="s2.toml")
    st2 = load_study(p2)
    assert len(st2.exact_runs) == 2 and len({r.case for r in st2.runs}) == 2
    # no [methods]: the base deck's [method] is the one variant
    p3 = tmp_path / "s3.toml"
    p3.write_text(BASE.replace("[deck]", '[deck]\nmethod = {name = "fssh", decoherence = "idc"}'))
    st3 = load_study(p3)
    assert [r.name for r in st3.all_runs] == ["exact", "fssh"]
    assert st3.runs[0].deck.method["decoherence"] == "idc"


def test_study_errors_are_all_reported_with_suggestions(tmp_path):
    p = _study(tmp_path, """
[methods]
ok = "fssh"
typo = {name = "fssh", decoherance = "edc"}
badname = {name = "fsh"}
sections = {method = {name = "fssh"}, intial = {sampling = "fixed"}}
[axes]
"run.sed" = [1, 2]
""")
    with pytest.raises(StudyError) as err:
        load_study(p)
    msg = str(err.value)
    assert "problems in the study" in msg
    assert "decoherance (did you mean 'decoherence'?)" in msg and "method 'typo'" in msg
    assert "'fsh' is not a known method (did you mean 'fssh'?)" in msg
    assert "'intial' is not a deck section (did you mean 'initial'?)" in msg
    assert "sed (did you mean 'seed'?)" in msg
    # the same problem in every run is listed once
    assert msg.count("sed (did you mean") == 1
    assert cli(["study", str(p)]) == 2


def test_study_runs_what_is_missing_and_skips_what_is_done(tmp_path, capsys):
    p = _study(tmp_path, '[methods]\nehrenfest = "ehrenfest"\nfssh = "fssh"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run_study(p) == 0
    runs = tmp_path / "runs"
    files = {f.name: f.stat().st_mtime_ns for f in runs.glob("*.h5") if f.name != "study.h5"}
    assert set(files) == {"ehrenfest.h5", "fssh.h5", "exact.h5"}
    assert (runs / "fssh.toml").exists()                  # each run's deck, rerunnable alone
    md = (runs / "report.md").read_text()
    assert "`mqcd study " in md.splitlines()[2]           # the command at the top
    assert "populations" in md and "fssh" in md and "exact" in md
    assert (runs / "report.html").exists() and (runs / "case_populations.png").exists()
    capsys.readouterr()
    # nothing to do the second time
    assert run_study(p) == 0
    assert "3 done, 0 to run" in capsys.readouterr().err
    assert {f.name: f.stat().st_mtime_ns for f in runs.glob("*.h5")
            if f.name != "study.h5"} == files
    # one more method: one more run; the others are kept
    p.write_text(p.read_text() + '"fssh+edc" = {name = "fssh", decoherence = "edc"}\n')
    st = load_study(p)
    state = plan(st)
    assert [n for n, (s, _) in state.items() if s != "done"] == ["fssh+edc"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run_study(p) == 0
    assert (runs / "fssh+edc.h5").stat().st_mtime_ns and all(
        (runs / n).stat().st_mtime_ns == t for n, t in files.items())
    # more trajectories: the trajectory runs are stale, the exact reference is still done
    state = plan(load_study(p, overrides=["run.trajectories=30"]))
    assert state["exact"][0] == "done" and state["fssh"][0] == "stale"
    # a result with the same deck under another name is found (a renamed label)
    p.write_text(p.read_text().replace('fssh = "fssh"', 'plain-fssh = "fssh"'))
    state = plan(load_study(p))
    assert state["plain-fssh"] == ("done", runs / "fssh.h5")
    # --force with --only re-runs the selected runs and nothing else
    before = {f.name: f.stat().st_mtime_ns for f in runs.glob("*.h5") if f.name != "study.h5"}
    capsys.readouterr()
    assert run_study(p, only=["exact"], force=True) == 0
    assert "1 to run (--only exact)" in capsys.readouterr().err
    after = {f.name: f.stat().st_mtime_ns for f in runs.glob("*.h5") if f.name != "study.h5"}
    assert after["exact.h5"] != before["exact.h5"]
    assert all(after[n] == t for n, t in before.items() if n != "exact.h5")


def test_study_file_opens_in_xarray_with_named_dims(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    p = _study(tmp_path, '[methods]\nehrenfest = "ehrenfest"\nfssh = "fssh"\n'
               '[axes]\n"initial.momentum" = [20.0, 25.0]\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run_study(p) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = xr.open_datatree(tmp_path / "runs" / "study.h5", engine="h5netcdf")
    assert tree.sizes["run"] == 6 and tree.sizes["state"] == 2
    assert list(tree["run"].values[:3]) == ["momentum=20 | ehrenfest", "momentum=20 | fssh",
                                            "momentum=20 | exact"]
    b = tree["branching"]["transmission"]
    assert b.dims == ("run", "state")
    fssh = mqcd.load(tmp_path / "runs" / "momentum=20__fssh.h5")
    np.testing.assert_array_equal(b.sel(run="momentum=20 | fssh").values,
                                  fssh["branching/transmission"])
    d = tree["errors"]["delta_transmission"].sel(run="momentum=20 | fssh").values
    ex = mqcd.load(tmp_path / "runs" / "momentum=20__exact.h5")
    np.testing.assert_allclose(d, fssh["branching/transmission"] - ex["branching/transmission"])
    for node in tree.subtree:
        for var in node.ds.variables.values():
            assert not any(x.startswith("phony") for x in var.dims)


def test_set_overrides_are_validated_and_recorded(tmp_path, capsys):
    deck = tmp_path / "d.toml"
    deck.write_text('[model]\nname = "tully1"\n[initial]\nposition = [-5.0]\nmomentum = [20.0]\n'
                    'width = [0.5]\n[method]\nname = "ehrenfest"\n[run]\ntrajectories = 4\n'
                    'dt = 1.0\nt_end = 20.0\n')
    out = tmp_path / "o.h5"
    assert cli(["run", str(deck), "-o", str(out), "--quiet", "--set", "run.trajectories=7",
                "--set", "method.name=fssh", "--set", "initial.momentum=[21.0]"]) == 0
    res = mqcd.load(out)
    assert res.attrs["trajectories"] == 7 and res.attrs["method"] == "fssh"
    text = res.attrs["deck"]
    assert "--set run.trajectories=7" in text.splitlines()[0]
    again = read_deck(__import__("tomllib").loads(text))         # the recorded deck is the run's
    assert again.run["trajectories"] == 7 and again.initial["momentum"] == [21.0]
    capsys.readouterr()
    for args, message in [
            (["--set", "run.trajectorie=9"], "unknown key(s) trajectorie (did you mean 'trajectories'?)"),
            (["--set", "run.dt=-1"], "[run] dt = -1.0: must be > 0"),
            (["--set", "method.decoherence=edx", "--set", "method.name=fssh"],
             "[method] decoherence = 'edx' is not allowed (did you mean 'edc'?)"),
            (["--set", "mehtod.name=fssh"], "unknown section [mehtod] (did you mean 'method'?)"),
            (["--set", "trajectories=9"], "expected SECTION.KEY=VALUE")]:
        assert cli(["run", str(deck), "-o", str(tmp_path / "x.h5"), "--quiet", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
        assert not (tmp_path / "x.h5").exists()


def test_deck_reports_every_error_at_once():
    d = make_deck(method="fssh")
    d["run"]["trajectores"] = 10
    d["run"]["dt"] = -0.5
    d["method"]["rescale"] = "velocty"
    d["initial"]["widht"] = [1.0]
    d["model"]["name"] = "tully4"
    with pytest.raises(DeckError) as err:
        read_deck(d)
    errs = err.value.errors
    assert len(errs) == 5, errs
    msg = str(err.value)
    assert "5 problems in the deck" in msg
    for part in ("trajectores (did you mean 'trajectories'?)", "[run] dt = -0.5: must be > 0",
                 "'velocty' is not allowed (did you mean 'velocity'?)",
                 "widht (did you mean 'width'?)", "'tully4' is not a built-in model (did you mean 'tully"):
        assert part in msg, part


@pytest.fixture(scope="module")
def crossing_runs(tmp_path_factory):
    """fssh (hops, so active fractions and rho populations differ), ehrenfest and exact (which
    goes on longer than the trajectory runs) through the Tully 1 crossing."""
    d = tmp_path_factory.mktemp("cross")
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in ("fssh", "ehrenfest"):
            deck = make_deck(method=m, ntraj=60, k=20.0, x0=-6.0, dt=1.0, t_end=1500.0,
                             stop="exit")
            deck["run"]["exit_radius"] = 4.0
            paths[m] = write_result(d / f"{m}.h5", mqcd.run(deck))
        ex = make_deck(k=20.0, x0=-6.0, t_end=1500.0)
        ex.pop("method")
        paths["exact"] = write_result(d / "exact.h5", mqcd.exact.run_exact(ex))
    return paths


def test_plot_draws_active_populations_for_hopping_methods(crossing_runs):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mqcd.analysis.compare import run_view
    from mqcd.analysis.plots import draw_populations, settle_time, time_limit
    res = {k: mqcd.load(p) for k, p in crossing_runs.items()}
    views = [run_view(res[k], k) for k in ("fssh", "ehrenfest", "exact")]
    assert [v.source for v in views] == ["populations/active", "populations/adiabatic",
                                         "populations/adiabatic"]
    fs = res["fssh"]
    assert np.abs(fs["populations/active"][-1] - fs["populations/adiabatic"][-1]).max() > 0.01
    # the branching of a hopping run counts active states: the plotted curve ends there
    np.testing.assert_allclose(fs["populations/active"][-1, 1],
                               fs["branching/transmission"][1] + fs["branching/reflection"][1])
    fig, axes = plt.subplots(1, 2)
    draw_populations(axes, views)
    for n, ax in enumerate(axes):
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        t_end = fs["time"][-1]
        np.testing.assert_array_equal(lines["fssh"].get_ydata(), fs["populations/active"][:, n])
        np.testing.assert_array_equal(lines["ehrenfest"].get_ydata(),
                                      res["ehrenfest"]["populations/adiabatic"][:, n])
        # binomial band for hopping: P +- sqrt(P (1 - P) / N)
        band = ax.collections[0].get_paths()[0].vertices
        P = fs["populations/active"][:, n]
        se = np.sqrt(P * (1 - P) / 60)
        assert band[:, 1].max() == pytest.approx((P + se).max())
        # the time axis ends where the trajectory runs ended (or soon after the last change of
        # any curve); the exact run, which goes on longer, continues faintly
        t_traj = max(fs["time"][-1], res["ehrenfest"]["time"][-1])
        t_axis = time_limit(views)
        assert res["exact"]["time"][-1] > t_traj >= t_axis >= 1.2 * settle_time(views[0])
        assert ax.get_xlim()[1] == pytest.approx(1.06 * t_axis)
        faint = [ln for ln in ax.get_lines() if ln.get_alpha() is not None]
        assert len(faint) == 1 and faint[0].get_xdata()[0] <= t_axis < faint[0].get_xdata()[-1]
        assert faint[0].get_color() == "black" and t_end <= t_traj
    plt.close(fig)


def test_compare_labels_json_csv_and_plot(crossing_runs, tmp_path, capsys):
    files = [str(crossing_runs[k]) for k in ("fssh", "ehrenfest", "exact")]
    png = tmp_path / "c.png"
    assert cli(["compare", *files, "--label", "FSSH (plain)", "--label", "MF",
                "--label", "exact", "--json", "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["label"]: r for r in out["runs"]}
    assert set(rows) == {"FSSH (plain)", "MF", "exact"}
    f = rows["FSSH (plain)"]
    assert f["populations_source"] == "populations/active"
    ex = mqcd.load(files[2])
    np.testing.assert_allclose(f["delta_transmission"], np.asarray(f["transmission"])
                               - ex["branching/transmission"])
    assert f["populations_error_max"][1] >= f["populations_error_final"][1] - 1e-12
    assert f["trajectory_steps_per_s"] > 0 and png.stat().st_size > 10000
    assert cli(["compare", *files, "--csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("label,method")
    assert cli(["compare", *files, "--label", "only-one"]) == 2
    assert "one label per file" in capsys.readouterr().err


@requires_mpi
def test_study_under_mpi_shares_the_ranks(tmp_path):
    """`mpiexec -n 2 mqcd study --jobs 2`: the ranks split between two runs at a time; every
    result equals the serial one bit for bit."""
    p = _study(tmp_path, '[methods]\nehrenfest = "ehrenfest"\nfssh = "fssh"\n', head="exact = false")
    serial = _study(tmp_path, '[methods]\nehrenfest = "ehrenfest"\nfssh = "fssh"\n',
                    name="serial.toml", head='exact = false\nruns = "runs_serial"')
    serial.write_text(serial.read_text().replace('runs = "runs"\n', "", 1))
    run_cli(["study", p, "--jobs", "2"], nranks=2)
    run_cli(["study", serial])
    for name in ("ehrenfest.h5", "fssh.h5"):
        a = mqcd.load(tmp_path / "runs" / name)
        b = mqcd.load(tmp_path / "runs_serial" / name)
        assert a.attrs["ranks"] == 1                    # --jobs 2 on 2 ranks: one rank each
        assert_same_results(a, b)
    run_cli(["study", p, "--force"], nranks=2)         # --jobs 1: both ranks on every run
    a = mqcd.load(tmp_path / "runs" / "fssh.h5")
    assert a.attrs["ranks"] == 2
    assert_same_results(a, mqcd.load(tmp_path / "runs_serial" / "fssh.h5"))
    assert os.path.exists(tmp_path / "runs" / "report.md")
