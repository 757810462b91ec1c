"""Surface hopping: energy through hops, gauge invariance, trivial crossings, option limits."""
import numpy as np
import pytest

import mqcd
from mqcd.electronic import adiabatic
from mqcd.ensemble import swarm as swarm_mod
from mqcd.models import Model

from conftest import make_deck


def test_energy_of_every_trajectory_conserved_through_hops():
    res = mqcd.run(make_deck(method="fssh", ntraj=300, dt=0.25, t_end=7000.0, stop="exit"))
    assert res["final/hops"].sum() > 50
    assert np.abs(res["final/energy_drift"]).max() < 2e-6
    # hop statistics are consistent with the density matrix on Tully 1 (no decoherence needed)
    assert abs(res["populations/active"][-1, 1] - res["populations/adiabatic"][-1, 1]) < 0.06


def test_drift_decreases_with_dt():
    d = [np.abs(mqcd.run(make_deck(method="fssh", ntraj=100, dt=dt, t_end=3000.0, x0=-8.0))
                ["final/energy_drift"]).max() for dt in (1.0, 0.5)]
    assert d[1] < d[0] / 2.5, d


@pytest.mark.parametrize("decoherence", ["none", "edc", "idc"])
def test_random_eigenvector_phases_every_step_do_not_change_results(monkeypatch, decoherence):
    deck = make_deck(method="fssh", ntraj=100, t_end=4000.0, model="tully3", decoherence=decoherence)
    ref = mqcd.run(deck)
    rng = np.random.default_rng(0)
    orig = adiabatic.eigh

    def random_gauge(H, E=None, V=None):
        E, V = orig(H)
        V = V.astype(np.complex128)
        return E, adiabatic.randomize_phases(V, rng)
    monkeypatch.setattr(swarm_mod, "diagonalize", random_gauge)
    res = mqcd.run(deck)
    assert np.array_equal(res["final/active_state"], ref["final/active_state"])
    assert np.abs(res["final/momentum"] - ref["final/momentum"]).max() < 1e-8
    assert np.abs(res["populations/adiabatic"] - ref["populations/adiabatic"]).max() < 1e-10


def test_random_phases_do_not_change_ehrenfest(monkeypatch):
    deck = make_deck(ntraj=50, t_end=3000.0)
    ref = mqcd.run(deck)
    rng = np.random.default_rng(1)
    orig = adiabatic.eigh
    monkeypatch.setattr(swarm_mod, "diagonalize",
                        lambda H, E=None, V=None: (orig(H)[0], adiabatic.randomize_phases(
                            orig(H)[1].astype(complex), rng)))
    res = mqcd.run(deck)
    assert np.abs(res["populations/adiabatic"] - ref["populations/adiabatic"]).max() < 1e-12


class TrivialCrossing(Model):
    """Two diabats crossing at x = 0 with a vanishing coupling (1e-10 hartree)."""
    name = "trivial"
    nstates = 2
    ndof = 1
    mass = 2000.0
    scattering = True

    def evaluate(self, x):
        q = x[:, 0]
        H = np.zeros((len(q), 2, 2))
        dH = np.zeros((len(q), 1, 2, 2))
        H[:, 0, 0], H[:, 1, 1] = 0.01 * np.tanh(q), -0.01 * np.tanh(q)
        H[:, 0, 1] = H[:, 1, 0] = 1e-10
        dH[:, 0, 0, 0], dH[:, 0, 1, 1] = 0.01 / np.cosh(q) ** 2, -0.01 / np.cosh(q) ** 2
        return H, dH


@pytest.mark.parametrize("dt", [0.5, 2.0])
def test_trivial_crossing_active_state_follows_diabatic_character(dt):
    from mqcd.api import build_swarm
    from mqcd.io.deck import read_deck
    from mqcd.methods import build_method
    from mqcd.parallel import SerialComm
    deck = read_deck(make_deck(method="fssh", ntraj=200, dt=dt, x0=-6.0, k=15.0))
    m = TrivialCrossing()
    meth = build_method(deck, m)
    sw = build_swarm(deck, m, meth, SerialComm())
    while np.any(sw.x[:, 0] < 6.0):
        meth.step(sw, dt)
    # started on the lower adiabat = diabat 0 on the left; diabat 0 is the upper adiabat on the right
    assert np.all(sw.active == 1)
    assert np.all(sw.counters["hops"] == 1)
    assert np.abs(np.einsum("nii->ni", sw.rho).real[:, 0] - 1).max() < 1e-9


def test_velocity_and_nac_rescaling_agree_in_one_dimension():
    a = mqcd.run(make_deck(method="fssh", ntraj=100, t_end=3000.0, rescale="nac"))
    b = mqcd.run(make_deck(method="fssh", ntraj=100, t_end=3000.0, rescale="velocity"))
    assert np.abs(a["final/momentum"] - b["final/momentum"]).max() < 1e-9


def test_edc_with_huge_c_is_plain_fssh_and_finite_c_decoheres():
    base = dict(method="fssh", model="tully3", ntraj=200, t_end=5000.0)
    plain = mqcd.run(make_deck(**base))
    weak = mqcd.run(make_deck(**base, decoherence="edc", edc_c=1e12))
    assert np.array_equal(plain["final/active_state"], weak["final/active_state"])
    assert np.abs(plain["populations/adiabatic"] - weak["populations/adiabatic"]).max() < 1e-6
    edc = mqcd.run(make_deck(**base, decoherence="edc"))
    assert edc["coherence/indicator"][-1] < 0.5 * plain["coherence/indicator"][-1]
    # EDC keeps populations consistent with the active states (mixed-quantum-classical consistency)
    assert np.abs(edc["populations/adiabatic"][-1] - edc["populations/active"][-1]).max() < 0.05


def test_frustrated_hops_policies():
    base = dict(method="fssh", model="tully3", k=5.0, ntraj=200, t_end=10000.0, stop="exit")
    keep = mqcd.run(make_deck(**base, frustrated="keep"))
    rev = mqcd.run(make_deck(**base, frustrated="reverse"))
    assert keep["final/frustrated_hops"].sum() > 0
    assert not np.allclose(keep["final/momentum"], rev["final/momentum"])
    jt = mqcd.run(make_deck(**base, frustrated="reverse_if_gradient"))
    assert jt["final/frustrated_hops"].sum() > 0
    for r in (keep, rev, jt):
        assert np.abs(r["final/energy_drift"]).max() < 1e-5


def test_idc_collapses_onto_the_new_active_state_at_each_hop():
    from mqcd.api import build_swarm
    from mqcd.electronic.adiabatic import adiabatic_populations
    from mqcd.io.deck import deck_model, read_deck
    from mqcd.methods import build_method
    from mqcd.parallel import SerialComm
    deck = read_deck(make_deck(method="fssh", model="tully3", ntraj=100, decoherence="idc"))
    model = deck_model(deck)
    meth = build_method(deck, model)
    sw = build_swarm(deck, model, meth, SerialComm())
    seen = 0
    for _ in range(8000):
        meth.step(sw, 0.5)
        if meth.accepted.any():
            P = adiabatic_populations(sw.rho, sw.V)
            idx = np.nonzero(meth.accepted)[0]
            assert np.abs(P[idx, sw.active[idx]] - 1.0).max() < 1e-12
            seen += idx.size
    assert seen > 10


def test_eigenvectors_normalised_for_couplings_near_underflow():
    from mqcd.electronic.adiabatic import eigh
    for c in (1e-156, 1e-170, 3e-200, 0.0):
        H = np.array([[[0.0, c], [c, 0.05]], [[0.05, c], [c, 0.0]]])
        E, V = eigh(H)
        assert np.abs(np.einsum("nki,nkj->nij", V, V) - np.eye(2)).max() < 1e-15


def test_edc_keeps_trace_and_positivity_with_round_off():
    from mqcd.methods.decoherence.edc import _edc
    rho = np.array([[[1.0 + 3e-15, 1e-9], [1e-9, 1e-17]], [[0.0, 0.0], [0.0, 1.0]]], complex)
    tr0 = np.einsum("nii->n", rho).real.copy()
    for _ in range(1000):
        _edc(rho, np.array([[0.0, 0.05], [0.0, 0.05]]), np.array([1, 0]), np.array([1e-5, 1e-5]),
             0.1, 0.5)
    assert np.all(np.isfinite(rho))
    assert np.abs(np.einsum("nii->n", rho).real - tr0).max() < 1e-15
    assert np.all(np.linalg.eigvalsh(rho) > -1e-15)


def test_edc_long_low_energy_run_conserves_trace():
    """Regression: slow reflected trajectories on tully2 (k = 12) once drove the trace to NaN."""
    res = mqcd.run(make_deck(method="fssh", model="tully2", k=12.0, ntraj=60, t_end=14000.0,
                             decoherence="edc", seed=11))
    assert res["diagnostics/trace_error_max"].max() < 1e-11
