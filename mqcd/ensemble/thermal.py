r"""Thermal initial conditions: harmonic Wigner, classical Boltzmann (MCMC) and the multi-surface
canonical (Gibbs) ensemble. Atomic units; temperatures as ``kT`` in hartree.

``wigner-thermal`` (:func:`wigner_thermal`): each harmonic mode ``k`` of the model's reference
(``model.harmonic_reference()``: geometry ``x0`` and frequencies ``omega``, masses ``M``) is drawn
from the Wigner function of the thermal harmonic oscillator, a Gaussian with

.. math:: \langle (x - x_0)^2\rangle = \frac{\coth(\omega/2kT)}{2M\omega}, \qquad
          \langle p^2\rangle = \frac{M\omega}{2}\coth(\omega/2kT)

(E. Wigner, Phys. Rev. 40, 749 (1932); M. Hillery et al., Phys. Rep. 106, 121 (1984), eq. (2.23)),
exact for harmonic modes at any temperature, the ground-state Wigner function at ``kT = 0`` and the
classical Boltzmann distribution for ``kT >> omega``. Draws from each trajectory's own stream.

``boltzmann`` (:func:`boltzmann`): the classical canonical density ``exp(-V(x)/kT)`` of one
surface (``V`` an adiabatic energy ``E_s`` or a diabatic ``H_ss``), Maxwell-Boltzmann momenta
``p ~ N(p0, M kT)``. Positions by the Metropolis-adjusted Langevin algorithm (MALA; G. O. Roberts
and R. L. Tweedie, Bernoulli 2, 341 (1996)) with a diagonal preconditioner: ``chains`` chains are
started around the surface minimum (found by scipy.optimize's L-BFGS-B from the reference geometry
or ``position``) with the harmonic widths ``sqrt(kT / V''_kk)``; during the first half of the
burn-in the step size is adapted towards the acceptance 0.574 (the MALA optimum, Roberts and
Rosenthal, J. R. Stat. Soc. B 60, 255 (1998)) and the preconditioner is re-estimated from the
chains; then both are frozen (the second half of the burn-in and the sampling phase are an exact
MALA chain). After ``burn_in`` steps every ``thinning``-th state is kept; trajectory ``i`` takes
the ``(i // chains)``-th kept sample of chain ``i % chains``, so its initial condition does not
depend on the number of trajectories or MPI ranks. Diagnostics (:func:`chain_diagnostics`, on the
chains from the end of the adaptation on, at most 20000 steps): the
integrated autocorrelation time of the potential energy and of up to eight coordinates (FFT
autocorrelation, A. D. Sokal's automatic window, c = 5), the effective sample size of the kept
samples and the split R-hat of A. Gelman et al. (Bayesian Data Analysis, 3rd ed., Sec. 11.4).

``gibbs`` (:func:`gibbs`): the canonical ensemble over several surfaces of Plechac, Sandberg and
Szepessy (Sec. 6, eq. (6.1), and the weights of eqs. (5.18), (5.21)): surface ``j`` with
probability ``q_j = Z_j / sum_k Z_k``, ``Z_j = int exp(-V_j(x)/kT) dx`` (the momentum integral is
common to all surfaces and cancels), positions from surface j's canonical density (MALA as above)
and Maxwell-Boltzmann momenta. The ratios ``Z_j / Z_0`` come from pilot MALA chains of every
surface (``gibbs_samples`` kept samples per surface; the trajectories' positions come from
separate chains) by the multistate Bennett acceptance ratio (MBAR, for two surfaces BAR;
mqcd/ensemble/freeenergy.py): every surface's energy at every pilot sample, so only energy
differences at the same configuration enter. The standard error of ``q_j`` is a bootstrap over
the pilot chains. (An importance-sampling estimate of each ``Z_j`` from Gaussians fitted to the
chains, used before, fails by tens of orders of magnitude for many-particle models: in 16-32
dimensions with a translational zero mode the proposal's overlap with ``exp(-V_j/kT)``
vanishes; the energy differences that BAR needs are translation invariant and overlap.)
Trajectories are allotted
to the surfaces in contiguous blocks of the global index, ``N_j`` of them (``allocation =
"proportional"``: ``N_j ~ N q_j`` by largest remainders, at least one per surface with
``q_j >= 1e-12``; ``"equal"``: ``N/J`` each), and every trajectory of surface j carries the weight
``w = q_j N / N_j`` (mean weight 1): every ensemble average is then the PSS average
``sum_j q_j <A>_j``. The surfaces are the model's adiabatic energies (PSS use the eigenvalues
``lambda_j``, here without their O(1/M) nonlinear-eigenvalue correction) or, with ``basis =
"diabatic"``, the diabatic energies.

The chains draw from their own generator (numpy PCG64 seeded by ``SeedSequence(seed,
spawn_key=(2**32 + 7, surface))``), and every rank runs all of them: results do not depend on the
number of MPI ranks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
from scipy import constants

from ..electronic.adiabatic import adiabatic_gradients, eigh
from .streams import STREAM_INITIAL, normals

#: hartree per kelvin (k_B / E_h)
KELVIN = constants.k / constants.physical_constants["Hartree energy"][0]
#: MALA acceptance rate targeted while adapting the step during the first half of the burn-in
TARGET_ACCEPTANCE = 0.574
#: Sokal's window constant for the integrated autocorrelation time
SOKAL_C = 5.0
#: MALA steps of the sampling phase kept for the diagnostics (autocorrelation, R-hat)
MAX_TRACE = 20000
#: kept samples per surface of the pilot chains of the free-energy (MBAR) estimate of q_j
#: (default of ``[initial] gibbs_samples``)
PILOT_SAMPLES = 4096
#: bootstrap replicas (over the pilot chains) of the standard error of q_j
BOOTSTRAP = 200
_CHAIN_TAG = 2 ** 32 + 7


def kT_of(initial):
    """``kT`` in hartree from ``[initial] temperature`` (kelvin) or ``kT`` (hartree)."""
    if initial.get("kT") is not None:
        return float(initial["kT"])
    if initial.get("temperature") is not None:
        return float(initial["temperature"]) * KELVIN
    raise ValueError("[initial] needs temperature (kelvin) or kT (hartree)")


# ----------------------------------------------------------------------------- wigner-thermal
def harmonic_widths(M, omega, kT):
    """Standard deviations ``(sigma_x, sigma_p)`` of the thermal harmonic Wigner function."""
    M = np.asarray(M, dtype=np.float64)
    w = np.asarray(omega, dtype=np.float64)
    coth = 1.0 if kT <= 0 else 1.0 / np.tanh(w / (2.0 * kT))
    return np.sqrt(coth / (2.0 * M * w)), np.sqrt(0.5 * M * w * coth)


def wigner_thermal(model, initial, keys, kT):
    """Positions and momenta (n, D) from the thermal Wigner function of the model's harmonic
    reference (centred at ``[initial] position`` if given, with mean momentum ``momentum``)."""
    x0, w = reference(model, initial, "wigner-thermal")
    p0 = np.asarray(initial.get("momentum") or np.zeros(model.ndof), dtype=np.float64)
    sx, sp = harmonic_widths(model.masses, w, kT)
    n, D = keys.shape[0], model.ndof
    g = normals(keys, STREAM_INITIAL, 2 * D, np.empty((n, 2 * D)))
    return x0 + sx * g[:, :D], p0 + sp * g[:, D:]


def reference(model, initial, kind):
    """``(x0, omega)``: the model's harmonic reference, centre replaced by ``position`` if given."""
    ref = getattr(model, "harmonic_reference", None)
    if ref is None:
        raise ValueError(f"[initial] sampling = '{kind}': model '{model.name}' states no harmonic "
                         "reference (frequencies and geometry); use sampling = 'boltzmann' (a "
                         "classical canonical ensemble on one surface) or give the model a "
                         "harmonic_reference() method (docs/models.md)")
    x0, w = ref()
    x0 = np.asarray(x0, dtype=np.float64).copy()
    if initial.get("position"):
        x0 = np.asarray(initial["position"], dtype=np.float64)
    return x0, np.asarray(w, dtype=np.float64)


# ----------------------------------------------------------------------------- surfaces
class Surface:
    """Potential ``V(x)`` (hartree) and gradient of one adiabatic (``basis = "adiabatic"``) or
    diabatic surface ``state`` of ``model``, for batches of positions (n, D)."""

    def __init__(self, model, state, basis):
        self.model, self.state, self.basis = model, int(state), basis

    def __call__(self, x):
        x = np.ascontiguousarray(np.atleast_2d(x), dtype=np.float64)
        H, dH = self.model.allocate(x.shape[0])
        self.model.evaluate_into(x, H, dH)
        s = self.state
        if self.basis == "diabatic":
            return H[:, s, s].real.copy(), np.ascontiguousarray(dH[:, :, s, s].real)
        E, V = eigh(H)
        g = adiabatic_gradients(np.ascontiguousarray(dH), np.ascontiguousarray(V))
        return E[:, s].copy(), np.ascontiguousarray(g[:, :, s])


def minimum(surface, x0):
    """Local minimum of the surface from ``x0`` (L-BFGS-B with the analytic gradient)."""
    res = scipy.optimize.minimize(lambda x: tuple(a[0] for a in surface(x[None, :])),
                                  np.asarray(x0, dtype=np.float64), jac=True, method="L-BFGS-B",
                                  options={"maxiter": 2000, "gtol": 1e-10})
    return res.x


def hessian_diagonal(surface, x, h=1e-4):
    """Diagonal of the Hessian at ``x`` by central differences of the analytic gradient."""
    D = x.size
    pts = np.repeat(x[None, :], 2 * D, axis=0)
    pts[np.arange(D), np.arange(D)] += h
    pts[D + np.arange(D), np.arange(D)] -= h
    _, g = surface(pts)
    return (g[np.arange(D), np.arange(D)] - g[D + np.arange(D), np.arange(D)]) / (2.0 * h)


# ----------------------------------------------------------------------------- MALA
@dataclass
class ChainResult:
    """Kept samples ``x`` (chains, S, D), the traces used by the diagnostics, the settings."""
    x: np.ndarray
    traces: np.ndarray          # (chains, steps, m): V and up to 8 coordinates, frozen kernel
    acceptance: float
    step: float
    sigma: np.ndarray
    burn_in: int
    thinning: int
    info: dict = field(default_factory=dict)


def diagnostic_coordinates(model):
    """What the chain diagnostics trace besides V: the raw coordinates, or for a model whose
    surfaces do not change under a common shift of all particles (``model.translation_dim`` =
    d, coordinates in blocks of d per particle: the periodic pair models) the coordinates
    relative to the particles' mean, since the free centre of mass random-walks and would make
    R-hat flag chains that sample every observable well. Returns None or a callable
    (C, D) -> (C, D)."""
    d = int(getattr(model, "translation_dim", 0) or 0)
    if d <= 0 or model.ndof % d or model.ndof // d < 2:
        return None

    def relative(x):
        y = x.reshape(x.shape[0], -1, d)
        return (y - y.mean(axis=1, keepdims=True)).reshape(x.shape)
    return relative


def mala(surface, kT, x_start, sigma, nsamples, burn_in, thinning, rng, step=0.0, trace=None):
    """Run ``len(x_start)`` MALA chains on ``exp(-V/kT)``; return :class:`ChainResult` with
    ``nsamples`` kept samples per chain (after ``burn_in`` steps, every ``thinning``-th)."""
    x = np.array(x_start, dtype=np.float64)
    C, D = x.shape
    sig2 = np.asarray(sigma, dtype=np.float64) ** 2
    h = float(step) if step > 0 else 1.0 / D ** (1.0 / 3.0)
    adapt = step <= 0
    V, g = surface(x)
    grad = -g / kT                               # grad log pi
    nsteps = burn_in + nsamples * thinning
    kept = np.empty((C, nsamples, D))
    ntr = min(D, 8)
    t0 = burn_in // 2                            # the kernel is frozen from here on
    ntrace = min(nsteps - t0, MAX_TRACE)
    traces = np.empty((C, ntrace, 1 + ntr))
    acc_window = []
    accepted = 0
    counted = 0
    history = []
    for it in range(nsteps):
        noise = rng.standard_normal((C, D))
        mean_f = x + 0.5 * h * sig2 * grad
        y = mean_f + math.sqrt(h) * np.sqrt(sig2) * noise
        Vy, gy = surface(y)
        grad_y = -gy / kT
        mean_b = y + 0.5 * h * sig2 * grad_y
        log_q_f = -np.sum((y - mean_f) ** 2 / sig2, axis=1) / (2.0 * h)
        log_q_b = -np.sum((x - mean_b) ** 2 / sig2, axis=1) / (2.0 * h)
        log_a = -(Vy - V) / kT + log_q_b - log_q_f
        take = np.log(rng.random(C)) < log_a
        take &= np.isfinite(Vy)
        x[take], V[take], grad[take] = y[take], Vy[take], grad_y[take]
        if adapt and it < burn_in // 2:
            acc_window.append(take.mean())
            history.append(x.copy())
            if (it + 1) % 50 == 0:
                rate = float(np.mean(acc_window))
                h *= math.exp(1.5 * (rate - TARGET_ACCEPTANCE))
                acc_window = []
                if (it + 1) % 200 == 0 and len(history) >= 100:
                    var = np.var(np.asarray(history[-len(history) // 2:]).reshape(-1, D), axis=0)
                    if np.all(var > 0) and np.all(np.isfinite(var)):
                        sig2 = var                      # the metric only: log pi is unchanged
                    history = []
        if t0 <= it < t0 + ntrace:
            traces[:, it - t0, 0] = V
            traces[:, it - t0, 1:] = (x if trace is None else trace(x))[:, :ntr]
        if it >= burn_in:
            j = it - burn_in
            accepted += int(take.sum())
            counted += C
            if (j + 1) % thinning == 0:
                kept[:, (j + 1) // thinning - 1] = x
    return ChainResult(x=kept, traces=traces, acceptance=accepted / max(counted, 1), step=h,
                       sigma=np.sqrt(sig2), burn_in=burn_in, thinning=thinning)


def _autocorr(y):
    """Normalised autocorrelation of the rows of ``y`` (chains, n), averaged over chains."""
    n = y.shape[1]
    z = y - y.mean(axis=1, keepdims=True)
    f = np.fft.rfft(z, n=2 * n, axis=1)
    acf = np.fft.irfft(f * np.conj(f), axis=1)[:, :n].mean(axis=0)
    return acf / acf[0] if acf[0] > 0 else np.zeros(n)


def chain_diagnostics(res: ChainResult):
    """Autocorrelation time (in MALA steps) of each traced observable, the effective sample
    size of the kept samples (minimum over observables), their number and the split R-hat."""
    C, n, m = res.traces.shape
    T = res.thinning
    taus, ess, rhat = [], [], []
    for k in range(m):
        y = res.traces[:, :, k]
        if np.ptp(y) == 0:
            continue
        rho = _autocorr(y)
        # tau of the full chain (Sokal window) and of the thinned sequence (lags m*T)
        tau = 1.0
        for lag in range(1, n):
            tau += 2.0 * rho[lag]
            if lag >= SOKAL_C * tau:
                break
        tau_thin = 1.0
        for mlag in range(1, n // T):
            tau_thin += 2.0 * rho[mlag * T]
            if mlag >= SOKAL_C * tau_thin:
                break
        taus.append(max(tau, 1.0))
        ess.append(C * res.x.shape[1] / max(tau_thin, 1.0))
        half = n // 2
        if half >= 2:
            parts = np.concatenate([y[:, :half], y[:, half:2 * half]], axis=0)
            W = parts.var(axis=1, ddof=1).mean()
            B = half * parts.mean(axis=1).var(ddof=1)
            rhat.append(math.sqrt(((half - 1) / half * W + B / half) / W) if W > 0 else 1.0)
    nkept = int(C * res.x.shape[1])
    return {"tau_steps": float(max(taus)) if taus else 1.0,
            "ess": float(min(ess)) if ess else float(nkept), "samples": nkept,
            "rhat": float(max(rhat)) if rhat else 1.0, "acceptance": float(res.acceptance),
            "step": float(res.step), "burn_in": int(res.burn_in), "thinning": int(T),
            "chains": int(C)}


def _chain_rng(seed, surface):
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        int(seed), spawn_key=(_CHAIN_TAG, int(surface)))))


def sample_surface(surface, kT, x_ref, nsamples, mcmc, seed, key, trace=None):
    """MALA samples (chains, S, D) of one surface: minimum, preconditioner, chains, diagnostics
    (``trace``: :func:`diagnostic_coordinates`)."""
    xmin = minimum(surface, x_ref)
    hd = hessian_diagonal(surface, xmin)
    sigma = np.where(hd > 0, np.sqrt(kT / np.where(hd > 0, hd, 1.0)), 1.0)
    rng = _chain_rng(seed, key)
    C = int(mcmc["chains"])
    start = xmin + sigma * rng.standard_normal((C, xmin.size))
    res = mala(surface, kT, start, sigma, max(1, -(-nsamples // C)), int(mcmc["burn_in"]),
               int(mcmc["thinning"]), rng, float(mcmc.get("step", 0.0)), trace=trace)
    res.info = chain_diagnostics(res)
    res.info["minimum"] = xmin
    return res


def take_samples(res, k):
    """Sample number ``k`` (array) of a chain set: chain ``k % chains``, draw ``k // chains``."""
    C = res.x.shape[0]
    k = np.asarray(k, dtype=np.int64)
    return res.x[k % C, k // C]


def maxwell_momenta(model, keys, kT, p0):
    """Momenta ``N(p0, M kT)`` from each trajectory's stream (second half of its normals)."""
    n, D = keys.shape[0], model.ndof
    g = normals(keys, STREAM_INITIAL, 2 * D, np.empty((n, 2 * D)))[:, D:]
    return p0 + np.sqrt(model.masses * kT) * g


# ----------------------------------------------------------------------------- boltzmann
def boltzmann(model, initial, keys, indices, kT, seed, ntotal):
    """Positions, momenta and the diagnostics of ``sampling = "boltzmann"`` on surface
    ``state`` (in ``basis``) for the trajectories ``indices``."""
    if kT <= 0:
        raise ValueError("[initial] sampling = 'boltzmann' needs a temperature > 0 (a classical "
                         "canonical density); for kT = 0 use 'wigner-thermal' or 'fixed'")
    surface = Surface(model, initial["state"], initial["basis"])
    x_ref = _start(model, initial)
    res = sample_surface(surface, kT, x_ref, int(ntotal), _mcmc(initial), seed, 0,
                         trace=diagnostic_coordinates(model))
    x = take_samples(res, indices)
    p0 = np.asarray(initial.get("momentum") or np.zeros(model.ndof), dtype=np.float64)
    p = maxwell_momenta(model, keys, kT, p0)
    return x, p, {"boltzmann": res.info}


def _start(model, initial):
    if initial.get("position"):
        return np.asarray(initial["position"], dtype=np.float64)
    ref = getattr(model, "harmonic_reference", None)
    if ref is not None:
        return np.asarray(ref()[0], dtype=np.float64)
    raise ValueError(f"[initial] sampling = '{initial['sampling']}': give position (a point "
                     f"near the bottom of the surface; model '{model.name}' states no reference "
                     "geometry)")


def _mcmc(initial):
    return {"chains": initial.get("mcmc_chains", 64), "burn_in": initial.get("mcmc_burn_in", 2000),
            "thinning": initial.get("mcmc_thinning", 20), "step": initial.get("mcmc_step", 0.0)}


# ----------------------------------------------------------------------------- gibbs
@dataclass
class GibbsEnsemble:
    """The multi-surface canonical ensemble: surfaces, ``q`` and its standard error, ``Z``
    (relative to the first surface's) and its standard error, the trajectory counts per
    surface and their weights."""
    states: list
    q: np.ndarray
    q_se: np.ndarray
    Z: np.ndarray
    Z_se: np.ndarray
    counts: np.ndarray
    weights: np.ndarray
    chains: list
    diagnostics: list


def surface_probabilities(surfaces, kT, chains, nboot, rng):
    """``(q, q_se, f)``: the probabilities ``q_j = Z_j / sum_k Z_k`` of the surfaces, their
    standard errors and the free energies ``f_j = -ln(Z_j/Z_0)``, by MBAR (two surfaces: BAR;
    mqcd/ensemble/freeenergy.py) from the MALA samples ``chains`` of every surface: every
    surface's energy is evaluated at every sample, and the standard error is a bootstrap over
    the (independent) chains."""
    from .freeenergy import bootstrap_q, mbar_free_energies
    blocks = []
    for res in chains:
        C, S, D = res.x.shape
        flat = res.x.reshape(-1, D)
        V = np.stack([s(flat)[0] for s in surfaces], axis=-1) / kT
        blocks.append(V.reshape(C, S, len(surfaces)))
    q, q_se = bootstrap_q(blocks, nboot, rng)
    u = np.concatenate([b.reshape(-1, b.shape[-1]) for b in blocks], axis=0).T
    f = mbar_free_energies(u, [b.shape[0] * b.shape[1] for b in blocks])
    return q, q_se, f


def allocate(q, ntotal, mode):
    """Trajectories per surface: proportional to ``q`` (largest remainders, at least one for
    every ``q_j >= 1e-12``) or equal."""
    J = q.size
    if mode == "equal":
        base = np.full(J, ntotal // J)
        base[:ntotal % J] += 1
        return base
    need = (q >= 1e-12).astype(np.int64)
    if need.sum() > ntotal:
        raise ValueError(f"[run] trajectories = {ntotal} is fewer than the {need.sum()} surfaces "
                         "of the gibbs ensemble")
    raw = q * ntotal
    n = np.maximum(np.floor(raw).astype(np.int64), need)
    rest = ntotal - n.sum()
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")
    i = 0
    while rest != 0:
        j = order[i % J]
        if rest > 0:
            n[j] += 1
            rest -= 1
        elif n[j] > need[j]:
            n[j] -= 1
            rest += 1
        i += 1
    return n


def gibbs_ensemble(model, initial, kT, seed, ntotal):
    """Build the :class:`GibbsEnsemble` (every rank computes the same, from the deck seed)."""
    if kT <= 0:
        raise ValueError("[initial] sampling = 'gibbs' needs a temperature > 0")
    states = list(initial.get("gibbs_states") or range(model.nstates))
    bad = [s for s in states if not 0 <= s < model.nstates]
    if bad or len(set(states)) != len(states):
        raise ValueError(f"[initial] gibbs_states = {states}: distinct states in "
                         f"0..{model.nstates - 1}")
    surfaces = [Surface(model, s, initial["basis"]) for s in states]
    x_ref = _start(model, initial)
    mcmc = _mcmc(initial)
    trace = diagnostic_coordinates(model)
    # pilot chains per surface for the free energies (MBAR) of q_j, then chains as long as
    # each surface's block of trajectories needs (both from the deck seed)
    if len(surfaces) > 1:
        pilot = [sample_surface(s, kT, x_ref, int(initial.get("gibbs_samples", PILOT_SAMPLES)),
                                mcmc, seed, 100 + k, trace=trace) for k, s in enumerate(surfaces)]
        q, q_se, f = surface_probabilities(surfaces, kT, pilot, BOOTSTRAP,
                                           _chain_rng(seed, 1000))
    else:
        q, q_se, f = np.ones(1), np.zeros(1), np.zeros(1)
    Z, Z_se = np.exp(-f), np.exp(-f) * q_se / np.maximum(q, 1e-300)
    counts = allocate(q, int(ntotal), initial.get("gibbs_allocation", "proportional"))
    weights = np.where(counts > 0, q * ntotal / np.maximum(counts, 1), 0.0)
    chains = [sample_surface(s, kT, x_ref, max(int(c), 1), mcmc, seed, k + 1, trace=trace)
              for k, (s, c) in enumerate(zip(surfaces, counts))]
    return GibbsEnsemble(states=states, q=q, q_se=q_se, Z=Z, Z_se=Z_se, counts=counts,
                         weights=weights, chains=chains, diagnostics=[c.info for c in chains])


def gibbs(model, initial, keys, indices, kT, seed, ntotal):
    """Positions, momenta, surface index (into ``gibbs_states``), weights and the ensemble for
    the trajectories ``indices``."""
    ens = gibbs_ensemble(model, initial, kT, seed, ntotal)
    idx = np.asarray(indices, dtype=np.int64)
    edges = np.concatenate([[0], np.cumsum(ens.counts)])
    which = np.searchsorted(edges, idx, side="right") - 1
    x = np.empty((idx.size, model.ndof))
    for j in range(len(ens.states)):
        sel = which == j
        if sel.any():
            x[sel] = take_samples(ens.chains[j], idx[sel] - edges[j])
    p0 = np.asarray(initial.get("momentum") or np.zeros(model.ndof), dtype=np.float64)
    p = maxwell_momenta(model, keys, kT, p0)
    state = np.asarray(ens.states, dtype=np.int64)[which]
    return x, p, state, ens.weights[which], ens
