"""Deck schema primitives: the ``Key`` declaration, ``DeckError`` and the value checks.

Every part that declares deck keys (methods, the exact solver, models, the deck sections in
:mod:`mqcd.io.deck`) imports them from here, and :mod:`mqcd.io.deck` imports the parts' schemas:
one direction, no import circle.
"""
from __future__ import annotations

import copy
import difflib
import math
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

REQUIRED = object()


class DeckError(ValueError):
    """A deck is invalid; the message names the section, key and allowed values.

    ``errors`` lists every problem found (a deck reports all of them at once); the message is the
    single problem, or a numbered list of them.
    """

    what = "the deck"

    def __init__(self, message="", errors=None):
        self.errors = [str(e) for e in errors] if errors else [str(message)]
        if len(self.errors) > 1:
            message = (f"{len(self.errors)} problems in {self.what}:\n"
                       + "\n".join(f"  {i}. {e}" for i, e in enumerate(self.errors, 1)))
        elif errors:
            message = self.errors[0]
        super().__init__(message)

    def __reduce__(self):                  # picklable (study runs in worker processes)
        return (type(self), (str(self), self.errors))


class ErrorList:
    """Collects :class:`DeckError` problems so that a deck reports all of them at once::

        errors = ErrorList()
        with errors.check():
            validate_section(...)
        errors.raise_any()
    """

    def __init__(self):
        self.errors: list[str] = []

    @contextmanager
    def check(self):
        try:
            yield
        except DeckError as exc:
            self.errors.extend(exc.errors)

    def add(self, message):
        self.errors.append(str(message))

    def __bool__(self):
        return bool(self.errors)

    def raise_any(self):
        if self.errors:
            raise DeckError(errors=self.errors)


def did_you_mean(word, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options`` to a misspelled ``word`` (difflib
    similarity >= 0.6), else ''."""
    if not isinstance(word, str):
        return ""
    opts = [str(o) for o in options]
    close = difflib.get_close_matches(word, opts, n=2, cutoff=0.6)
    if not close:
        low = {o.lower(): o for o in opts}
        close = [low[word.lower()]] if word.lower() in low else []
    return (" (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)") if close else ""


@dataclass
class Key:
    """Declaration of one deck key.

    type: one of "int", "float", "str", "bool", "floats" (list of float), "ints", "any".
    default: value used when absent; ``REQUIRED`` if the key must be given.
    choices: allowed values for str keys.
    check: extra predicate ``(value) -> error message or None``.
    """
    type: str
    default: Any = REQUIRED
    doc: str = ""
    unit: str = ""
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None

    def describe_type(self):
        return {"int": "integer", "float": "number", "str": "string", "bool": "true/false",
                "floats": "list of numbers", "ints": "list of integers",
                "any": "value"}[self.type]


def positive(v):
    return None if v > 0 else "must be > 0"


def non_negative(v):
    return None if v >= 0 else "must be >= 0"


def all_positive(v):
    return None if all(x > 0 for x in v) else "every entry must be > 0"


INT_MAX = 2 ** 63 - 1      # deck integers are 64-bit (numpy int64, HDF5 attributes)


def _number(where, key, v, integer):
    """A finite float, or an int in the 64-bit range; DeckError naming the key otherwise."""
    if integer:
        if not -INT_MAX - 1 <= v <= INT_MAX:
            raise DeckError(f"{where} = {v}: out of range, deck integers are 64-bit "
                            f"(|value| < 2**63 = {INT_MAX + 1})")
        return v
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise DeckError(f"{where} = {v!r}: must be a finite number (unit: {key.unit or 'a.u.'}); "
                        "nan and inf are not allowed")
    return f


def _coerce(section, name, key: Key, value):
    where = f"[{section}] {name}"
    t = key.type
    if t == "any":
        return value
    if t == "bool":
        if not isinstance(value, bool):
            raise DeckError(f"{where} = {value!r}: expected true or false")
    elif t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise DeckError(f"{where} = {value!r}: expected an integer")
        value = _number(where, key, value, True)
    elif t == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DeckError(f"{where} = {value!r}: expected a number ({key.unit or 'a.u.'})")
        value = _number(where, key, value, False)
    elif t == "str":
        if not isinstance(value, str):
            raise DeckError(f"{where} = {value!r}: expected a string")
        if key.choices is not None and value not in key.choices:
            raise DeckError(f"{where} = '{value}' is not allowed{did_you_mean(value, key.choices)}"
                            "; allowed: " + ", ".join(f"'{c}'" for c in key.choices))
    elif t in ("floats", "ints"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise DeckError(f"{where} = {value!r}: expected a list of numbers")
        for v in value:
            ok = (isinstance(v, int) if t == "ints" else isinstance(v, (int, float)))
            if isinstance(v, bool) or not ok:
                raise DeckError(f"{where} = {value!r}: expected a {key.describe_type()}")
        value = [_number(f"{where} entry", key, v, t == "ints") for v in value]
    if key.check is not None:
        msg = key.check(value)
        if msg:
            raise DeckError(f"{where} = {value!r}: {msg}")
    return value


def validate_section(section: str, given: dict, schema: dict[str, Key], *, open_keys=()):
    """Type-check ``given`` against ``schema``; fill defaults; reject unknown keys.

    ``open_keys`` are extra names accepted without a declaration here (checked by their owner).
    Every problem of the section is reported at once (one :class:`DeckError` listing them), with
    a "did you mean" for misspelled keys.
    """
    if not isinstance(given, dict):
        raise DeckError(f"[{section}] must be a table (section), got {type(given).__name__}")
    errors = ErrorList()
    names = list(schema) + list(open_keys)
    unknown = sorted(k for k in given if k not in schema and k not in open_keys)
    if unknown:
        errors.add(f"[{section}] unknown key(s) "
                   + ", ".join(f"{k}{did_you_mean(k, names)}" for k in unknown)
                   + f"; allowed: {', '.join(names)}")
    out = {}
    for name, key in schema.items():
        if name in given:
            with errors.check():
                out[name] = _coerce(section, name, key, given[name])
        elif key.default is REQUIRED:
            errors.add(f"[{section}] {name} is required ({key.describe_type()}"
                       + (f", {key.unit}" if key.unit else "") + f"): {key.doc}")
        else:
            out[name] = copy.deepcopy(key.default)
    errors.raise_any()
    for k in open_keys:
        if k in given:
            out[k] = given[k]
    return out


def load_toml(source):
    """A deck given as a path or as TOML text: ``(raw dict, text, resolved path or None)``.

    Raises :class:`DeckError` for a missing file, bytes that are not UTF-8 (naming line and
    column) and text that is not TOML; shared by every deck reader (mqcd/jellium/deck.py too).
    """
    path = None
    p = Path(source)
    try:
        is_file = p.suffix == ".toml" or p.exists()
    except OSError:                 # TOML text too long to be a file name
        is_file = False
    if is_file:
        if not p.is_file():
            raise DeckError(f"deck file {p} not found")
        data = p.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            raise DeckError(f"deck {p} is not valid UTF-8 text: byte 0x{data[exc.start]:02x} at "
                            f"line {line}, column {col} (TOML decks are UTF-8; re-save the "
                            "file as UTF-8)") from None
        path = p.resolve()
    else:
        text = str(source)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeckError(f"deck {path or '<string>'} is not valid TOML: {exc}") from None
    return raw, text, path
