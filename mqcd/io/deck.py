"""Input decks: TOML parsing and validation against a declared schema.

A deck has the sections ``[model]``, ``[initial]``, ``[method]``, ``[run]``, ``[output]`` and, for
the grid reference, ``[exact]``. Every key is declared once, here or by the part that owns it
(a method declares its own ``[method]`` keys, a model its parameters), with its type, default,
allowed values and unit. Validation happens before any computation and reports the section, the
key and what is allowed. ``docs/decks.md`` is generated from these declarations
(``python tools/gen_deck_docs.py``), so the documentation cannot drift from the code.
"""
from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .schema import (REQUIRED, DeckError, ErrorList, Key, all_positive, did_you_mean,  # noqa: F401
                     load_toml, non_negative, positive, validate_section)

# ----------------------------------------------------------------------------- shared sections
#: phase-space samplings of a Gaussian wavepacket (need position, momentum, width)
PACKET_SAMPLINGS = ("wigner", "hydrodynamic", "fixed")
#: methods whose default [initial] sampling is "hydrodynamic" (docs/ladder.md)
FLUID_ELEMENT_METHODS = ("qhd",)
#: thermal samplings (mqcd/ensemble/thermal.py; need temperature or kT)
THERMAL_SAMPLINGS = ("wigner-thermal", "boltzmann", "gibbs")

INITIAL = {
    "position": Key("floats", [], "centre of the nuclear wavepacket, one entry per dof (required "
                    "by the wavepacket samplings; for the thermal ones the centre of "
                    "'wigner-thermal' or the starting point of the MCMC, default: the model's "
                    "reference geometry)", "bohr"),
    "momentum": Key("floats", [], "mean nuclear momentum, one entry per dof (required by the "
                    "wavepacket samplings; default 0 for the thermal ones)", "a.u."),
    "width": Key("floats", [], "standard deviation of the nuclear density |chi|^2 per dof "
                 "(wavepacket amplitude exp(-(x-x0)^2/(4 width^2))); wavepacket samplings only "
                 "(the thermal widths follow from the model and the temperature)", "bohr",
                 check=all_positive),
    "state": Key("int", 0, "initial electronic state (0 = lowest) in `basis`, a pure state; the "
                 "surface sampled by sampling = 'boltzmann'"),
    "basis": Key("str", "adiabatic", "basis of state, amplitudes and density_matrix: "
                 "'adiabatic' (eigenstates of H at each trajectory's position, ordered by energy) "
                 "or 'diabatic' (the model's basis, e.g. a donor state)",
                 choices=("adiabatic", "diabatic")),
    "amplitudes": Key("any", [], "coherent initial state sum_n c_n |n> in `basis`: one number "
                      "or [re, im] pair per state (normalised); instead of state"),
    "density_matrix": Key("any", [], "mixed or coherent initial state in `basis`: ns rows of ns "
                          "numbers or [re, im] pairs, Hermitian and positive semi-definite "
                          "(normalised to trace 1); instead of state"),
    "sampling": Key("str", "wigner", "'wigner': Gaussian Wigner distribution (momentum std = "
                    "1/(2 width)); 'hydrodynamic': fluid elements, positions at the quantiles of "
                    "the initial density (a scrambled Halton set mapped through it in D > 1) with "
                    "the local momentum p = dS/dx = momentum + chirp (x - position), equal weights "
                    "(the default for qhd, 'wigner' for every other method; docs/ladder.md); "
                    "'fixed': every trajectory at the centre; "
                    "'wigner-thermal': thermal harmonic Wigner distribution of the model's "
                    "normal modes; 'boltzmann': classical canonical ensemble on surface `state` "
                    "(MCMC); 'gibbs': canonical ensemble over several surfaces with weights "
                    "q_j = Z_j / Z (docs/initial.md)",
                    choices=PACKET_SAMPLINGS + THERMAL_SAMPLINGS),
    "chirp": Key("floats", [], "linear chirp c of the packet, one entry per dof (empty: 0): "
                 "amplitude phase exp(i c (x - x0)^2 / 2), i.e. the local momentum "
                 "p(x) = momentum + c (x - position); c < 0 focuses the packet", "1/bohr**2"),
    "temperature": Key("float", None, "temperature of the initial ensemble (thermal samplings; "
                       "give temperature or kT, not both; 0: ground state)", "kelvin",
                       check=non_negative),
    "kT": Key("float", None, "k_B T of the initial ensemble, for models in reduced units "
              "(instead of temperature)", "hartree", check=non_negative),
    "electrons": Key("str", "pure", "electronic state at t = 0: 'pure' (state, amplitudes or "
                     "density_matrix); 'thermal': rho = exp(-H_el/kT)/Z of a many-state model at "
                     "temperature/kT; 'fermi': the one-body density matrix f(h) of a one-body "
                     "model (newns_anderson) with Fermi-Dirac occupations at temperature/kT and "
                     "chemical_potential (or electron_number), trace N_el (docs/friction.md)",
                     choices=("pure", "thermal", "fermi")),
    "chemical_potential": Key("float", 0.0, "chemical potential mu of electrons = 'fermi' and of "
                              "the friction calculator (the leads' mean with bias)", "hartree"),
    "electron_number": Key("float", None, "electrons = 'fermi' at a fixed electron number "
                           "instead of chemical_potential (mu solved per trajectory)",
                           check=non_negative),
    "bias": Key("float", 0.0, "mu_L - mu_R of a two-lead junction (newns_anderson leads = 2): "
                "mu_L,R = chemical_potential +- bias/2 in `mqcd friction` and friction-langevin "
                "(steady state of the wide-band limit); 0: equilibrium", "hartree"),
    "mcmc_chains": Key("int", 64, "MCMC chains (boltzmann, gibbs)", check=positive),
    "mcmc_burn_in": Key("int", 2000, "MCMC steps per chain discarded before sampling (the step "
                        "size and preconditioner adapt during the first half)", check=non_negative),
    "mcmc_thinning": Key("int", 20, "MCMC steps between kept samples", check=positive),
    "mcmc_step": Key("float", 0.0, "MALA step size (relative to the preconditioner); 0: adapted "
                     "during the burn-in towards acceptance 0.574", check=non_negative),
    "gibbs_states": Key("ints", [], "surfaces of sampling = 'gibbs' (empty: all states)"),
    "gibbs_allocation": Key("str", "proportional", "trajectories per surface of 'gibbs': "
                            "'proportional' to q_j (weights near 1) or 'equal' (weights ~ q_j)",
                            choices=("proportional", "equal")),
    "gibbs_samples": Key("int", 4096, "kept samples per surface of the pilot MCMC chains of "
                         "'gibbs' from which q_j = Z_j / sum Z_k is estimated (MBAR/BAR)",
                         check=positive),
}

RUN = {
    "trajectories": Key("int", REQUIRED, "number of trajectories in the swarm", check=positive),
    "dt": Key("float", REQUIRED, "nuclear time step", "a.u. of time (1 a.u. = 0.02419 fs)",
              check=positive),
    "t_end": Key("float", REQUIRED, "final time", "a.u. of time", check=positive),
    "stop": Key("str", "time", "'time': run to t_end; 'exit': stop (at the latest at t_end) once "
                "every trajectory has |x_0| > exit_radius and moves outward", choices=("time", "exit")),
    "exit_radius": Key("float", 0.0, "radius for stop = 'exit' along dof 0; 0 means the model's "
                       "interaction radius", "bohr", check=non_negative),
    "seed": Key("int", 0, "the one seed of the run; trajectory i draws from stream (seed, i)",
                check=non_negative),
    "electronic_substeps": Key("int", 1, "electronic substeps per nuclear step (H interpolated "
                               "linearly in time between the step ends)", check=positive),
    "on_nonfinite": Key("str", "stop", "a trajectory whose x, p or rho becomes NaN/inf (checked "
                        "every `stride` steps, before recording): 'stop' the run with a message "
                        "naming it and write a checkpoint; 'drop' it from the swarm (ensemble "
                        "means are then over the surviving trajectories; the count is written "
                        "to diagnostics/dropped)", choices=("stop", "drop")),
    "energy_tolerance": Key("float", 1e-3, "largest energy drift accepted before the run reports "
                            "it: the mean over trajectories of abs(E_i(t) - E_i(0)) for methods that "
                            "conserve every trajectory's energy (Ehrenfest, FSSH), abs(<E>(t) - <E>(0)) "
                            "for those that conserve only the swarm total (the coupled ladder "
                            "methods); E includes the method's own energy terms (energy/drift_mean, "
                            "energy/ensemble_drift); 0 = no check", "hartree", check=non_negative),
    "on_energy_drift": Key("str", "warn", "a drift beyond energy_tolerance: 'warn' at the end of "
                           "the run and in `mqcd summary`; 'stop' the run at the first record past "
                           "it (checkpoint written, non-zero exit)", choices=("warn", "stop")),
    "on_unstable_step": Key("str", "stop", "dt at or beyond the velocity-Verlet stability limit "
                            "2/omega_max of the model at the initial positions (omega_max: its "
                            "stiffest nuclear mode, docs/reliability.md): 'stop' before the first "
                            "step with a message giving the limit; 'warn' and run anyway; 'off': "
                            "skip the check", choices=("stop", "warn", "off")),
}

OUTPUT = {
    "file": Key("str", "", "HDF5 output path (relative to the deck); default: deck name with .h5"),
    "stride": Key("int", 10, "record ensemble averages every `stride` steps", check=positive),
    "checkpoint_every": Key("int", 0, "write a restart checkpoint every K steps (0 = never)",
                            check=non_negative),
    "budgets": Key("bool", True, "record the energy, momentum and angular-momentum budgets per "
                   "record: nuclear/force_mean, energy/power, energy/electronic, (2 <= D <= 10) "
                   "nuclear/angular_momentum and nuclear/torque, and for surface hopping the event "
                   "impulse and work (docs/transfer.md)"),
    "angular_origin": Key("floats", [], "origin of the angular momentum and torque; empty: the "
                          "coordinate origin", "bohr"),
    "trajectories": Key("bool", False, "record every trajectory's position, momentum, surface "
                        "and (many-particle models) per-particle energies at every record, for "
                        "`mqcd fields` (docs/conservation_fields.md); off by default: it stores "
                        "N x D numbers per record"),
    "geometric": Key("bool", False, "Ehrenfest and surface hopping: also record the swarm "
                     "estimate of T_geo (energy/geometric) from the kernel estimator's d rho, a "
                     "diagnostic (the ladder rungs record their own T_geo)"),
}

MODEL_KEYS = {
    "name": Key("str", None, "built-in model name"),
    "file": Key("str", None, "Python file defining your own model (relative to the deck)"),
    "class": Key("str", None, "Model subclass in `file`"),
    "mass": Key("floats", None, "nuclear mass per dof (or one value for all)", "electron masses",
                check=all_positive),
    "parameter_file": Key("str", None, "TOML or JSON parameter file of a model built from one "
                          "('lvc': vibronic coupling parameters; 'holstein': site energies), "
                          "relative to the deck; format in docs/models.md"),
}


@dataclass
class Deck:
    """A validated deck: plain dicts per section, plus where it came from."""
    model: dict
    initial: dict
    method: dict
    run: dict
    output: dict
    exact: dict = field(default_factory=dict)
    text: str = ""
    path: Path | None = None

    @property
    def base_dir(self):
        return self.path.parent if self.path is not None else Path.cwd()

    def output_path(self, suffix=""):
        f = self.output.get("file") or ""
        if not f:
            stem = self.path.stem if self.path is not None else "mqcd_run"
            f = stem + suffix + ".h5"
        p = Path(f)
        return p if p.is_absolute() else self.base_dir / p

    def as_dict(self):
        return {"model": self.model, "initial": self.initial, "method": self.method,
                "run": self.run, "output": self.output, "exact": self.exact}


def _to_text(d: dict) -> str:
    """Minimal TOML writer for decks given as dicts (so the output always stores deck text)."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{_key(k)} = {val(x)}" for k, x in v.items()) + "}"
        return repr(v)
    lines = []
    for sec, body in d.items():
        lines.append(f"[{sec}]")
        for k, v in (body or {}).items():
            if v is not None:
                lines.append(f"{_key(k)} = {val(v)}")
        lines.append("")
    return "\n".join(lines)


def _key(k):
    k = str(k)
    return k if k and all(c.isalnum() or c in "_-" for c in k) else '"' + k.replace('"', '\\"') + '"'


SECTIONS = ("model", "initial", "method", "run", "output", "exact")


def parse_override(item: str):
    """``"run.trajectories=4000"`` -> ``("run", "trajectories", 4000)``.

    The value is read as a TOML value (``4000``, ``0.5``, ``true``, ``[10.0]``, ``"fssh"``); a bare
    word that is not TOML (``fssh``, ``fssh-coupled``) is taken as a string.
    """
    where, eq, text = str(item).partition("=")
    section, dot, key = where.strip().partition(".")
    if not eq or not dot or not section or not key or "." in key:
        raise DeckError(f"--set {item}: expected SECTION.KEY=VALUE, e.g. run.trajectories=4000 or "
                        "method.name=fssh")
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return section, key, value


def apply_overrides(raw: dict, overrides) -> list[str]:
    """Set single keys of the raw deck dict ``raw`` in place: ``overrides`` is a list of
    ``"section.key=value"`` strings (``mqcd run --set``) or a dict ``{"section.key": value}`` /
    ``{"section": {key: value}}``. Returns the overrides as ``section.key=value`` strings (for the
    deck text). Unknown sections are refused here (with "did you mean"); keys and values are
    checked by the deck validation, like the deck's own."""
    items = []
    if isinstance(overrides, dict):
        for where, v in overrides.items():
            if isinstance(v, dict) and "." not in where:
                items += [(where, k, x) for k, x in v.items()]
            else:
                sec, _, key = str(where).partition(".")
                items.append((sec, key, v))
    else:
        items = [parse_override(o) for o in overrides or ()]
    errors = ErrorList()
    done = []
    for sec, key, v in items:
        if sec not in SECTIONS:
            errors.add(f"override {sec}.{key}: unknown section [{sec}]{did_you_mean(sec, SECTIONS)};"
                       " allowed: " + ", ".join(SECTIONS))
            continue
        body = raw.setdefault(sec, {})
        if not isinstance(body, dict):
            errors.add(f"override {sec}.{key}: [{sec}] is not a table in the deck")
            continue
        body[key] = v
        done.append(f"{sec}.{key}={_to_text({'x': {'v': v}}).splitlines()[1][4:]}")
    errors.raise_any()
    return done


def read_deck(source, *, for_exact=False, overrides=None) -> Deck:
    """Read and validate a deck from a path, a TOML string or a dict.

    Everything that can be checked without running (types, ranges, names, model parameters,
    method options, initial state range, dimensions) is checked here, and every problem found is
    reported at once (one :class:`DeckError` listing them, with "did you mean" suggestions).

    ``overrides`` (``mqcd run --set``): single keys replaced before validation, a list of
    ``"section.key=value"`` strings or a dict (see :func:`apply_overrides`); they are validated
    like the deck's own keys and recorded in the deck text (``Deck.text``, the output's ``deck``
    attribute), which is then the whole deck with the overrides applied.
    """
    path = None
    if isinstance(source, dict):
        raw = copy.deepcopy(source)
        text = _to_text(raw)
    else:
        raw, text, path = load_toml(source)
    errors = ErrorList()
    set_text = []
    if overrides:
        with errors.check():
            set_text = apply_overrides(raw, overrides)
    if set_text:
        text = (f"# deck {path or '(given as text or dict)'} with "
                + " ".join(f"--set {o}" for o in set_text) + "\n" + _to_text(raw))
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        errors.add("unknown section(s) " + ", ".join(f"[{u}]{did_you_mean(u, SECTIONS)}"
                                                      for u in unknown)
                   + "; allowed: " + ", ".join(f"[{s}]" for s in SECTIONS))
    for sec in ("model", "initial", "run") + (() if for_exact else ("method",)):
        if sec not in raw:
            errors.add(f"section [{sec}] is missing")

    from ..models import BUILTIN, build_model  # local import: models import nothing from io
    from ..methods import method_schema
    from ..exact import EXACT_KEYS

    model = model_sec = None
    model_raw = raw.get("model", {})
    if not isinstance(model_raw, dict):
        errors.add("[model] must be a table (section)")
        model_raw = {}
    base = {k: v for k, v in model_raw.items() if k in MODEL_KEYS}
    with errors.check():
        base = validate_section("model", base, MODEL_KEYS)
    params = {k: v for k, v in model_raw.items() if k not in MODEL_KEYS}
    n_before = len(errors.errors)
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            errors.add(f"[model] {k} = {v!r}: model parameters are numbers")
            continue
        try:
            finite = math.isfinite(float(v))
        except OverflowError:
            finite = False
        if not finite:
            errors.add(f"[model] {k} = {v!r}: must be a finite number")
    name = base.get("name") if isinstance(base, dict) else None
    if isinstance(name, str) and base.get("file") is None:
        if name not in BUILTIN:
            errors.add(f"[model] name = '{name}' is not a built-in model"
                       f"{did_you_mean(name, BUILTIN)}; allowed: {', '.join(sorted(BUILTIN))} "
                       "(or file + class for your own)")
        else:
            cls = BUILTIN[name]
            bad = sorted(set(params) - set(cls.parameters))
            if bad:
                errors.add("[model] unknown parameter(s) " + ", ".join(
                    f"{b}{did_you_mean(b, list(cls.parameters) + ['mass'])}" for b in bad)
                    + f" for model '{name}'; allowed: {', '.join(cls.parameters) or '(none)'}, mass")
    if len(errors.errors) == n_before and "model" in raw:
        try:
            model = build_model({**{k: v for k, v in base.items() if v is not None}, **params},
                                base_dir=path.parent if path else None)
        except ValueError as exc:
            errors.add(str(exc))
        model_sec = {**{k: v for k, v in base.items() if v is not None}, **params}

    initial = None
    if "initial" in raw:
        ini_raw = raw["initial"]
        mname = raw["method"].get("name") if isinstance(raw.get("method"), dict) else None
        if (mname in FLUID_ELEMENT_METHODS and isinstance(ini_raw, dict)
                and "sampling" not in ini_raw
                and not any(k in ini_raw for k in ("temperature", "kT"))):
            # qhd is the exact limit only for trajectories started as fluid elements
            ini_raw = {**ini_raw, "sampling": "hydrodynamic"}
        with errors.check():
            initial = validate_section("initial", ini_raw, INITIAL)
    if initial is not None and model is not None:
        _check_initial(initial, model, errors, for_exact)

    run_schema = RUN
    if for_exact:   # the grid reference has no swarm: trajectories is optional there
        run_schema = {**RUN, "trajectories": Key("int", 1, RUN["trajectories"].doc, check=positive)}
    run = None
    if "run" in raw:
        with errors.check():
            run = validate_section("run", raw["run"], run_schema)
    if run is not None and run["t_end"] < run["dt"]:
        errors.add(f"[run] t_end = {run['t_end']:g} is shorter than one time step dt = "
                   f"{run['dt']:g} (a.u. of time): the run would take no step; make t_end "
                   ">= dt")
    elif run is not None and run["t_end"] / run["dt"] > 1e15:
        errors.add(f"[run] t_end / dt = {run['t_end'] / run['dt']:.3g} steps: more than 1e15 "
                   "steps cannot be run (and time t = step * dt loses its precision); "
                   "check the units of dt and t_end (a.u. of time, 1 a.u. = 0.02419 fs)")
    output = None
    with errors.check():
        output = validate_section("output", raw.get("output", {}), OUTPUT)
    method = {}
    if "method" in raw:
        mraw = raw["method"]
        schemas = method_schema()
        if not isinstance(mraw, dict) or "name" not in mraw:
            errors.add("[method] name is required; allowed: " + ", ".join(schemas))
        elif mraw["name"] not in schemas:
            name = mraw["name"]
            errors.add(f"[method] name = '{name}' is not a known method"
                       f"{did_you_mean(name, schemas)}; allowed: "
                       + ", ".join(f"'{n}'" for n in schemas))
        else:
            name = mraw["name"]
            with errors.check():
                method = validate_section("method", {k: v for k, v in mraw.items()
                                                     if k != "name"}, schemas[name])
                method = {"name": name, **method}
    if model is not None and method and getattr(model, "one_body", False) and \
            method["name"] not in ("ehrenfest", "friction-langevin"):
        errors.add(f"[method] name = '{method['name']}': model '{model.name}' is a one-body "
                   "model (independent electrons, rho the one-body density matrix); its methods "
                   "are 'ehrenfest' (mixed-state Ehrenfest) and 'friction-langevin'")
    if initial is not None and method and initial["sampling"] == "gibbs":
        from ..methods import METHODS
        from ..methods.ladder import LadderParts
        if issubclass(METHODS[method["name"]], LadderParts):
            errors.add(f"[initial] sampling = 'gibbs' gives the trajectories statistical weights, "
                       f"which the swarm fields of [method] name = '{method['name']}' do not "
                       "take (they count every trajectory alike); use 'boltzmann' on one surface, "
                       "or a method without swarm fields (ehrenfest, fssh)")
    exact = None
    with errors.check():
        exact = validate_section("exact", raw.get("exact", {}), EXACT_KEYS)
    errors.raise_any()
    deck = Deck(model=model_sec, initial=initial, method=method, run=run, output=output,
                exact=exact, text=text, path=path)
    deck._model = model
    return deck


def _check_initial(initial, model, errors, for_exact):
    """Cross-key checks of [initial] (sampling kind, temperature, basis, electronic state)."""
    from ..ensemble import electronic
    kind = initial["sampling"]
    thermal_kind = kind in THERMAL_SAMPLINGS
    if not initial["chirp"] and not thermal_kind:
        initial["chirp"] = [0.0] * model.ndof
    for k in ("position", "momentum", "width", "chirp"):
        if not initial[k]:
            if not thermal_kind and k != "chirp":
                errors.add(f"[initial] {k} is required for sampling = '{kind}' (one entry per "
                           f"dof; model '{model.name}' has {model.ndof})")
        elif len(initial[k]) != model.ndof:
            errors.add(f"[initial] {k} has {len(initial[k])} entries; model '{model.name}' "
                       f"has {model.ndof} nuclear degree(s) of freedom")
    if initial["temperature"] is not None and initial["kT"] is not None:
        errors.add("[initial] give temperature (kelvin) or kT (hartree), not both")
    if thermal_kind:
        if initial["temperature"] is None and initial["kT"] is None:
            errors.add(f"[initial] sampling = '{kind}' needs temperature (kelvin) or kT (hartree)")
        for k in ("width", "chirp"):
            if initial[k]:
                errors.add(f"[initial] {k} is not used by sampling = '{kind}' (the thermal "
                           "distribution follows from the model and the temperature): remove it")
        if kind == "wigner-thermal" and getattr(model, "harmonic_reference", None) is None:
            errors.add(f"[initial] sampling = 'wigner-thermal': model '{model.name}' states no "
                       "harmonic reference (frequencies and geometry); use 'boltzmann', or give "
                       "the model a harmonic_reference() method (docs/models.md)")
        if kind in ("boltzmann", "gibbs") and not initial["position"] \
                and getattr(model, "harmonic_reference", None) is None:
            errors.add(f"[initial] sampling = '{kind}': give position (the MCMC starts near the "
                       f"surface minimum found from it; model '{model.name}' states no "
                       "reference geometry)")
    _check_electrons(initial, model, errors)
    ns = model.nstates
    if not 0 <= initial["state"] < ns:
        errors.add(f"[initial] state = {initial['state']} is out of range; model "
                   f"'{model.name}' has states 0..{ns - 1}")
    if initial["amplitudes"] and initial["density_matrix"]:
        errors.add("[initial] give amplitudes or density_matrix, not both")
    for k, parse in (("amplitudes", electronic.parse_amplitudes),
                     ("density_matrix", electronic.parse_density_matrix)):
        if initial[k]:
            try:
                parse(initial[k], ns)
            except ValueError as exc:
                errors.add(str(exc))
    bad = [s for s in initial["gibbs_states"] if not 0 <= s < ns]
    if bad or len(set(initial["gibbs_states"])) != len(initial["gibbs_states"]):
        errors.add(f"[initial] gibbs_states = {initial['gibbs_states']}: distinct states in "
                   f"0..{ns - 1}")
    if for_exact:
        _initial_for_exact(initial, model, errors)


def _check_electrons(initial, model, errors):
    """[initial] electrons / chemical_potential / electron_number / bias against the model."""
    el, one_body = initial["electrons"], getattr(model, "one_body", False)
    if el == "pure" and one_body:
        errors.add(f"[initial] electrons = 'pure': model '{model.name}' is a one-body model "
                   "(independent electrons), whose state is a one-body density matrix; use "
                   "electrons = 'fermi' (with temperature or kT)")
    if el == "fermi" and not one_body:
        errors.add(f"[initial] electrons = 'fermi' needs a one-body model (newns_anderson); "
                   f"model '{model.name}' is a many-state model: use 'thermal'")
    if el == "thermal" and one_body:
        errors.add(f"[initial] electrons = 'thermal': model '{model.name}' is a one-body "
                   "model; use 'fermi'")
    if el != "pure":
        if initial["temperature"] is None and initial["kT"] is None:
            errors.add(f"[initial] electrons = '{el}' needs temperature (kelvin) or kT "
                       "(hartree), 0 allowed")
        if initial["amplitudes"] or initial["density_matrix"]:
            errors.add(f"[initial] electrons = '{el}' sets the electronic state: remove "
                       "amplitudes / density_matrix")
    if initial["electron_number"] is not None and el != "fermi":
        errors.add("[initial] electron_number is used only with electrons = 'fermi'")
    if initial["bias"] != 0.0 and getattr(model, "nleads", 1) != 2:
        errors.add(f"[initial] bias = {initial['bias']:g} needs a junction with two leads "
                   "([model] name = 'newns_anderson', leads = 2)")


def exact_initial_problem(initial):
    """Why the grid solver cannot start from this ``[initial]`` ('' if it can): it propagates one
    pure Gaussian wavepacket on an adiabatic state. Checked by :func:`mqcd.api.run_exact_file`
    (``mqcd exact``, studies)."""
    why = []
    if initial["basis"] != "adiabatic" or initial["amplitudes"] or initial["density_matrix"]:
        why.append("a pure adiabatic state ([initial] basis = 'adiabatic', no amplitudes or "
                   "density_matrix)")
    kind = initial["sampling"]
    T = initial["temperature"] if initial["temperature"] is not None else initial["kT"]
    if kind in ("boltzmann", "gibbs") or (kind == "wigner-thermal" and T not in (None, 0)):
        why.append("a pure nuclear wavepacket (sampling = 'wigner-thermal' only at temperature "
                   "0, the harmonic ground state; not a thermal mixture)")
    if not why:
        return ""
    return ("mqcd exact propagates one wavefunction: it needs " + " and ".join(why)
            + "; this deck's [initial] describes a mixed or non-adiabatic initial state")


def _initial_for_exact(initial, model, errors):
    """A wigner-thermal deck at T = 0 (the harmonic ground state, a pure Gaussian) becomes that
    packet for the grid solver (position, momentum, width filled in)."""
    if exact_initial_problem(initial):
        return
    kind = initial["sampling"]
    if kind == "wigner-thermal" and getattr(model, "harmonic_reference", None) is not None:
        from ..ensemble.thermal import harmonic_widths, reference
        x0, w = reference(model, initial, kind)
        sx, _ = harmonic_widths(model.masses, w, 0.0)
        initial["position"] = [float(v) for v in x0]
        initial["momentum"] = initial["momentum"] or [0.0] * model.ndof
        initial["width"] = [float(v) for v in sx]
        initial["chirp"] = [0.0] * model.ndof


def deck_model(deck: Deck):
    """The model instance built while validating ``deck``."""
    return deck._model
