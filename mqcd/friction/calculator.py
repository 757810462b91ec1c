r"""The friction calculator: at a nuclear position, the equilibrium (or steady-state) force F0,
the electronic free energy, the friction tensor eta and its antisymmetric part B
(``mqcd friction DECK --x X``, ``mqcd.friction(...)``; docs/friction.md).

Two evaluations:

* ``"band"``: the spectrum of the model's own electronic Hamiltonian (the discretised band of
  ``newns_anderson``, or any many-state model), MB (118)-(121) with the broadened delta function
  of :mod:`mqcd.friction.tensor`; F0 = ``-Tr(rho dH) - dU0`` and ``Phi_el`` from
  :mod:`mqcd.friction.equilibrium`;
* ``"wide-band"``: the molecular block in the wide-band limit with its leads
  (:mod:`mqcd.friction.junction`): the continuum without discretisation, and the only one that
  has a current-carrying steady state (``bias != 0``: ``mu_L = mu + bias/2``,
  ``mu_R = mu - bias/2``). No free energy out of equilibrium.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .equilibrium import free_energy, occupations
from .tensor import BROADENING_FACTOR, converged_friction

#: kelvin -> hartree
KELVIN = 3.166811563455546e-06
SOURCES = ("auto", "band", "wide-band")


@dataclasses.dataclass
class FrictionResult:
    """What the calculator reports at one position (atomic units: hartree, bohr,
    atomic_unit_of_time). ``eta_change``: largest ``|eta(2 factor) - eta|`` relative to
    ``max |eta|``: the broadening error of "band" (Richardson step, mqcd/friction/tensor.py; 0
    for "wide-band")."""
    x: np.ndarray
    F0: np.ndarray
    eta: np.ndarray
    B: np.ndarray
    free_energy: float | None
    kT: float
    mu: float
    bias: float
    source: str
    sigma: float
    eta_change: float
    electrons: float

    def to_json(self):
        """``{"x", "F0", "eta", "B", ...}`` as plain lists (atomic units)."""
        d = {"x": self.x.tolist(), "F0": self.F0.tolist(), "eta": self.eta.tolist(),
             "B": self.B.tolist(), "free_energy": self.free_energy, "kT": self.kT,
             "mu": self.mu, "bias": self.bias, "source": self.source, "sigma": self.sigma,
             "eta_change": self.eta_change, "electrons": self.electrons}
        return d

    UNITS = {"x": "bohr", "F0": "hartree/bohr", "eta": "hartree*atomic_unit_of_time/bohr**2",
             "B": "hartree*atomic_unit_of_time/bohr**2", "free_energy": "hartree",
             "kT": "hartree", "mu": "hartree", "bias": "hartree", "sigma": "hartree",
             "eta_change": "1", "electrons": "1"}


def electron_settings(initial):
    """``(kind, kT, mu, n_el, bias)`` of an ``[initial]`` section: ``kind`` is "fermi" or
    "thermal" (``electrons = "pure"`` is treated as the canonical state of the temperature,
    which must then be given), ``kT`` in hartree."""
    T, kT = initial.get("temperature"), initial.get("kT")
    kT = kT if kT is not None else (T * KELVIN if T is not None else None)
    return (initial.get("electrons", "pure"), kT, initial.get("chemical_potential", 0.0),
            initial.get("electron_number"), initial.get("bias", 0.0))


def _nuclear(model, x):
    nuc = getattr(model, "nuclear_potential", None)
    if nuc is None:
        return 0.0, np.zeros(x.size)
    U, dU = nuc(x[None, :])
    return float(U[0]), dU[0]


def band_friction(model, x, kT, mu=0.0, n_el=None, factor=BROADENING_FACTOR):
    """:class:`FrictionResult` from the spectrum of the model's Hamiltonian at ``x`` (D,)."""
    x = np.asarray(x, dtype=np.float64)
    H, dH = model.evaluate(x[None, :])
    E, V = np.linalg.eigh(H[0])
    D = V.conj().T[None] @ dH[0] @ V[None]              # <a|d_k H|b>
    kind = "fermi" if getattr(model, "one_body", False) else "thermal"
    occ, mus = occupations(E[None], kind, kT, mu, n_el if kind == "fermi" else None)
    occ, m = occ[0], float(mus[0])
    center = m if kind == "fermi" else E[0]
    eta, B, sigma, change = converged_friction(E, D, occ, kind, kT, center, factor)
    U, dU = _nuclear(model, x)
    F0 = -np.einsum("a,kaa->k", occ, D).real - dU
    Phi = float(free_energy(E[None], kind, kT, m if n_el is None else 0.0,
                            n_el if kind == "fermi" else None)[0]) + U
    return FrictionResult(x, F0, eta, B, Phi, kT, m, 0.0, "band", sigma, change,
                          float(occ.sum()))


def wide_band_friction(model, x, kT, mu=0.0, bias=0.0):
    """:class:`FrictionResult` of the wide-band limit of the model (``molecule`` and
    ``lead_widths``, e.g. ``newns_anderson``) at ``x`` (D,): leads at ``mu +- bias/2``."""
    from .junction import steady_state
    if getattr(model, "molecule", None) is None:
        raise ValueError(f"friction source 'wide-band': model '{model.name}' has no wide-band "
                         "form (molecule() and lead_widths(), e.g. newns_anderson)")
    x = np.asarray(x, dtype=np.float64)
    hM, dhM = model.molecule(x[None, :])
    Gl = model.lead_widths()
    if Gl.shape[0] == 1:
        if bias != 0.0:
            raise ValueError("[initial] bias needs two leads ([model] leads = 2)")
        mus = [mu]
    else:
        mus = [mu + 0.5 * bias, mu - 0.5 * bias]
    rho, F0, eta, B = steady_state(hM[0], dhM[0], Gl, mus, kT)
    U, dU = _nuclear(model, x)
    return FrictionResult(x, F0 - dU, eta, B, None, kT, mu, bias, "wide-band", 0.0, 0.0,
                          float(np.trace(rho).real))


def junction_force(model, x, kT, mu=0.0, bias=0.0):
    """F0 (D,) hartree/bohr of the wide-band steady state at ``x`` (leads at ``mu +- bias/2``),
    without the friction integral: what a loop-work integral needs."""
    from .junction import steady_state
    x = np.asarray(x, dtype=np.float64)
    hM, dhM = model.molecule(x[None, :])
    Gl = model.lead_widths()
    mus = [mu] if Gl.shape[0] == 1 else [mu + 0.5 * bias, mu - 0.5 * bias]
    return steady_state(hM[0], dhM[0], Gl, mus, kT, friction=False)[1] - _nuclear(model, x)[1]


def friction_at(model, x, kT, mu=0.0, n_el=None, bias=0.0, source="auto",
                factor=BROADENING_FACTOR):
    """F0, eta, B at position ``x`` (bohr, one value per dof) for a built model.

    Parameters
    ----------
    model : mqcd.models.Model
    x : sequence of float, bohr
    kT : float, hartree (electronic temperature; 0 allowed)
    mu : float, hartree (chemical potential of one-body models; of the leads' average with bias)
    n_el : float or None (fixed electron number instead of ``mu``; "band" only)
    bias : float, hartree (``mu_L - mu_R``; two-lead models, "wide-band")
    source : "auto" | "band" | "wide-band" ("auto": "wide-band" when ``bias != 0``)
    factor : broadening factor of the "band" rule (:func:`mqcd.friction.tensor.broadening_width`)
    """
    if source not in SOURCES:
        raise ValueError(f"friction source = {source!r}; allowed: {', '.join(SOURCES)}")
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size != model.ndof:
        raise ValueError(f"--x has {x.size} value(s); model '{model.name}' has {model.ndof} "
                         "nuclear degree(s) of freedom")
    if kT is None or not kT >= 0 or not math.isfinite(kT):
        raise ValueError("friction needs the electronic temperature: [initial] temperature "
                         "(kelvin) or kT (hartree), >= 0")
    if source == "auto":
        source = "wide-band" if bias != 0.0 else "band"
    if source == "band":
        if bias != 0.0:
            raise ValueError("a biased junction has no steady state in a finite (discretised) "
                             "band: use source 'wide-band'")
        return band_friction(model, x, kT, mu, n_el, factor)
    if n_el is not None:
        raise ValueError("source 'wide-band' works at fixed chemical potential: remove "
                         "[initial] electron_number")
    return wide_band_friction(model, x, kT, mu, bias)


def friction(deck, x, source="auto", factor=BROADENING_FACTOR, overrides=None):
    """The calculator of ``mqcd friction``: F0, eta and B at ``x`` for the model and the
    electronic temperature / chemical potential / bias of a deck (path, TOML text or
    :class:`mqcd.io.deck.Deck`; read like ``mqcd check-model`` reads it: ``[method]`` is not
    needed)."""
    from ..io.deck import deck_model, read_deck
    if not hasattr(deck, "initial"):
        deck = read_deck(deck, for_exact=True, overrides=overrides)
    model = deck_model(deck)
    kind, kT, mu, n_el, bias = electron_settings(deck.initial or {})
    return friction_at(model, x, kT, mu, n_el, bias, source, factor)


def write_h5(path, res):
    """Write a :class:`FrictionResult` to HDF5 (one dataset per quantity, ``units`` attributes)."""
    import h5py
    with h5py.File(path, "w") as f:
        for k, v in res.to_json().items():
            if v is None:
                continue
            if isinstance(v, str):
                f.attrs[k] = v
                continue
            d = f.create_dataset(k, data=np.asarray(v))
            d.attrs["units"] = FrictionResult.UNITS[k]


def format_table(res):
    """Plain-text table of a :class:`FrictionResult` (atomic units)."""
    D = res.x.size
    lines = [f"friction at x = {res.x.tolist()} bohr  (source {res.source}, kT = {res.kT:.6g} "
             f"hartree, mu = {res.mu:.6g} hartree" + (f", bias = {res.bias:.6g} hartree"
                                                      if res.bias else "")
             + f", electrons = {res.electrons:.6g})"]
    if res.free_energy is not None:
        lines.append(f"Phi_el + U0 = {res.free_energy:.12g} hartree")
    lines.append("F0 (hartree/bohr): " + "  ".join(f"{v:.10g}" for v in res.F0))
    lines.append("eta (hartree a.u.time / bohr^2):")
    lines += ["  " + "  ".join(f"{res.eta[k, j]:14.8g}" for j in range(D)) for k in range(D)]
    lines.append("B (antisymmetric, same units):")
    lines += ["  " + "  ".join(f"{res.B[k, j]:14.8g}" for j in range(D)) for k in range(D)]
    if res.source == "band":
        lines.append(f"broadening sigma = {res.sigma:.4g} hartree (and 2 sigma, Richardson); "
                     f"eta(sigma) differs from eta by {100 * res.eta_change:.3g} %")
    return "\n".join(lines)
