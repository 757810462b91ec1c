"""Study files: schema, validation and expansion into runs.

A study (TOML) names a base deck and the axes to vary; ``expand`` turns it into one validated deck
per run (the product of the axes and the method variants) and one exact reference per physical
case. docs/studies.md describes the format; the keys of ``[study]`` are :data:`STUDY_KEYS`.

Every variant, axis value and ``--set`` override is a set of deck overrides ``{section: {key:
value}}`` (or ``{"section.key": value}``), applied to the base deck in the order base, axes (in
file order), method variant, ``--set``, and validated like the deck itself: a bad key or value is
reported before anything runs, naming the variant or axis value it came from.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

from ..io.deck import SECTIONS, Deck, read_deck
from ..io.schema import DeckError, ErrorList, Key, did_you_mean, validate_section

STUDY_KEYS = {
    "title": Key("str", "", "title of the report (default: the study file name)"),
    "notes": Key("str", "", "a paragraph shown under the title of the report (what the labels "
                 "stand for, what is pending)"),
    "base": Key("str", "", "base deck file (relative to the study file); [deck] sections are "
                "merged over it; empty: the [deck] table is the whole base deck"),
    "runs": Key("str", "", "folder of the run files (HDF5 and their decks), relative to the study "
                "file; default: STUDY_runs next to it"),
    "report": Key("str", "", "folder of the report (report.md, report.html, study.h5, figures), "
                  "relative to the study file; default: the runs folder"),
    "exact": Key("any", True, "true: the exact grid reference of every physical case (runs that "
                 "differ only in method, trajectories or seed share one); false: none; a table "
                 "of deck overrides for the exact runs only, e.g. {output = {stride = 40}, exact = "
                 "{store_density = false}}"),
    "scan": Key("str", "", "name of the axis to draw as the x axis of the branching-vs-value "
                "figure (a momentum scan: the classic Tully figure); its values must be numbers "
                "or labels that read as numbers"),
    "case_figures": Key("str", "auto", "populations / indicator / branching figures for every "
                        "physical case: 'yes', 'no', 'auto' (yes when there are at most 4 cases)",
                        choices=("auto", "yes", "no")),
}
TOP = ("study", "deck", "methods", "axes")

# keys of a deck that change the exact reference (everything else: method, trajectories, seed,
# sampling, substeps, energy/non-finite policies, checkpoints, the output file name)
EXACT_RELEVANT = {"model": None, "initial": ("position", "momentum", "width", "state", "chirp"),
                  "run": ("dt", "t_end", "stop", "exit_radius"), "output": ("stride",),
                  "exact": None}
# keys that do not change a result (left out of the fingerprint that finds a finished run)
NOT_RESULT = {"output": ("file", "checkpoint_every")}


class StudyError(DeckError):
    """A study file is invalid; the message names the table, the variant or axis value and the
    key (every problem at once)."""
    what = "the study"


def _raise_grouped(errors):
    """Raise the problems of a study once each: the same problem in several runs (a bad
    ``--set`` or base-deck key) is listed once, with the runs it occurs in."""
    if not errors:
        return
    groups = {}
    for e in errors.errors:
        where, sep, what = e.partition(": ")
        key = what if sep and where.startswith(("study run", "exact reference")) else e
        groups.setdefault(key, []).append(where if key is what else "")
    out = []
    for what, wheres in groups.items():
        wheres = [w for w in wheres if w]
        if not wheres:
            out.append(what)
        elif len(wheres) == 1:
            out.append(f"{wheres[0]}: {what}")
        else:
            more = f" and {len(wheres) - 2} more" if len(wheres) > 2 else ""
            out.append(f"{what} (in {len(wheres)} runs: {'; '.join(wheres[:2])}{more})")
    raise StudyError(errors=out)


@dataclass
class Run:
    """One run of a study: its labels ({axis: value label, "method": variant}), the validated
    deck, its file name (from the labels) and, for trajectory runs, the exact run it is
    compared with."""
    labels: dict
    deck: Deck
    raw: dict
    name: str
    exact: bool = False
    case: str = ""                      # label of the physical case (the exact run's name)
    reference: "Run | None" = None
    variant: str = ""
    case_labels: list = field(default_factory=list)   # labels of the axes that change the physics

    @property
    def method_label(self):
        return "exact" if self.exact else self.variant

    def fingerprint(self) -> str:
        return deck_fingerprint(self.deck)


@dataclass
class Study:
    path: Path
    title: str
    runs_dir: Path
    report_dir: Path
    scan: str
    case_figures: str
    axes: dict                          # name -> {label: overrides}
    methods: dict                       # label -> overrides
    notes: str = ""
    runs: list = field(default_factory=list)
    exact_runs: list = field(default_factory=list)
    text: str = ""

    @property
    def all_runs(self):
        return self.exact_runs + self.runs

    def cases(self):
        """Physical cases in order: [(case label, exact Run or None, [trajectory Runs])]."""
        out = {}
        for r in self.runs:
            out.setdefault(r.case, []).append(r)
        ex = {r.case: r for r in self.exact_runs}
        return [(c, ex.get(c), rs) for c, rs in out.items()]


def deck_fingerprint(deck: Deck, exact=None) -> str:
    """SHA-256 of the validated deck's content, the keys that cannot change the result left out
    (for the exact reference, ``exact`` = True or a deck without [method]: all but
    :data:`EXACT_RELEVANT`): two decks with the same fingerprint give the same result."""
    d = json.loads(json.dumps(deck.as_dict(), sort_keys=True, default=str))
    if exact or (exact is None and not deck.method):
        d = {sec: (body if keys is None else {k: body[k] for k in keys if k in body})
             for sec, keys in EXACT_RELEVANT.items() for body in [d.get(sec) or {}]}
    for sec, keys in NOT_RESULT.items():
        for k in keys:
            d.get(sec, {}).pop(k, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def _overrides(where, value, errors) -> dict:
    """A variant / axis value as {section: {key: value}}: a table of section tables, or dotted
    keys ``"section.key" = value``."""
    if not isinstance(value, dict):
        errors.add(f"{where}: expected a table of deck overrides, e.g. {{method = {{name = "
                   f"\"fssh\"}}}} or {{\"run.seed\" = 2}}; got {value!r}")
        return {}
    out = {}
    for k, v in value.items():
        sec, dot, key = k.partition(".")
        if dot:
            if sec not in SECTIONS:
                errors.add(f"{where}: unknown section [{sec}] in '{k}'{did_you_mean(sec, SECTIONS)};"
                           " allowed: " + ", ".join(SECTIONS))
                continue
            out.setdefault(sec, {})[key] = v
        elif k in SECTIONS and isinstance(v, dict):
            out.setdefault(k, {}).update(v)
        else:
            errors.add(f"{where}: '{k}' is not a deck section{did_you_mean(k, SECTIONS)} (write "
                       f"{{{k if k in SECTIONS else 'section'} = {{key = value}}}} or "
                       f"\"section.key\" = value); sections: " + ", ".join(SECTIONS))
    return out


def _labelled(raw, key, parse, errors, what):
    """``{label: parse(label, value, errors)}`` of the table ``[key]`` (None for a broken entry)."""
    table = raw.get(key, {})
    if not isinstance(table, dict):
        errors.add(f"[{key}] must be a table: {what}")
        return {}
    return {label: parse(label, value, errors) for label, value in table.items()}


def _method_variant(label, value, errors) -> dict | None:
    """``label = "fssh"`` (a method name), ``label = {name = "fssh", decoherence = "edc"}`` ([method]
    keys) or ``label = {method = {...}, initial = {...}}`` (overrides of any section)."""
    where = f"[methods] {label!r}"
    n = len(errors.errors)
    if isinstance(value, str):
        return {"method": {"name": value}}
    if isinstance(value, dict) and value and any(
            (k in SECTIONS and isinstance(v, dict)) or "." in k for k, v in value.items()):
        ov = _overrides(where, value, errors)
        if "method" in ov and "name" not in ov["method"]:
            errors.add(f"{where}: the method override needs name (method = {{name = ...}})")
    elif isinstance(value, dict):
        ov = {"method": dict(value)}
        if "name" not in value:
            errors.add(f"{where}: a method variant needs name (e.g. {{name = \"fssh\", decoherence "
                       "= \"edc\"}}), or tables of section overrides ({method = {...}, initial = "
                       "{...}})")
    else:
        errors.add(f"{where}: expected a method name or a table, got {value!r}")
    return ov if len(errors.errors) == n else None


def _axis(name, value, errors) -> dict | None:
    """An axis: ``"section.key" = [v1, v2, ...]`` (one key; labels "key=v") or a table of
    labelled overrides ``[axes.NAME]  label = {section = {...}}``. None if it is broken."""
    if isinstance(value, list):
        sec, dot, key = name.partition(".")
        if not dot or sec not in SECTIONS:
            errors.add(f"[axes] {name!r}: a list of values needs a dotted deck key as its name "
                       "(e.g. \"run.seed\" = [1, 2, 3]), or make it a table of labelled overrides "
                       "([axes.NAME] label = {section = {key = value}})" + did_you_mean(sec, SECTIONS))
            return None
        values = {f"{key}={_label(v)}": {sec: {key: v}} for v in value}
    elif isinstance(value, dict):
        values = {(str(lab) if "=" in str(lab) else f"{name}={lab}"):
                  _overrides(f"[axes.{name}] {lab!r}", v, errors) for lab, v in value.items()}
    else:
        errors.add(f"[axes] {name!r}: expected a list of values or a table of labelled overrides")
        return None
    if not values:
        errors.add(f"[axes] {name!r}: no values")
        return None
    return values


def _label(v):
    if isinstance(v, list) and len(v) == 1:
        v = v[0]
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).replace(" ", "")


def file_name(parts) -> str:
    """A file name from labels: characters other than letters, digits and ``+=.,-`` become
    ``_``; parts joined by ``__``."""
    return "__".join(re.sub(r"[^A-Za-z0-9+=.,-]+", "_", str(p)).strip("_") or "_" for p in parts)


def _merge(raw, ov):
    for sec, body in ov.items():
        raw.setdefault(sec, {})
        if isinstance(raw[sec], dict):
            raw[sec].update(copy.deepcopy(body))
    return raw


def _exact_key(raw):
    """The part of a (raw, merged) deck that determines the exact reference."""
    out = {}
    for sec, keys in EXACT_RELEVANT.items():
        body = raw.get(sec, {}) or {}
        out[sec] = dict(body) if keys is None else {k: body[k] for k in keys if k in body}
    return json.dumps(out, sort_keys=True, default=str)


def load_study(path, overrides=None) -> Study:
    """Read, validate and expand a study file (every problem reported at once, before any
    run). ``overrides``: ``--set`` strings applied to every deck (trajectory and exact runs)."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"study file {path} not found")
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"study {path} is not valid TOML: {exc}") from None
    errors = ErrorList()
    unknown = [k for k in raw if k not in TOP]
    if unknown:
        errors.add("study: unknown table(s) " + ", ".join(f"[{u}]{did_you_mean(u, TOP)}"
                                                           for u in unknown)
                   + "; allowed: " + ", ".join(f"[{t}]" for t in TOP))
    head = {}
    with errors.check():
        head = validate_section("study", raw.get("study", {}), STUDY_KEYS)
    here = path.resolve().parent
    base = {}
    if head.get("base"):
        bpath = (here / head["base"]).resolve()
        try:
            base = tomllib.loads(bpath.read_text(encoding="utf-8"))
        except FileNotFoundError:
            errors.add(f"[study] base = '{head['base']}': no such file ({bpath})")
        except tomllib.TOMLDecodeError as exc:
            errors.add(f"[study] base deck {bpath} is not valid TOML: {exc}")
        base_dir = bpath.parent
    else:
        base_dir = here
    inline = raw.get("deck", {})
    if not isinstance(inline, dict):
        errors.add("[deck] must be a table of deck sections")
        inline = {}
    with errors.check():
        bad = [k for k in inline if k not in SECTIONS]
        if bad:
            raise DeckError("[deck] unknown section(s) " + ", ".join(
                f"{b}{did_you_mean(b, SECTIONS)}" for b in bad) + "; allowed: " + ", ".join(SECTIONS))
    _merge(base, {k: v for k, v in inline.items() if k in SECTIONS and isinstance(v, dict)})
    model = base.get("model", {})
    if isinstance(model, dict) and model.get("file") and not Path(model["file"]).is_absolute():
        model["file"] = str((base_dir / model["file"]).resolve())   # decks are written elsewhere
    if raw.get("methods"):
        base.pop("method", None)           # the variants name the methods
    if isinstance(base.get("output"), dict):
        base["output"].pop("file", None)   # each run's file is named from its labels

    methods = _labelled(raw, "methods", _method_variant, errors, "label = {name = ..., ...}")
    if not methods:
        if "method" in base:
            methods[str(base["method"].get("name", "method"))] = {}
        elif head.get("exact") is False:
            errors.add("study: no [methods] and no [method] in the base deck: nothing to run")
    axes = _labelled(raw, "axes", _axis, errors, '"section.key" = [values] or [axes.NAME]')
    if head.get("scan") and head["scan"] not in axes:
        errors.add(f"[study] scan = '{head['scan']}' is not an axis{did_you_mean(head['scan'], axes)}"
                   "; axes: " + (", ".join(axes) or "(none)"))
    exact_ov = head.get("exact", True)
    if not isinstance(exact_ov, (bool, dict)):
        errors.add(f"[study] exact = {exact_ov!r}: expected true, false or a table of overrides")
        exact_ov = True
    exact_ov = _overrides("[study] exact", exact_ov, errors) if isinstance(exact_ov, dict) else (
        {} if exact_ov else None)
    if "runs" not in head:                 # [study] itself is broken: nothing to expand
        _raise_grouped(errors)
    stem = path.stem
    runs_dir = (here / head["runs"]) if head["runs"] else here / f"{stem}_runs"
    report_dir = (here / head["report"]) if head["report"] else runs_dir
    st = Study(path=path, title=head["title"] or stem, runs_dir=runs_dir.resolve(),
               report_dir=report_dir.resolve(), scan=head["scan"], case_figures=head["case_figures"],
               axes={k: v for k, v in axes.items() if v is not None},
               methods={k: v for k, v in methods.items() if v is not None},
               text=text, notes=head["notes"])
    _expand(st, base, exact_ov, overrides, errors)
    _raise_grouped(errors)
    return st


def _validated(raw, where, errors, for_exact=False, overrides=None):
    try:
        return read_deck(raw, for_exact=for_exact, overrides=overrides)
    except DeckError as exc:
        for e in exc.errors:
            errors.add(f"{where}: {e}")
        return None


def _expand(st: Study, base, exact_ov, overrides, errors):
    """Fill ``st.runs`` (product of the axes and the methods) and ``st.exact_runs`` (one per
    distinct physical case)."""
    axis_items = [[(name, lab, ov) for lab, ov in values.items()] for name, values in st.axes.items()]
    by_exact = {}
    seen_names = {}
    for combo in product(*axis_items) if axis_items else [()]:
        raw0 = copy.deepcopy(base)
        for _, _, ov in combo:
            _merge(raw0, ov)
        labels = {name: lab for name, lab, _ in combo}
        where0 = ", ".join(lab for _, lab, _ in combo)
        for mlabel, mov in (st.methods.items() if st.methods else [("", {})]):
            raw = _merge(copy.deepcopy(raw0), mov)
            if "method" in mov:            # a variant's method table replaces the base's
                raw["method"] = copy.deepcopy(mov["method"])
            where = f"study run ({where0 + ', ' if where0 else ''}method {mlabel!r})"
            deck = _validated(raw, where, errors, overrides=overrides)
            if deck is None:
                continue
            case_labels = [lab for name, lab, ov in combo if _touches_exact(ov)]
            case = " ".join(case_labels) if case_labels else "case"
            name = file_name(list(labels.values()) + [mlabel])
            if name in seen_names:
                errors.add(f"{where}: its file name {name}.h5 (from the labels) is the same as "
                           f"that of {seen_names[name]}: give the labels distinct names")
                continue
            seen_names[name] = where
            run = Run(labels={**labels, "method": mlabel}, deck=deck, raw=raw, name=name,
                      case=case, variant=mlabel, case_labels=case_labels)
            st.runs.append(run)
            if exact_ov is None:
                continue
            key = _exact_key(raw)
            if key not in by_exact:
                ex = {k: copy.deepcopy(v) for k, v in raw.items() if k != "method"}
                ex.get("initial", {}).pop("sampling", None)
                _merge(ex, exact_ov)
                edeck = _validated(ex, f"exact reference of {where}", errors, for_exact=True,
                                   overrides=overrides)
                if edeck is None:
                    continue
                ename = file_name(case_labels + ["exact"]) if case_labels else "exact"
                if any(e.name == ename for e in by_exact.values()):
                    ename = file_name(case_labels + ["exact", str(len(by_exact))])
                by_exact[key] = Run(labels={**{n: lab for n, lab, ov in combo if _touches_exact(ov)},
                                            "method": "exact"}, deck=edeck, raw=ex, name=ename,
                                    exact=True, case=case, variant="exact")
                st.exact_runs.append(by_exact[key])
            run.reference = by_exact.get(key)
            if run.reference is not None:
                run.case = run.reference.case
    # a method variant that changes the physics makes its own case: name the cases uniquely
    cases = {}
    for ex in st.exact_runs:
        cases.setdefault(ex.case, []).append(ex)
    for c, exs in cases.items():
        if len(exs) > 1:
            for j, ex in enumerate(exs):
                ex.case = f"{c} #{j + 1}"
    for r in st.runs:
        if r.reference is not None:
            r.case = r.reference.case


def _touches_exact(ov) -> bool:
    for sec, body in ov.items():
        keys = EXACT_RELEVANT.get(sec, ())
        if keys is None or any(k in (keys or ()) for k in body):
            return True
    return False


def deck_text(run: Run, study: Study) -> str:
    """The TOML deck of a run as written next to its result (the merged deck, overrides
    applied; a comment names the study and the labels)."""
    return (f"# {'exact reference' if run.exact else 'run'} of study {study.path.name}: "
            + ", ".join(f"{k} = {v}" for k, v in run.labels.items()) + "\n"
            + "\n".join(ln for ln in run.deck.text.splitlines() if not ln.startswith("# deck"))
            + "\n")
