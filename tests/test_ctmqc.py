"""Issue 11: strength of the quantum coupling against the exact two-packet rate, per-mode
bandwidths that do not span separated packets, and the CTMQC parts of route (b)."""
import numpy as np
import pytest

from mqcd.electronic.coherence import population_rates, trajectory_derivatives
from mqcd.electronic.geometry import geometry_from_fields
from mqcd.fields import FieldEstimate, estimate_fields, FieldOptions
from mqcd.fields.density import ModalEstimator, mode_labels
from mqcd.methods.ctmqc import (adiabatic, correction_and_force, pair_centre_velocity,
                                pair_differences, reset_forces)
from mqcd.parallel.comm import SerialComm

M = 2000.0


def two_packets(x, a=(0.8, 0.6), X=(-1.0, 1.5), s=(1.0, 0.8), p=(8.0, 14.0)):
    """Two uncoupled packets chi_n = a_n exp(-(x-X_n)^2/(4 s_n^2) + i p_n x) on flat surfaces:
    chi_n, chi_n', chi_n'' at x (analytic)."""
    out = []
    for an, Xn, sn, pn in zip(a, X, s, p):
        c = an * np.exp(-(x - Xn) ** 2 / (4 * sn ** 2) + 1j * pn * x)
        l1 = -(x - Xn) / (2 * sn ** 2) + 1j * pn
        out.append((c, c * l1, c * (l1 ** 2 - 1.0 / (2 * sn ** 2))))
    return out


def exact_fields(x, E=(0.0, 0.03)):
    """n, d ln n, rho, d rho, d2 rho (analytic), the hydrodynamic velocity and the exact
    Lagrangian rate d rho_00/dt along it (from the TDSE: d_t chi = i chi''/(2M) - i E chi)."""
    (c0, d0, e0), (c1, d1, e1) = two_packets(x)
    psi = np.stack([c0, c1], 1)
    dpsi = np.stack([d0, d1], 1)
    d2psi = np.stack([e0, e1], 1)
    n = np.sum(np.abs(psi) ** 2, 1)
    dn = 2 * np.sum(np.real(np.conj(psi) * dpsi), 1)
    d2n = 2 * np.sum(np.real(np.conj(psi) * d2psi) + np.abs(dpsi) ** 2, 1)
    phi = psi / np.sqrt(n)[:, None]                     # conditional electronic state
    l = dn / (2 * n)
    dphi = dpsi / np.sqrt(n)[:, None] - l[:, None] * phi
    dl = d2n / (2 * n) - dn ** 2 / (2 * n ** 2)
    d2phi = (d2psi / np.sqrt(n)[:, None] - 2 * l[:, None] * dpsi / np.sqrt(n)[:, None]
             + (l ** 2 - dl)[:, None] * phi)
    op = np.einsum
    rho = op("ia,ib->iab", phi, np.conj(phi))
    drho = op("ia,ib->iab", dphi, np.conj(phi)) + op("ia,ib->iab", phi, np.conj(dphi))
    d2rho = (op("ia,ib->iab", d2phi, np.conj(phi)) + 2 * op("ia,ib->iab", dphi, np.conj(dphi))
             + op("ia,ib->iab", phi, np.conj(d2phi)))
    vbar = np.sum(np.imag(np.conj(psi) * dpsi), 1) / (M * n)
    dt_psi = 1j * d2psi / (2 * M) - 1j * np.asarray(E)[None, :] * psi
    dt_n0 = 2 * np.real(np.conj(c0) * dt_psi[:, 0])
    dt_n = 2 * np.sum(np.real(np.conj(psi) * dt_psi), 1)
    r0 = np.abs(c0) ** 2 / n
    dr0 = np.real(drho[:, 0, 0])
    rate = (dt_n0 - r0 * dt_n) / n + vbar * dr0
    f = FieldEstimate(n=n, dlogn=(dn / n)[:, None], rho=rho, drho=drho[:, None],
                      d2rho=d2rho[:, None, None])
    return f, rate, phi


def _rate(G, rho):
    V = np.broadcast_to(np.eye(2, dtype=complex), rho.shape).copy()
    out = np.empty((rho.shape[0], 1, 2))
    population_rates(np.ascontiguousarray(G[:, None]), np.ascontiguousarray(rho), V, out)
    return out[:, 0, 0]


def test_quantum_coupling_rate_is_the_exact_two_packet_rate():
    """MB(67) with exact fields gives the exact Lagrangian population rate of two uncoupled
    packets, and its quantum-coupling part alone is -rho00 rho11 (v0 - v1) d ln n: mqcd's
    coefficient. Half of it (the peers' strength) is off by far more than the tolerance."""
    x = np.linspace(-3.0, 4.0, 41)
    f, exact, phi = exact_fields(x)
    geo = geometry_from_fields(f, [M])
    r_qc = _rate(geo.dH_qc, f.rho)
    r_all = _rate(geo.dH_qc + geo.dH_geo, f.rho)
    scale = np.max(np.abs(exact))
    assert np.max(np.abs(r_all - exact)) < 1e-9 * scale
    r00, r11 = np.real(f.rho[:, 0, 0]), np.real(f.rho[:, 1, 1])
    v0, v1 = 8.0 / M, 14.0 / M
    qc = -r00 * r11 * (v0 - v1) * f.dlogn[:, 0]
    assert np.max(np.abs(r_qc - qc)) < 1e-9 * np.max(np.abs(qc))
    assert np.max(np.abs(0.5 * r_qc - qc)) > 0.4 * np.max(np.abs(qc))
    # route (b) with the exact phase gradients f_n = p_n gives the same rate
    fmom = np.broadcast_to(np.array([8.0, 14.0]), (x.size, 1, 2)).copy()
    V = np.broadcast_to(np.eye(2, dtype=complex), f.rho.shape).copy()
    E = np.zeros((x.size, 2))
    dH = np.zeros((x.size, 1, 2, 2), complex)
    _, drho_b = trajectory_derivatives(f.rho, dH, E, V, fmom)
    fb = FieldEstimate(n=f.n, dlogn=f.dlogn, rho=f.rho, drho=drho_b)
    r_b = _rate(geometry_from_fields(fb, [M]).dH_qc, f.rho)
    assert np.max(np.abs(r_b - qc)) < 1e-9 * np.max(np.abs(qc))
    # the ctmqc.py form of the same correction and its force (2 u.g)
    u = -0.5 * f.dlogn / M
    unm = np.broadcast_to(u[:, :, None, None], (x.size, 1, 2, 2))
    G, F = correction_and_force(adiabatic(f.rho, V), V, pair_differences(fmom), unm, E,
                                np.ones((x.size, 1)), [M], "gradient", 1e-3)
    gb = geometry_from_fields(fb, [M])
    assert np.allclose(G, gb.dH_qc, atol=1e-12 * np.abs(gb.dH_qc).max())
    assert np.allclose(F, 2 * u * gb.g[:, :, 0], atol=1e-12 * np.abs(F).max())


def test_two_packets_20_bohr_apart_give_each_packet_alone():
    """Per-mode bandwidths: at each packet, grad ln n of the two-packet swarm equals that of the
    packet alone to the kernel sums' accuracy (the global rule's error there is > 10 %)."""
    rng = np.random.default_rng(3)
    A = rng.normal(-10.0, 0.7, (300, 1))
    B = rng.normal(10.0, 1.3, (200, 1))
    x = np.vstack([A, B])

    class Model:
        masses = [M]

    def fields(y):
        est = ModalEstimator({"field_method": "modes"}, Model(), None, SerialComm(),
                             ("density",))

        class S:
            pass
        sw = S()
        sw.x, sw.rho, sw.ntraj = y, None, y.shape[0]
        return est.estimate(sw), est

    both, est = fields(x)
    assert est.n_modes == 2
    for sl, alone in ((slice(0, 300), A), (slice(300, 500), B)):
        fa, _ = fields(alone)
        scale = np.max(np.abs(fa.dlogn))
        # the grid path's own accuracy (~1e-4 relative; the grid differs with the swarm extent)
        assert np.max(np.abs(both.dlogn[sl] - fa.dlogn)) < 1e-3 * scale
    g = estimate_fields(x, None, None, FieldOptions(spread="std"), need=("density",))
    fa, _ = fields(A)
    assert np.max(np.abs(g.dlogn[:300] - fa.dlogn)) > 0.1 * np.max(np.abs(fa.dlogn))


def test_mode_every_carries_labels_and_restarts_from_them():
    """``mode_every = K``: the modes are found at multiples of K and carried in between (a
    packet pair that separates keeps one mode until the next search), ``mode_every = 1`` finds
    them every step, and an estimator restored from the carried labels (a checkpoint) gives the
    same fields as the one that carried them, while a fresh one does not."""
    rng = np.random.default_rng(4)
    base = np.vstack([rng.normal(-1.0, 1.0, (400, 1)), rng.normal(1.0, 1.0, (400, 1))])
    shift = np.r_[np.full(400, -1.0), np.full(400, 1.0)][:, None]

    class Model:
        masses = [M]

    class S:
        pass

    def swarm(step):                      # the halves move apart: 1 mode at 0, 2 from ~3 on
        sw = S()
        sw.x, sw.rho, sw.ntraj, sw.step = base + 3.0 * step * shift, None, 800, step
        return sw

    def make(K):
        return ModalEstimator({"field_method": "modes", "mode_every": K}, Model(), None,
                              SerialComm(), ("density",))

    every, carry = make(1), make(4)
    modes1, modes4 = [], []
    for step in range(7):
        every.estimate(swarm(step))
        f4 = carry.estimate(swarm(step))
        modes1.append(every.n_modes)
        modes4.append(carry.n_modes)
        if step == 2:
            state = {k: v.copy() for k, v in carry.state_dict().items()}
        if step == 3:
            dlogn3 = f4.dlogn.copy()      # the workspace is reused by the next call
    assert modes1[0] == 1 and modes1[3:] == [2] * 4
    assert modes4 == [1, 1, 1, 1, 2, 2, 2]            # searched at 0 and 4 only
    assert make(1).state_dict() == {}                 # nothing carried with K = 1
    restored, fresh = make(4), make(4)
    restored.load_state_dict(state)
    assert np.array_equal(restored.estimate(swarm(3)).dlogn, dlogn3)
    assert restored.n_modes == 1
    assert fresh.estimate(swarm(3)) is not None and fresh.n_modes == 2


def test_mode_width_bound_widens_a_pile_up_mode():
    """Trajectories stalled at one point (a pile-up at a turning point) form a mode of tiny
    spread (its factor ~1e-3 of the reference without the bound); with ``mode_width_bound = 4``
    (the default) its
    kernels and spread are widened to 1/4 of the swarm's reference width (the count-weighted
    geometric mean of the mode widths), the factors span at most 16, and the widened
    trajectories are counted."""
    rng = np.random.default_rng(6)
    x = np.vstack([rng.normal(0.0, 2.0, (2000, 1)), 5.0 + 1e-4 * rng.normal(size=(200, 1))])

    class Model:
        masses = [M]

    class S:
        pass
    sw = S()
    sw.x, sw.rho, sw.ntraj, sw.step = x, None, x.shape[0], 0

    def run(opts):
        est = ModalEstimator({"field_method": "modes", **opts}, Model(), None, SerialComm(),
                             ("density",))
        return est.estimate(sw), est

    f0, e0 = run({"mode_width_bound": 0.0})
    lam0 = np.asarray(e0.last_factors)
    spike = e0.labels == e0.labels[2000]
    assert e0.n_modes == 2 and np.all(spike[2000:]) and not spike[0] and spike.sum() < 300
    assert lam0[spike].max() < 0.01 and e0.n_clipped == 0         # off
    f, est = run({"mode_width_bound": 4.0})
    fd, ed = run({})                                                # the default is 4
    assert np.array_equal(fd.dlogn, f.dlogn) and ed.n_clipped == est.n_clipped
    lam = np.asarray(est.last_factors)
    assert np.array_equal(est.labels, e0.labels) and est.n_clipped == spike.sum()
    assert np.allclose(lam[spike], 0.25, rtol=1e-12)
    assert lam.max() / lam.min() <= 16.0 * (1 + 1e-12)
    assert np.all(np.isfinite(f.dlogn))
    assert np.all(est.spreads[spike] > 100 * e0.spreads[spike])   # widened with the factor
    assert np.abs(f.dlogn[spike]).max() < 0.1 * np.abs(f0.dlogn[spike]).max()


def test_one_gaussian_packet_is_one_mode():
    rng = np.random.default_rng(5)
    for N in (200, 5000):
        labels, C = mode_labels(rng.normal(0.0, 1.0, (N, 1)))
        assert C == 1


def test_pair_centres_cancel_the_net_transfer():
    """CTMQC's pair-specific centres: the swarm-summed population change of the correction
    vanishes; the population reset zeroes decohered trajectories."""
    rng = np.random.default_rng(7)
    N = 50
    x = rng.normal(0.0, 1.0, (N, 1))
    alpha = 0.5 + rng.random((N, 1))
    th = rng.random(N) * np.pi
    psi = np.stack([np.cos(th / 2), np.sin(th / 2) * np.exp(1j * rng.random(N))], 1)
    rho = np.einsum("ia,ib->iab", psi, np.conj(psi))
    V = np.broadcast_to(np.eye(2, dtype=complex), rho.shape).copy()
    fmom = rng.normal(0.0, 3.0, (N, 1, 2))
    Df = pair_differences(fmom)
    u = -alpha * x / M
    unm, R0 = pair_centre_velocity(SerialComm(), x, alpha, u, np.abs(rho) ** 2, Df, [M])
    G, _ = correction_and_force(rho, V, Df, unm, np.zeros((N, 2)), np.ones((N, 1)), [M],
                                "gradient", 1e-3)
    r = _rate(G, rho)
    assert abs(r.sum()) < 1e-12 * np.abs(r).sum()
    G0, _ = correction_and_force(rho, V, Df, np.broadcast_to(u[:, :, None, None], Df.shape), 
                                 np.zeros((N, 2)), np.ones((N, 1)), [M], "gradient", 1e-3)
    assert abs(_rate(G0, rho).sum()) > 1e-3 * np.abs(_rate(G0, rho)).sum()
    pop = np.real(rho[:, 0, 0])
    f2 = fmom.copy()
    reset_forces(f2, rho, 0.01)
    done = (pop > 0.99) | (pop < 0.01)
    assert np.all(f2[done] == 0.0)
    assert np.all(f2[~done] == fmom[~done])


def test_pair_centre_far_from_a_trajectory_is_not_used():
    """Where the centre's denominator nearly cancels, R0 lies far outside the swarm; beyond
    qmom_distance widths a trajectory takes its own u ('osmotic') or none ('zero') for that pair,
    the others keep alpha (x - R0)/M, and qmom_distance = 0 is the unlimited centre."""
    rng = np.random.default_rng(3)
    N = 40
    x = rng.normal(0.0, 1.0, (N, 1))
    alpha = np.full((N, 1), 0.5)                                   # widths s = 1 bohr
    P = np.zeros((N, 2, 2))
    P[:, 0, 1] = P[:, 1, 0] = 0.2
    # Df of both signs whose alpha-weighted sum almost cancels: the centre runs away
    d = np.where(np.arange(N) % 2 == 0, 1.0, -1.0)
    d[0] += 0.02 - d.sum()                  # sum = 0.02 against sum |.| ~ N
    Df = np.zeros((N, 1, 2, 2))
    Df[:, 0, 0, 1], Df[:, 0, 1, 0] = d, -d
    u = -alpha * x / M
    free, R0 = pair_centre_velocity(SerialComm(), x, alpha, u, P, Df, [M])
    assert abs(R0[0, 0, 0, 1]) > 100.0
    own, _ = pair_centre_velocity(SerialComm(), x, alpha, u, P, Df, [M], distance=10.0)
    zero, _ = pair_centre_velocity(SerialComm(), x, alpha, u, P, Df, [M], distance=10.0,
                                   far="zero")
    np.testing.assert_array_equal(own[:, 0, 0, 1], u[:, 0])          # all beyond 10 widths
    assert np.all(zero[:, 0, 0, 1] == 0.0)
    # a centre inside the swarm is used as it is, limit or not
    Df[:, 0, 0, 1], Df[:, 0, 1, 0] = 1.0, -1.0
    a, R0 = pair_centre_velocity(SerialComm(), x, alpha, u, P, Df, [M])
    b, _ = pair_centre_velocity(SerialComm(), x, alpha, u, P, Df, [M], distance=10.0)
    assert abs(R0[0, 0, 0, 1]) < 1.0
    np.testing.assert_array_equal(a, b)


def test_energy_form_conserves_each_trajectory():
    """qc_force = 'energy': the power of the force cancels the electronic energy change; near
    turning points the correction is scaled by T / (T + floor), whichever way it moves the
    electronic energy."""
    rng = np.random.default_rng(9)
    N = 40
    th = rng.random(N) * np.pi
    psi = np.stack([np.cos(th / 2), np.sin(th / 2) * np.exp(2j * rng.random(N))], 1)
    rho = np.einsum("ia,ib->iab", psi, np.conj(psi))
    V = np.broadcast_to(np.eye(2, dtype=complex), rho.shape).copy()
    Df = pair_differences(rng.normal(0, 2.0, (N, 1, 2)))
    u = rng.normal(0, 1e-3, (N, 1))
    E = np.stack([np.zeros(N), 0.05 + rng.random(N) * 0.01], 1)
    # the electronic energy rate is 2 |rho_01|^2 (u Df_01) (E_0 - E_1): raised on the slow rows
    # 0, 2, 4, lowered on 1, 3
    u[:5, 0] = -np.abs(u[:5, 0]) * np.sign(Df[:5, 0, 0, 1]) * np.array([1, -1, 1, -1, 1])
    unm = np.broadcast_to(u[:, :, None, None], Df.shape)
    v = rng.normal(0, 0.01, (N, 1)) + 0.01
    v[:5] = 1e-5                                   # near turning points: scaled, still exact
    def power(G):
        return np.real(np.einsum("iab,iba->i", -1j * (np.einsum("iab,ibc->iac", G, rho)
                                                      - np.einsum("iab,ibc->iac", rho, G)),
                                 np.einsum("in,nm->inm", E, np.eye(2))))
    G, F = correction_and_force(rho, V, Df, unm, E, v, [M], "energy", 1e-4)
    p_el = power(G)
    assert np.max(np.abs(p_el + np.sum(F * v, 1))) < 1e-12 * np.max(np.abs(p_el))
    # against the unscaled correction (floor -> 0): the factor T / (T + floor) per trajectory
    G1, _ = correction_and_force(rho, V, Df, unm, E, v, [M], "energy", 1e-300)
    p1 = power(G1)
    T = 0.5 * M * v[:, 0] ** 2
    want = T / (T + 1e-4)
    np.testing.assert_array_equal(p1[:5] > 0, [True, False, True, False, True])
    np.testing.assert_allclose(p_el, want * p1, rtol=1e-10, atol=0)
    # the step limit (qc_step_fraction f): a step may raise the electronic energy by at most
    # f T; 'uphill' leaves the steps that hand energy to the nuclei alone, 'both' limits them too
    dt, f = 0.5, 0.3
    lim = {}
    for uphill in (True, False):
        G2, F2 = correction_and_force(rho, V, Df, unm, E, v, [M], "energy", 1e-300, dt=dt,
                                      fraction=f, uphill_only=uphill)
        lim[uphill] = power(G2)
        assert np.max(np.abs(lim[uphill] + np.sum(F2 * v, 1))) < 1e-12 * np.max(np.abs(p1))
    cut = np.abs(p1) * dt > f * T
    assert cut[:5].all() and not cut[5:].all()       # the slow rows are limited, not all rows
    for uphill, p2 in lim.items():
        hit = cut & ((p1 > 0) | (not uphill))
        np.testing.assert_allclose(np.abs(p2[hit]) * dt, f * T[hit], rtol=1e-10)
        np.testing.assert_allclose(p2[~hit], p1[~hit], rtol=1e-10, atol=0)
    assert np.any(cut & (p1 < 0)) and not np.allclose(lim[True], lim[False])


def test_energy_shell_momenta_have_the_surface_kinetic_energy():
    """f_n = p sqrt(1 + (E_el - E_n)/T): kinetic energy T + E_el - E_n on open surfaces, along p;
    0 on closed ones."""
    from mqcd.methods.ctmqc import energy_shell_momenta
    rng = np.random.default_rng(11)
    N, masses = 30, np.array([2000.0, 500.0])
    p = rng.normal(0.0, 10.0, (N, 2))
    E = np.stack([np.zeros(N), rng.normal(0.0, 0.05, N)], 1)
    th = rng.random(N) * np.pi
    pop = np.stack([np.cos(th / 2) ** 2, np.sin(th / 2) ** 2], 1)
    rho_a = np.einsum("in,nm->inm", pop, np.eye(2)).astype(complex)
    f = energy_shell_momenta(p, masses, E, rho_a)
    T = 0.5 * np.sum(p ** 2 / masses, 1)
    E_el = np.sum(pop * E, 1)
    Tn = 0.5 * np.sum(f ** 2 / masses[None, :, None], 1)
    want = np.maximum(T[:, None] + E_el[:, None] - E, 0.0)
    assert np.allclose(Tn, want, rtol=1e-12, atol=1e-15)
    cross = f[:, 0, :] * p[:, 1, None] - f[:, 1, :] * p[:, 0, None]
    assert np.max(np.abs(cross)) < 1e-10 * np.max(np.abs(p)) ** 2


def test_route_b_parts_are_refused_on_the_regression_route():
    from conftest import make_deck
    from mqcd.io.deck import deck_model, read_deck
    from mqcd.io.schema import DeckError
    from mqcd.methods import build_method
    deck = read_deck(make_deck(method="ehrenfest-qc", rho_derivatives="regression",
                               quantum_momentum="pair-centre"))
    with pytest.raises(DeckError, match="quantum_momentum"):
        build_method(deck, deck_model(deck))
    deck = read_deck(make_deck(method="ehrenfest-qc"))
    meth = build_method(deck, deck_model(deck))
    assert (meth.qmom, meth.reset, meth.qc_force, meth.field_method) == (
        "pair-centre", "population", "energy", "modes")
    deck = read_deck(make_deck(method="fssh-coupled", rho_derivatives="trajectory"))
    meth = build_method(deck, deck_model(deck))
    assert (meth.qmom, meth.reset, meth.qc_force) == ("osmotic", "never", "gradient")


def test_default_ehrenfest_qc_correction_is_gauge_invariant(monkeypatch):
    """The default ehrenfest-qc (modes, pair centres, energy force and rescaling) with
    random eigenvector phases at every step gives the same trajectories, correction and force to
    round-off over 400 a.u. (longer runs amplify round-off through the discrete reset and mode
    decisions: tests/test_ladder.py runs the gauge test of whole scatterings on the old parts)."""
    from conftest import make_deck
    from mqcd.api import build_swarm
    from mqcd.electronic import adiabatic as adi
    from mqcd.ensemble import swarm as swarm_mod
    from mqcd.io.deck import deck_model, read_deck
    from mqcd.methods import build_method
    # (reset off: it depends on the populations only, and right after the start it zeroes f)
    deck = read_deck(make_deck(method="ehrenfest-qc", model="tully3", ntraj=120, x0=-1.0,
                               force_reset="never"))
    model = deck_model(deck)

    def advanced():
        meth = build_method(deck, model)
        sw = build_swarm(deck, model, meth, SerialComm())
        for _ in range(800):
            meth.step(sw, 0.5)
        return meth, sw
    m0, s0 = advanced()
    rng = np.random.default_rng(4)
    orig = adi.eigh
    monkeypatch.setattr(swarm_mod, "diagonalize", lambda H, E=None, V=None: (
        orig(H)[0], adi.randomize_phases(orig(H)[1].astype(complex), rng)))
    m1, s1 = advanced()
    assert np.max(np.abs(s1.x - s0.x)) < 1e-8
    scale = np.max(np.abs(m0.G_now))
    assert scale > 0
    assert np.max(np.abs(m1.G_now - m0.G_now)) < 1e-8 * scale
    assert np.max(np.abs(m1.F_corr - m0.F_corr)) < 1e-8 * np.max(np.abs(m0.F_corr))
