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

Random numbers: the per-trajectory streams are counter based (a hash of the trajectory key, the
step and the stream number, mqcd.ensemble.streams), so there is no generator state to save:
the keys and the step number determine every future draw.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .schema import DeckError

FORMAT = 1
SUFFIX = ".ckpt"
TMP_SUFFIX = ".tmp"

# keys that may change between the interrupted run and the restart (nothing physical):
RESTART_MAY_CHANGE = {
    ("run", "t_end"): "extend (or shorten, down to the checkpoint) the run",
    ("run", "on_nonfinite"): "e.g. switch to 'drop' after a run stopped on non-finite numbers",
    ("output", "checkpoint_every"): "checkpoint frequency",
    ("output", "file"): "the output name (the checkpoint is found next to the output you give)",
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


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(path, ck: Checkpoint):
    """Write ``ck`` to ``path`` atomically (``path.tmp``, fsync, ``os.replace``)."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["step"] = int(ck.step)
            f.attrs["deck"] = ck.deck_text
            f.attrs["deck_json"] = json.dumps(ck.deck_dict, sort_keys=True)
            for k, v in ck.attrs.items():
                f.attrs[k] = v
            for name, arr in ck.arrays.items():
                f.create_dataset(name, data=np.asarray(arr))
            for name, arr in ck.records.items():
                ds = f.create_dataset("record/" + name, data=np.asarray(arr))
                ds.attrs["units"] = ck.units.get(name, "")
            for name, arr in ck.dropped.items():
                f.create_dataset("dropped/" + name, data=np.asarray(arr))
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    try:                                    # make the rename itself durable
        _fsync(path.parent if str(path.parent) else ".")
    except OSError:
        pass
    return path


def read_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by :func:`write_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint {path} to restart from (it is written next to the "
                                "output when [output] checkpoint_every > 0); run without --restart")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise RestartError(f"checkpoint {path} is not readable: {exc}") from None
    with f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        if int(attrs.get("format", -1)) != FORMAT:
            raise RestartError(f"checkpoint {path} has format {attrs.get('format')}, this mqcd "
                               f"reads format {FORMAT}")
        arrays, records, units, dropped = {}, {}, {}, {}

        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset):
                return
            top, _, rest = name.partition("/")
            if top == "record":
                records[rest] = obj[()]
                u = obj.attrs.get("units", "")
                units[rest] = u.decode() if isinstance(u, bytes) else str(u)
            elif top == "dropped":
                dropped[rest] = obj[()]
            else:
                arrays[name] = obj[()]
        f.visititems(visit)
    step = int(attrs.pop("step"))
    text = attrs.pop("deck")
    deck_dict = json.loads(attrs.pop("deck_json"))
    attrs.pop("format")
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


def check_restart(ck: Checkpoint, deck, path, nsteps):
    """Refuse a restart whose deck changed anything but the keys in ``RESTART_MAY_CHANGE``."""
    new = json.loads(json.dumps(deck.as_dict(), sort_keys=True))
    refused, _ = deck_changes(ck.deck_dict, new)
    if refused:
        may = ", ".join(f"[{s}] {k}" for s, k in RESTART_MAY_CHANGE)
        raise RestartError(f"cannot restart from {path}: the deck changed since the checkpoint: "
                           + "; ".join(refused) + f". Only {may} may change on a restart; start a "
                           "new run (without --restart) to change anything else")
    if ck.step > nsteps:
        raise RestartError(f"cannot restart from {path}: the checkpoint is at step {ck.step} "
                           f"(t = {ck.step * deck.run['dt']:g} a.u.), beyond the deck's t_end = "
                           f"{deck.run['t_end']:g} a.u. ({nsteps} steps)")
