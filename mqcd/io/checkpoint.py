"""Checkpoints: the complete state of a swarm run in one HDF5 file, for ``mqcd run --restart``.

Written every ``[output] checkpoint_every`` steps, at the end of a run (so ``t_end`` can be
extended later), and when a run stops on non-finite numbers. The file sits next to the output,
``OUTPUT.h5.ckpt``, and is replaced atomically: the state is written to ``OUTPUT.h5.ckpt.tmp``,
flushed to disk (fsync), then renamed over the old checkpoint with ``os.replace``. A crash or a
``kill -9`` at any moment therefore leaves either the previous complete checkpoint or the new
one, never a partial file (a stale ``.tmp`` may remain and is ignored/overwritten).

Contents (global trajectory order; under MPI rank 0 gathers and writes one file):

* ``swarm/*``: per-trajectory state: ``index`` (global trajectory index), ``keys`` (random-stream
  keys), ``x``, ``p``, ``rho``, ``active``, ``F`` (force for the next half kick), ``E0`` (initial
  energies, for the drift), ``E`` and ``V`` (adiabatic cache: a warm start for eigensolvers);
  ``H``/``dH`` are not stored: they are recomputed from ``x`` (models are pure functions of x);
* ``counters/*``: per-trajectory counters (FSSH: hops, frustrated hops);
* ``method/*``: ``method.state_dict()`` (FSSH: the adiabatic populations ``P`` of the last step);
* ``record/*``: the recorder's rows so far (the time series), with units;
* ``dropped/*``: trajectories removed for non-finite values (global index, time, quantity mask);
* attributes: format, mqcd version, the deck text and the validated deck (JSON), the step, the
  adiabatic-cache step, whether the step's checks/records were done, whether the run had exited.

Integrity: every dataset carries the SHA-256 of its bytes (attribute ``sha256``, with dtype and
shape) and the file the SHA-256 of its attributes (``sha256_attrs``); :func:`read_checkpoint`
verifies them all, so a changed value, a damaged block or an edited attribute is refused with the
name of the dataset instead of restarting into wrong results. The checkpoint also records the
fingerprint of a user model's source file (``model_file``, ``model_sha256``): a restart after the
file was edited is refused, naming it (the run would otherwise continue with another Hamiltonian).

Random numbers: the per-trajectory streams are counter based (a hash of the trajectory key, the
step and the stream number, mqcd.ensemble.streams), so there is no generator state to save:
the keys and the step number determine every future draw.
"""
from __future__ import annotations

import hashlib
import json
import os  # noqa: F401  (tests spy on ckmod.os.replace)
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .atomic import write_h5
from .schema import DeckError

FORMAT = 2              # 2: checksums and the model fingerprint; 1 (no checksums) is still read
SUFFIX = ".ckpt"
TMP_SUFFIX = ".tmp"

# keys that may change between the interrupted run and the restart (nothing physical):
RESTART_MAY_CHANGE = {
    ("run", "t_end"): "extend (or shorten, down to the checkpoint) the run",
    ("run", "on_nonfinite"): "e.g. switch to 'drop' after a run stopped on non-finite numbers",
    ("output", "checkpoint_every"): "checkpoint frequency",
    ("output", "file"): "the output name (the checkpoint is found next to the output you give)",
    ("run", "energy_tolerance"): "the energy-drift tolerance (e.g. after a stop on drift)",
    ("run", "on_energy_drift"): "'warn' or 'stop' on an energy drift beyond the tolerance",
    ("run", "on_unstable_step"): "the time-step check before the first step (not made on restart)",
}
RESTART_IGNORED_SECTIONS = ("exact",)   # not used by swarm runs


class RestartError(DeckError):
    """A restart was refused (deck changed, checkpoint beyond t_end, unreadable checkpoint)."""


@dataclass
class Checkpoint:
    """In-memory checkpoint (global arrays, as read from or written to the file)."""
    step: int
    deck_text: str
    deck_dict: dict
    arrays: dict = field(default_factory=dict)     # "swarm/x", "counters/hops", "method/P", ...
    records: dict = field(default_factory=dict)    # "populations/adiabatic": (nrec, ns), ...
    units: dict = field(default_factory=dict)      # record name -> units
    dropped: dict = field(default_factory=dict)    # "index", "time", "quantity"
    attrs: dict = field(default_factory=dict)      # adiabatic_step, post_step_done, exited, ...

    @property
    def ntraj(self):
        return int(self.arrays["swarm/index"].shape[0])


def checkpoint_path(output) -> Path:
    """The checkpoint that belongs to the output file ``output`` (``out.h5`` -> ``out.h5.ckpt``)."""
    return Path(str(output) + SUFFIX)


def temporary_path(path) -> Path:
    return Path(str(path) + TMP_SUFFIX)


def array_sha256(arr) -> str:
    """SHA-256 of an array's dtype, shape and bytes (C order)."""
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def _norm(v):
    if isinstance(v, bytes):
        return v.decode()
    return v.item() if isinstance(v, np.generic) else v


def attrs_sha256(attrs: dict) -> str:
    """SHA-256 of the root attributes (all but ``sha256_attrs`` itself), canonical JSON."""
    canon = {k: _norm(v) for k, v in attrs.items() if k != "sha256_attrs"}
    return hashlib.sha256(json.dumps(canon, sort_keys=True, default=str).encode()).hexdigest()


def write_checkpoint(path, ck: Checkpoint):
    """Write ``ck`` to ``path`` atomically (built in memory, ``path.tmp``, fsync, ``os.replace``),
    with a checksum per dataset and one of the attributes."""
    path = Path(path)

    def fill(f):
        attrs = {"format": FORMAT, "step": int(ck.step), "deck": ck.deck_text,
                 "deck_json": json.dumps(ck.deck_dict, sort_keys=True), **ck.attrs}
        for k, v in attrs.items():
            f.attrs[k] = v
        f.attrs["sha256_attrs"] = attrs_sha256(dict(f.attrs))

        def put(name, arr, units=None):
            arr = np.asarray(arr)
            ds = f.create_dataset(name, data=arr)
            ds.attrs["sha256"] = array_sha256(arr)
            if units is not None:
                ds.attrs["units"] = units
        for name, arr in ck.arrays.items():
            put(name, arr)
        for name, arr in ck.records.items():
            put("record/" + name, arr, ck.units.get(name, ""))
        for name, arr in ck.dropped.items():
            put("dropped/" + name, arr)
    return write_h5(path, fill, tmp=temporary_path(path))


def read_checkpoint(path, verify=True) -> Checkpoint:
    """Read a checkpoint written by :func:`write_checkpoint`; with ``verify`` (default) check
    every checksum and raise :class:`RestartError` naming what does not match."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint {path} to restart from (it is written next to the "
                                "output when [output] checkpoint_every > 0); run without --restart")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise RestartError(f"checkpoint {path} is not readable: {exc}") from None
    bad = []
    try:
        with f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            fmt = int(attrs.get("format", -1))
            if fmt not in (1, FORMAT):
                raise RestartError(f"checkpoint {path} has format {attrs.get('format')}, this mqcd "
                                   f"reads formats 1 and {FORMAT}")
            if verify and fmt == 1:
                warnings.warn(f"checkpoint {path} (format 1, an older mqcd) has no checksums: its "
                              "integrity cannot be verified", RuntimeWarning, stacklevel=2)
            elif verify and attrs.get("sha256_attrs") != attrs_sha256(attrs):
                bad.append("the attributes (step, deck, ...)")
            arrays, records, units, dropped = {}, {}, {}, {}

            def visit(name, obj):
                if not isinstance(obj, h5py.Dataset):
                    return
                val = obj[()]
                if verify and fmt >= 2:
                    want = obj.attrs.get("sha256", b"")
                    want = want.decode() if isinstance(want, bytes) else str(want)
                    if want != array_sha256(val):
                        bad.append(f"dataset {name}")
                top, _, rest = name.partition("/")
                if top == "record":
                    records[rest] = val
                    u = obj.attrs.get("units", "")
                    units[rest] = u.decode() if isinstance(u, bytes) else str(u)
                elif top == "dropped":
                    dropped[rest] = val
                else:
                    arrays[name] = val
            f.visititems(visit)
    except (OSError, KeyError) as exc:
        raise RestartError(f"checkpoint {path} is damaged and cannot be read ({exc})") from None
    if bad:
        raise RestartError(f"checkpoint {path} is corrupt: " + ", ".join(bad[:5])
                           + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                           + " do not match the checksums written with it (the file was changed "
                           "or damaged after it was written). Restarting would give wrong "
                           "results; start the run afresh (without --restart, with --force)")
    step = int(attrs.pop("step"))
    text = attrs.pop("deck")
    deck_dict = json.loads(attrs.pop("deck_json"))
    attrs.pop("format")
    attrs.pop("sha256_attrs", None)
    attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}
    return Checkpoint(step=step, deck_text=text, deck_dict=deck_dict, arrays=arrays,
                      records=records, units=units, dropped=dropped, attrs=attrs)


def _flatten(d, prefix=()):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = v
    return out


def deck_changes(old: dict, new: dict):
    """Differences between two validated decks (``Deck.as_dict()``), as (refused, allowed) lists
    of readable strings such as ``"[run] dt: 0.5 -> 0.25"``."""
    a, b = _flatten(old), _flatten(new)
    refused, allowed = [], []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "(absent)"), b.get(key, "(absent)")
        if va == vb or key[0] in RESTART_IGNORED_SECTIONS:
            continue
        what = f"[{key[0]}] {'.'.join(key[1:])}: {va!r} -> {vb!r}"
        (allowed if key[:2] in RESTART_MAY_CHANGE else refused).append(what)
    return refused, allowed


def check_restart(ck: Checkpoint, deck, path, nsteps, fingerprint=None):
    """Refuse a restart whose deck changed anything but the keys in ``RESTART_MAY_CHANGE``, or
    whose user model file changed (``fingerprint``: ``{"model_file", "model_sha256"}`` of the
    model now, see :func:`mqcd.models.model_fingerprint`)."""
    new = json.loads(json.dumps(deck.as_dict(), sort_keys=True))
    refused, _ = deck_changes(ck.deck_dict, new)
    if refused:
        may = ", ".join(f"[{s}] {k}" for s, k in RESTART_MAY_CHANGE)
        raise RestartError(f"cannot restart from {path}: the deck changed since the checkpoint: "
                           + "; ".join(refused) + f". Only {may} may change on a restart; start a "
                           "new run (without --restart) to change anything else")
    old = ck.attrs.get("model_sha256", "")
    if fingerprint and old and fingerprint.get("model_sha256") != old:
        raise RestartError(f"cannot restart from {path}: the model file "
                           f"{fingerprint.get('model_file') or ck.attrs.get('model_file')} changed "
                           "since the checkpoint was written (SHA-256 of its source differs); the "
                           "continued run would mix two Hamiltonians. Undo the edit to continue, "
                           "or start a new run (without --restart, with --force)")
    if ck.step > nsteps:
        raise RestartError(f"cannot restart from {path}: the checkpoint is at step {ck.step} "
                           f"(t = {ck.step * deck.run['dt']:g} a.u.), beyond the deck's t_end = "
                           f"{deck.run['t_end']:g} a.u. ({nsteps} steps)")
