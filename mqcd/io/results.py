"""Run results in memory and in HDF5.

A :class:`Result` is a flat mapping from HDF5 dataset paths (``"populations/adiabatic"``) to numpy
arrays, with a unit string per dataset and root attributes. ``mqcd.run`` returns one, the CLI
writes it with :func:`write_result`, and :func:`load` reads any mqcd file back into the same form.
The layout is documented in docs/output.md.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from .atomic import probe_folder, write_h5


class Result:
    """Named arrays of one run (trajectory swarm or exact grid).

    Access datasets as ``res["populations/adiabatic"]``; ``res.units[name]`` is the unit string;
    ``res.attrs`` holds ``method``, ``model``, ``deck``, ``seed``, ``mqcd_version`` and more.
    """

    def __init__(self, data=None, units=None, attrs=None):
        self.data: dict[str, np.ndarray] = dict(data or {})
        self.units: dict[str, str] = dict(units or {})
        self.attrs: dict = dict(attrs or {})

    def add(self, name, array, units=""):
        self.data[name] = np.asarray(array)
        self.units[name] = units

    def __getitem__(self, name):
        return self.data[name]

    def __contains__(self, name):
        return name in self.data

    def keys(self):
        return self.data.keys()

    def get(self, name, default=None):
        return self.data.get(name, default)

    @property
    def method(self):
        return self.attrs.get("method", "")

    @property
    def is_exact(self):
        return self.attrs.get("method") == "exact"

    def __repr__(self):
        return (f"<mqcd.Result method={self.attrs.get('method')!r} model={self.attrs.get('model')!r}"
                f" datasets={len(self.data)}>")


class ResultFileError(ValueError):
    """A file given to ``load`` (``mqcd summary``, ``mqcd compare``) is not a readable mqcd
    output; the message says what it is instead."""


def check_writable(path, force=False, probe=True):
    """Refuse to overwrite an existing file unless ``force``; called before any compute.

    Also refuses a path that is a directory or whose folder does not exist, and, with ``probe``,
    creates (and removes) a temporary file in that folder, so that a read-only folder is found
    now and not after the whole compute.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, f"output {path} is a directory; give a file name (-o / [output] "
                                "file)")
    if path.exists() and not force:
        raise FileExistsError(f"output file {path} exists; use --force (or force=True) to overwrite, "
                              f"or set [output] file to another name")
    if not path.parent.exists():
        raise FileNotFoundError(f"output directory {path.parent} does not exist")
    if probe:
        probe_folder(path)


def _fill(result):
    def fill(f):
        for k, v in result.attrs.items():
            if isinstance(v, (dict, list)):
                v = json.dumps(v)
            f.attrs[k] = v
        for name, arr in result.data.items():
            ds = f.create_dataset(name, data=arr)
            ds.attrs["units"] = result.units.get(name, "")
    return fill


def write_result(path, result: Result, force=False):
    """Write ``result`` to ``path`` atomically (built in memory, temporary file in the same folder,
    fsync, rename; see :mod:`mqcd.io.atomic`).

    An existing file is never replaced unless ``force``; a crash mid-write leaves the old file; a
    full disk or a read-only folder raises OSError (the interpreter never crashes).
    """
    path = Path(path)
    check_writable(path, force, probe=False)
    write_h5(path, _fill(result))
    return path


def load(path) -> Result:
    """Read an mqcd HDF5 file back into a :class:`Result`.

    Raises
    ------
    ResultFileError
        ``path`` is missing, a directory, not HDF5, truncated or damaged, a checkpoint, an HDF5
        file not written by mqcd, or an mqcd file without a time series.
    """
    path = Path(path)
    if not path.exists():
        raise ResultFileError(f"{path}: no such file")
    if path.is_dir():
        raise ResultFileError(f"{path} is a directory, not an mqcd output file")
    if path.stat().st_size == 0:
        raise ResultFileError(f"{path} is empty (0 bytes): not an mqcd output file (a run that "
                              "was killed while writing leaves no such file: was it truncated?)")
    if not h5py.is_hdf5(path):
        raise ResultFileError(f"{path} is not an HDF5 file (mqcd writes its results as HDF5: "
                              "mqcd run / mqcd exact)")
    res = Result()
    try:
        with h5py.File(path, "r") as f:
            if "deck_json" in f.attrs and "swarm" in f:
                raise ResultFileError(f"{path} is a checkpoint, not an output file: continue "
                                      "the run with `mqcd run DECK --restart` to write the output")
            if "mqcd_version" not in f.attrs or "method" not in f.attrs:
                raise ResultFileError(f"{path} is an HDF5 file but not an mqcd output (no "
                                      "mqcd_version/method attributes)")
            for k, v in f.attrs.items():
                res.attrs[k] = v.decode() if isinstance(v, bytes) else (
                    v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v)

            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    res.data[name] = obj[()]
                    u = obj.attrs.get("units", "")
                    res.units[name] = u.decode() if isinstance(u, bytes) else str(u)
            f.visititems(visit)
    except ResultFileError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise ResultFileError(f"{path} could not be read: it is truncated or damaged "
                              f"({type(exc).__name__}: {exc})") from None
    if "time" not in res.data or not np.size(res.data["time"]):
        raise ResultFileError(f"{path} is an mqcd file without a time series (no 'time' dataset)")
    res.attrs["path"] = str(path)
    return res
