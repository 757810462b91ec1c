r"""Linear (and quadratic) vibronic coupling models read from a parameter file.

The diabatic Hamiltonian in dimensionless normal coordinates ``Q`` (H. Koeppel, W. Domcke and
L. S. Cederbaum, Adv. Chem. Phys. 57, 59 (1984), eqs. (2.2), (3.1)-(3.4) in their notation):

.. math::

    W_{ab}(Q) = \delta_{ab}\Big(E_a + \sum_k \tfrac12\omega_k Q_k^2 + \sum_k \kappa^{(a)}_k Q_k\Big)
                + (1 - \delta_{ab})\Big(\eta_{ab} + \sum_k \lambda^{(ab)}_k Q_k\Big)
                + \sum_{(i, j)} \gamma^{(ab)}_{ij} Q_i Q_j

with the kinetic energy :math:`\sum_k \tfrac12\omega_k P_k^2`. Each ``gamma`` entry is one term
``gamma Q_i Q_j`` as written (``i = j`` gives ``gamma Q_i^2``; a pair ``i != j`` is written once:
no factor 2, no symmetrisation over ``(i, j)`` and ``(j, i)``), added to ``W_ab`` and ``W_ba``.
This is the convention of the Heidelberg MCTDH operator files and of G. A. Worth et al.'s
vibronic-coupling papers.

The engine runs the dimensionless coordinates as positions with mass ``M_k = 1/omega_k``
(electron masses when ``omega`` is in hartree), so that ``p^2/(2M) = omega p^2 / 2`` and
``(1/2) M omega^2 Q^2 = omega Q^2 / 2``: positions and momenta in the output are the
dimensionless ``Q`` and ``P``. The Franck-Condon point is ``Q = 0``, the ground-state vibrational
wavefunction has ``<Q^2> = <P^2> = 1/2`` per mode (``width = 0.7071`` in a deck), and
``harmonic_reference()`` gives ``Q = 0`` and ``omega`` for ``[initial] sampling = "wigner-thermal"``.

Parameter file (TOML or JSON; docs/models.md has the full description and an example)::

    units = "eV"                         # energy unit of every value: eV, meV, hartree, cm^-1
    states = ["S1", "S2"]                # optional names (default "0", "1", ...)
    modes = ["6a", "10a"]                # optional names (default "0", "1", ...)
    energies = [-0.423, 0.423]           # E_a: defines the number of states
    frequencies = [0.0739, 0.1139]       # omega_k: defines the number of modes
    kappa = [["S1", "6a", 0.09806], ["S2", "6a", -0.13545]]   # state, mode, value
    lambda = [["S1", "S2", "10a", 0.20804]]                    # a != b
    gamma = [["S1", "S1", "10a", "10a", -0.01159]]             # optional: a, b, i, j, value
    couplings = [["S1", "S2", 0.0]]                            # optional constant eta_ab

States and modes are named by their names or by 0-based integer indices.
"""
from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
from numba import njit
from scipy import constants

from .base import Model

#: energy units accepted in parameter files -> hartree per unit
ENERGY_UNITS = {
    "hartree": 1.0,
    "eV": constants.physical_constants["electron volt-hartree relationship"][0],
    "meV": 1e-3 * constants.physical_constants["electron volt-hartree relationship"][0],
    "cm^-1": 100.0 * constants.physical_constants["inverse meter-hartree relationship"][0],
}
ENERGY_UNITS["1/cm"] = ENERGY_UNITS["cm^-1"]
ENERGY_UNITS["cm-1"] = ENERGY_UNITS["cm^-1"]

_KNOWN_KEYS = {"title", "reference", "units", "states", "modes", "energies", "frequencies",
               "kappa", "lambda", "gamma", "couplings", "notes"}


class ParameterFileError(ValueError):
    """A vibronic-coupling parameter file is invalid; the message names the file, key and entry."""


def read_parameter_file(path) -> dict:
    """The raw contents of a TOML (``.toml``) or JSON (``.json``) parameter file as a dict."""
    path = Path(path)
    if not path.is_file():
        raise ParameterFileError(f"[model] parameter_file = '{path}': no such file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ParameterFileError(f"parameter file {path} is not valid {kind}: {exc}") from None


class VibronicSpec:
    """Validated vibronic-coupling parameters in hartree (arrays), built from a file's dict.

    Attributes: ``states``, ``modes`` (names), ``energies`` (ns), ``omega`` (D), ``kappa``
    (ns, D), ``lam`` (list of (a, b, k, value)), ``gamma`` (list of (a, b, i, j, value)),
    ``eta`` (ns, ns) constant off-diagonal couplings, ``title``, ``reference``.
    """

    def __init__(self, raw: dict, where="parameter file"):
        self.where = where
        unknown = sorted(set(raw) - _KNOWN_KEYS)
        if unknown:
            self._fail(f"unknown key(s) {unknown}; allowed: {sorted(_KNOWN_KEYS)}")
        units = raw.get("units", "hartree")
        if units not in ENERGY_UNITS:
            self._fail(f"units = {units!r}; allowed: {', '.join(ENERGY_UNITS)}")
        f = ENERGY_UNITS[units]
        self.units = units
        self.title = str(raw.get("title", ""))
        self.reference = str(raw.get("reference", ""))
        E = self._numbers(raw, "energies")
        w = self._numbers(raw, "frequencies")
        if np.any(w <= 0):
            self._fail("frequencies: every frequency must be > 0")
        ns, D = E.size, w.size
        self.states = self._names(raw, "states", ns)
        self.modes = self._names(raw, "modes", D)
        self.energies = E * f
        self.omega = w * f
        self.kappa = np.zeros((ns, D))
        for n, entry in enumerate(self._entries(raw, "kappa", 2)):
            a, k = self._state(entry[0], "kappa", n), self._mode(entry[1], "kappa", n)
            self.kappa[a, k] += entry[2] * f
        self.lam = []
        for n, entry in enumerate(self._entries(raw, "lambda", 3)):
            a, b = self._state(entry[0], "lambda", n), self._state(entry[1], "lambda", n)
            if a == b:
                self._fail(f"lambda entry {n}: states must differ (a linear intra-state term is "
                           "a kappa)")
            self.lam.append((a, b, self._mode(entry[2], "lambda", n), entry[3] * f))
        self.gamma = []
        for n, entry in enumerate(self._entries(raw, "gamma", 4)):
            self.gamma.append((self._state(entry[0], "gamma", n), self._state(entry[1], "gamma", n),
                               self._mode(entry[2], "gamma", n), self._mode(entry[3], "gamma", n),
                               entry[4] * f))
        self.eta = np.zeros((ns, ns))
        for n, entry in enumerate(self._entries(raw, "couplings", 2)):
            a, b = self._state(entry[0], "couplings", n), self._state(entry[1], "couplings", n)
            if a == b:
                self._fail(f"couplings entry {n}: states must differ (a constant on the diagonal "
                           "belongs to energies)")
            self.eta[a, b] += entry[2] * f
            self.eta[b, a] += entry[2] * f

    # ------------------------------------------------------------------ helpers
    def _fail(self, msg):
        raise ParameterFileError(f"{self.where}: {msg}")

    def _numbers(self, raw, key):
        v = raw.get(key)
        if not isinstance(v, list) or not v or not all(_is_num(x) for x in v):
            self._fail(f"{key} must be a non-empty list of numbers, got {v!r}")
        a = np.asarray(v, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            self._fail(f"{key}: every entry must be finite")
        return a

    def _names(self, raw, key, n):
        names = raw.get(key)
        if names is None:
            return [str(i) for i in range(n)]
        if not isinstance(names, list) or len(names) != n:
            what = "energies" if key == "states" else "frequencies"
            self._fail(f"{key} has {len(names) if isinstance(names, list) else names!r} entries but "
                       f"{what} has {n}")
        names = [str(s) for s in names]
        if len(set(names)) != n:
            self._fail(f"{key}: names must be unique, got {names}")
        return names

    def _entries(self, raw, key, nref):
        rows = raw.get(key, [])
        if not isinstance(rows, list):
            self._fail(f"{key} must be a list of entries")
        out = []
        for n, r in enumerate(rows):
            if (not isinstance(r, list) or len(r) != nref + 1 or not _is_num(r[-1])
                    or not math.isfinite(float(r[-1]))):
                self._fail(f"{key} entry {n} = {r!r}: expected {nref} state/mode references "
                           f"(names or 0-based indices) and a finite number")
            out.append(r[:-1] + [float(r[-1])])
        return out

    def _ref(self, v, names, key, n, what):
        if isinstance(v, bool):
            pass
        elif isinstance(v, int) and 0 <= v < len(names):
            return v
        elif isinstance(v, str) and v in names:
            return names.index(v)
        self._fail(f"{key} entry {n}: {what} {v!r} is not one of {names} (or an index "
                   f"0..{len(names) - 1})")

    def _state(self, v, key, n):
        return self._ref(v, self.states, key, n, "state")

    def _mode(self, v, key, n):
        return self._ref(v, self.modes, key, n, "mode")

    # ------------------------------------------------------------------ packing
    def pack(self):
        """Flat float64 array read by the kernel: header (ns, D, nlam, ngam), E, omega, kappa,
        eta, lambda entries (a, b, k, v), gamma entries (a, b, i, j, v)."""
        ns, D = self.energies.size, self.omega.size
        head = [ns, D, len(self.lam), len(self.gamma)]
        parts = [np.asarray(head, np.float64), self.energies, self.omega, self.kappa.ravel(),
                 self.eta.ravel(), np.asarray(self.lam, np.float64).ravel(),
                 np.asarray(self.gamma, np.float64).ravel()]
        return np.concatenate(parts)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@njit(cache=True)
def _lvc(x, p, H, dH):
    ns = int(p[0])
    D = int(p[1])
    nlam = int(p[2])
    ngam = int(p[3])
    o = 4
    E = p[o:o + ns]
    o += ns
    w = p[o:o + D]
    o += D
    kap = p[o:o + ns * D]
    o += ns * D
    eta = p[o:o + ns * ns]
    o += ns * ns
    lam = p[o:o + 4 * nlam]
    o += 4 * nlam
    gam = p[o:o + 5 * ngam]
    for i in range(x.shape[0]):
        v0 = 0.0
        for k in range(D):
            v0 += 0.5 * w[k] * x[i, k] * x[i, k]
        for a in range(ns):
            for b in range(ns):
                H[i, a, b] = eta[a * ns + b]
            acc = E[a] + v0
            for k in range(D):
                acc += kap[a * D + k] * x[i, k]
            H[i, a, a] = acc
        for k in range(D):
            wq = w[k] * x[i, k]
            for a in range(ns):
                for b in range(ns):
                    dH[i, k, a, b] = 0.0
                dH[i, k, a, a] = wq + kap[a * D + k]
        for m in range(nlam):
            a = int(lam[4 * m])
            b = int(lam[4 * m + 1])
            k = int(lam[4 * m + 2])
            v = lam[4 * m + 3]
            H[i, a, b] += v * x[i, k]
            H[i, b, a] += v * x[i, k]
            dH[i, k, a, b] += v
            dH[i, k, b, a] += v
        for m in range(ngam):
            a = int(gam[5 * m])
            b = int(gam[5 * m + 1])
            k = int(gam[5 * m + 2])
            j = int(gam[5 * m + 3])
            v = gam[5 * m + 4]
            t = v * x[i, k] * x[i, j]
            H[i, a, b] += t
            dH[i, k, a, b] += v * x[i, j]
            dH[i, j, a, b] += v * x[i, k]
            if a != b:
                H[i, b, a] += t
                dH[i, k, b, a] += v * x[i, j]
                dH[i, j, b, a] += v * x[i, k]


class LVC(Model):
    """Vibronic coupling model from a parameter file (see the module docstring).

    Parameters
    ----------
    parameter_file : str or Path
        TOML or JSON file with the parameters (from a deck: ``[model] parameter_file``, relative
        to the deck).
    data : dict, optional
        The same content as a dict, instead of a file (library use).
    """
    name = "lvc"
    nstates = 2
    ndof = 1
    mass = 1.0
    scattering = False
    interaction_radius = 6.0
    parameters: dict = {}
    kernel = staticmethod(_lvc)
    accepts_parameter_file = True
    doc_sizes = "states, modes and the masses 1/omega from parameter_file"

    def __init__(self, parameter_file=None, mass=None, data=None, **params):
        if (parameter_file is None) == (data is None):
            raise ValueError("[model] name = 'lvc' needs parameter_file = \"FILE.toml\" (or .json) "
                             "with the vibronic-coupling parameters (docs/models.md, 'lvc')")
        if mass is not None:
            raise ValueError("[model] mass: the lvc model's masses are fixed to 1/omega by its "
                             "dimensionless normal coordinates; remove mass from [model]")
        if parameter_file is not None:
            self.parameter_file = str(parameter_file)
            data = read_parameter_file(parameter_file)
            where = f"parameter file {parameter_file}"
        else:
            self.parameter_file = ""
            where = "lvc parameters"
        self.spec = VibronicSpec(data, where)
        super().__init__(mass=None, **params)

    def setup(self):
        s = self.spec
        self.nstates = s.energies.size
        self.ndof = s.omega.size
        self.params = s.pack()
        self.mass = 1.0 / s.omega

    def harmonic_reference(self):
        """``(Q0, omega)``: the reference geometry (Franck-Condon point, Q = 0) and the
        ground-state frequencies (hartree) of the normal modes, masses ``1/omega``."""
        return np.zeros(self.ndof), self.spec.omega.copy()

    def describe(self):
        s = self.spec
        return (f"lvc: {self.nstates} states {s.states}, {self.ndof} modes, "
                f"{len(s.lam)} lambda, {len(s.gamma)} gamma terms"
                + (f" ({s.title})" if s.title else "")
                + (f" from {self.parameter_file}" if self.parameter_file else ""))
