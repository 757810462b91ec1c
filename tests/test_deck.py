"""Deck validation: every bad input is rejected before any compute, naming the key."""
import subprocess
import sys

import pytest

import mqcd
from mqcd.io.deck import DeckError, read_deck

from conftest import make_deck


def _bad(mutate, match):
    d = make_deck()
    mutate(d)
    with pytest.raises(DeckError, match=match):
        read_deck(d)


def test_valid_deck_fills_defaults():
    d = read_deck(make_deck())
    assert d.run["electronic_substeps"] == 1 and d.output["stride"] == 10
    assert d.initial["sampling"] == "wigner"


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d["run"].update(dt=0.0), r"\[run\] dt .*must be > 0"),
    (lambda d: d["run"].update(dt=-0.5), r"\[run\] dt"),
    (lambda d: d["run"].update(trajectories=0), r"\[run\] trajectories"),
    (lambda d: d["run"].update(trajectories=2.5), r"\[run\] trajectories .*integer"),
    (lambda d: d["run"].update(dt="fast"), r"\[run\] dt .*number"),
    (lambda d: d["run"].update(stepsize=1), r"\[run\] unknown key.*stepsize.*allowed: trajectories"),
    (lambda d: d["run"].pop("t_end"), r"\[run\] t_end is required"),
    (lambda d: d["model"].update(name="tully9"), r"\[model\] name = 'tully9'.*allowed: .*tully1"),
    (lambda d: d["model"].update(Q=1.0), r"\[model\] unknown parameter.*Q.*allowed: A, B, C, D"),
    (lambda d: d["method"].update(name="magic"), r"\[method\] name = 'magic'.*allowed: .*'ehrenfest'"),
    (lambda d: d["method"].update(rescale="nac"), r"\[method\] unknown key.*rescale"),
    (lambda d: d["initial"].update(state=2), r"\[initial\] state = 2 is out of range.*0..1"),
    (lambda d: d["initial"].update(sampling="microcanonical"), r"\[initial\] sampling.*'wigner', 'hydrodynamic', 'fixed', 'wigner-thermal', 'boltzmann', 'gibbs'"),
    (lambda d: d["initial"].update(position=[0.0, 1.0]), r"\[initial\] position has 2 entries"),
    (lambda d: d["initial"].update(width=[-1.0]), r"\[initial\] width"),
    (lambda d: d.update(physics={}), r"unknown section"),
    (lambda d: d.pop("run"), r"section \[run\] is missing"),
    (lambda d: d["output"].update(stride=0), r"\[output\] stride"),
])
def test_bad_decks_are_rejected(mutate, match):
    _bad(mutate, match)


def test_fssh_options_validated():
    d = make_deck(method="fssh", rescale="sideways")
    with pytest.raises(DeckError, match=r"\[method\] rescale = 'sideways'.*'nac', 'velocity'"):
        read_deck(d)


def test_toml_file_roundtrip_and_relative_output(tmp_path):
    deck = tmp_path / "d.toml"
    deck.write_text('[model]\nname = "tully1"\n[initial]\nposition = [-5.0]\nmomentum = [10.0]\n'
                    'width = [1.0]\n[method]\nname = "ehrenfest"\n[run]\ntrajectories = 4\n'
                    'dt = 1.0\nt_end = 10.0\n[output]\nfile = "out.h5"\n')
    d = read_deck(deck)
    assert d.output_path() == tmp_path / "out.h5"
    assert "tully1" in d.text


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mqcd", *args], cwd=cwd, capture_output=True,
                          text=True)


def test_cli_never_overwrites_and_bad_deck_leaves_files(tmp_path):
    deck = tmp_path / "d.toml"
    deck.write_text('[model]\nname = "tully1"\n[initial]\nposition = [-5.0]\nmomentum = [10.0]\n'
                    'width = [1.0]\n[method]\nname = "ehrenfest"\n[run]\ntrajectories = 4\n'
                    'dt = 1.0\nt_end = 10.0\n[output]\nfile = "out.h5"\n')
    out = tmp_path / "out.h5"
    out.write_bytes(b"precious")
    r = _cli("run", str(deck), "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "exists" in r.stderr and "--force" in r.stderr
    assert out.read_bytes() == b"precious"
    bad = tmp_path / "bad.toml"
    bad.write_text(deck.read_text().replace("dt = 1.0", "dt = -1.0"))
    r = _cli("run", str(bad), "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "[run] dt" in r.stderr
    r = _cli("run", str(deck), "--quiet", "--force", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = mqcd.load(out)
    assert res.attrs["method"] == "ehrenfest"
