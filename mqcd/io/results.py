"""Run results in memory and in HDF5.

A :class:`Result` is a flat mapping from HDF5 dataset paths (``"populations/adiabatic"``) to numpy
arrays, with a unit string per dataset and root attributes. ``mqcd.run`` returns one, the CLI
writes it with :func:`write_result`, and :func:`load` reads any mqcd file back into the same form.
The layout is documented in docs/output.md.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np


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


def check_writable(path, force=False):
    """Refuse to overwrite an existing file unless ``force``; called before any compute."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"output file {path} exists; use --force (or force=True) to overwrite, "
                              f"or set [output] file to another name")
    if not path.parent.exists():
        raise FileNotFoundError(f"output directory {path.parent} does not exist")


def write_result(path, result: Result, force=False):
    """Write ``result`` to ``path`` atomically (temporary file in the same folder, then rename).

    An existing file is never replaced unless ``force``; a crash mid-write leaves the old file.
    """
    path = Path(path)
    check_writable(path, force)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            for k, v in result.attrs.items():
                if isinstance(v, (dict, list)):
                    v = json.dumps(v)
                f.attrs[k] = v
            for name, arr in result.data.items():
                ds = f.create_dataset(name, data=arr)
                ds.attrs["units"] = result.units.get(name, "")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load(path) -> Result:
    """Read an mqcd HDF5 file back into a :class:`Result`."""
    res = Result()
    with h5py.File(path, "r") as f:
        for k, v in f.attrs.items():
            res.attrs[k] = v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item")
                                                                    and np.ndim(v) == 0 else v)

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                res.data[name] = obj[()]
                u = obj.attrs.get("units", "")
                res.units[name] = u.decode() if isinstance(u, bytes) else str(u)
        f.visititems(visit)
    res.attrs["path"] = str(path)
    return res
