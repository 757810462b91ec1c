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

# Named dimensions of the datasets mqcd writes (HDF5 dimension scales, so that netCDF readers such
# as ``xarray.open_datatree(path, engine="h5netcdf")`` see them). "time" is the root dataset
# ``time``; "state", "state2" (second index of rho_nm) and "dof" are index coordinates written at
# the root; "trajectory" is ``final/trajectory`` (the global trajectory index = its random
# stream); "dropped_index" is ``diagnostics/dropped_index``; "grid_x"/"grid_y" are the exact
# solver's grid axes ``density/grid_x|y``; "side" (x_0 < 0, x_0 > 0) is ``exact/side``.
_TS = ("time",)
DIMS = {
    "time": _TS, "norm": _TS,
    "populations/adiabatic": ("time", "state"), "populations/diabatic": ("time", "state"),
    "populations/active": ("time", "state"), "populations/adiabatic_std": ("time", "state"),
    "populations/diabatic_mixed": ("time", "state"),
    "nuclear/position_mean": ("time", "dof"), "nuclear/momentum_mean": ("time", "dof"),
    "diagnostics/force_correction_mean": ("time", "dof"),
    "diagnostics/force_correction_rms": ("time", "dof"),
    "diagnostics/bandwidth_density": ("time", "dof"),
    "diagnostics/bandwidth_regression": ("time", "dof"),
    "branching/transmission": ("state",), "branching/reflection": ("state",),
    "diagnostics/dropped_index": ("dropped_index",),
    "diagnostics/dropped_time": ("dropped_index",),
    "diagnostics/dropped_quantity": ("dropped_index",),
    "final/trajectory": ("trajectory",),
    "final/position": ("trajectory", "dof"), "final/momentum": ("trajectory", "dof"),
    "final/rho_adiabatic": ("trajectory", "state", "state2"),
    "final/rho_diabatic": ("trajectory", "state", "state2"),
    "final/state_weights": ("trajectory", "state"),
    "density/grid_x": ("grid_x",), "density/grid_y": ("grid_y",),
    "exact/side": ("side",), "exact/absorbed": ("time", "side", "state"),
    "density/n": ("time", "grid_x", "grid_y"),            # (time, grid_x) in 1D
}
_LEADING = {"density/n"}           # names whose DIMS entry is cut to the dataset's rank
# index coordinates created when a dataset uses the dimension and the file has none
INDEX_COORDS = {
    "state": ("state", "adiabatic state index (0 = lowest)"),
    "state2": ("state2", "second electronic state index of rho_nm"),
    "dof": ("dof", "nuclear degree of freedom"),
    "trajectory": ("final/trajectory", "trajectory index (its random stream)"),
    "side": ("exact/side", "side of the interaction region: -1 x_0 < 0 (reflected), +1 x_0 > 0"),
}
# dimension -> the dataset that is its coordinate (dimension scale)
SCALES = {"time": "time", "dropped_index": "diagnostics/dropped_index",
          "grid_x": "density/grid_x", "grid_y": "density/grid_y",
          **{d: path for d, (path, _) in INDEX_COORDS.items()}}
# extra dataset attributes (CF conventions)
DATASET_ATTRS = {"diagnostics/dropped_quantity": {"flag_masks": np.array([1, 2, 4], np.int64),
                                                   "flag_meanings": "x p rho"}}


class Result:
    """Named arrays of one run (trajectory swarm or exact grid).

    Access datasets as ``res["populations/adiabatic"]`` or by group, ``res.populations.adiabatic``;
    ``res.units[name]`` is the unit string (pint-parsable, docs/output.md); ``res.attrs`` holds
    ``method``, ``model``, ``deck``, ``seed``, ``mqcd_version`` and more; ``res.dims_of(name)``
    names the dimensions of a dataset and :meth:`to_xarray` gives an ``xarray.DataTree``.
    """

    def __init__(self, data=None, units=None, attrs=None, dims=None):
        self.data: dict[str, np.ndarray] = dict(data or {})
        self.units: dict[str, str] = dict(units or {})
        self.attrs: dict = dict(attrs or {})
        self.dims: dict[str, tuple] = dict(dims or {})

    def add(self, name, array, units="", dims=None):
        """Store ``array`` as dataset ``name`` with its ``units``; ``dims`` names its axes (by
        default from :data:`DIMS`, else inferred from the shape, see :meth:`dims_of`)."""
        self.data[name] = np.asarray(array)
        self.units[name] = units
        if dims is not None:
            self.dims[name] = tuple(dims)

    def dims_of(self, name) -> tuple:
        """Names of the axes of dataset ``name``: given to :meth:`add`, else :data:`DIMS`, else
        inferred: axis 0 is "trajectory" under ``final/`` and "time" for a time series (length of
        ``time``); later axes of length ndof / nstates are "dof" / "state", "state2" when that is
        unambiguous, and ``<name>_dim<k>`` otherwise."""
        shape = np.shape(self.data[name])
        dims = self.dims.get(name) or DIMS.get(name)
        if name in _LEADING and name not in self.dims:
            dims = dims[:len(shape)]
        if dims is not None and len(dims) == len(shape):
            return tuple(dims)
        group, _, leaf = name.rpartition("/")
        nt = np.size(self.data["time"]) if "time" in self.data else -1
        ns, nd = int(self.attrs.get("nstates", -1)), int(self.attrs.get("ndof", -1))
        out = []
        for k, n in enumerate(shape):
            if k == 0 and group.split("/")[0] == "final":
                out.append("trajectory")
            elif k == 0 and n == nt:
                out.append("time")
            elif (n == ns) != (n == nd) and (n == ns or n == nd):
                d = "dof" if n == nd else ("state2" if "state" in out else "state")
                out.append(d if d not in out else f"{leaf}_dim{k}")
            else:
                out.append(f"{leaf}_dim{k}")
        return tuple(out)

    def groups(self) -> list[str]:
        """Top-level group names (``populations``, ``energy``, ``final``, ...)."""
        return sorted({n.split("/", 1)[0] for n in self.data if "/" in n})

    def __getattr__(self, name):
        data = self.__dict__.get("data")
        if data is None or name.startswith("_"):
            raise AttributeError(name)
        if name in data:
            return data[name]
        if any(k.startswith(name + "/") for k in data):
            return ResultGroup(self, name)
        raise AttributeError(f"{type(self).__name__} has no dataset or group {name!r}; groups: "
                             f"{', '.join(self.groups())}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.groups())
                      | {n for n in self.data if "/" not in n})

    def to_xarray(self):
        """The result as an ``xarray.DataTree`` (needs xarray): one node per HDF5 group, named
        dimensions and coordinates, ``units`` attributes, the root attributes on the root node;
        the same tree ``xarray.open_datatree(path, engine="h5netcdf")`` gives for the file."""
        try:
            import xarray as xr
        except ImportError:
            raise ImportError("Result.to_xarray needs xarray: pip install 'mqcd[analysis]'") from None
        nodes: dict[str, dict] = {}
        for name, arr, dims, attrs in _layout(self):
            group, _, leaf = name.rpartition("/")
            v = xr.Variable(dims, _plain(arr), attrs=attrs)
            nodes.setdefault("/" + group, {})[leaf] = v
        tree = {}
        for group, variables in sorted(nodes.items()):
            coords = {k: v for k, v in variables.items() if v.dims == (k,)}
            data = {k: v for k, v in variables.items() if k not in coords}
            tree[group] = xr.Dataset(data, coords=coords)
        tree.setdefault("/", xr.Dataset())
        tree["/"].attrs.update({k: (json.dumps(v) if isinstance(v, (dict, list)) else v)
                                for k, v in self.attrs.items() if k != "path"})
        return xr.DataTree.from_dict(tree)

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


class ResultGroup:
    """The datasets of one group of a :class:`Result`: ``res.final.position``,
    ``res.energy["total"]``, ``res.populations.units["adiabatic"]``."""

    def __init__(self, result, prefix):
        self._result, self._prefix = result, prefix

    def keys(self):
        n = len(self._prefix) + 1
        return sorted({k[n:].split("/", 1)[0] for k in self._result.data
                       if k.startswith(self._prefix + "/")})

    def __getitem__(self, name):
        full = f"{self._prefix}/{name}"
        if full in self._result.data:
            return self._result.data[full]
        if any(k.startswith(full + "/") for k in self._result.data):
            return ResultGroup(self._result, full)
        raise KeyError(f"{full}: no such dataset; {self._prefix}/ holds {', '.join(self.keys())}")

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(str(exc)) from None

    def __contains__(self, name):
        return name in self.keys()

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.keys()))

    @property
    def units(self):
        n = len(self._prefix) + 1
        return {k[n:]: u for k, u in self._result.units.items() if k.startswith(self._prefix + "/")}

    def __repr__(self):
        return f"<mqcd.Result group {self._prefix!r}: {', '.join(self.keys())}>"


def _plain(arr):
    """numpy array ready for HDF5/xarray (text as variable-length strings)."""
    arr = np.asarray(arr)
    return arr.astype(object) if arr.dtype.kind == "U" else arr


def _layout(result):
    """``(name, array, dims, attrs)`` of every dataset to write, the missing index coordinates
    (``state``, ``dof``, ...) first."""
    used = {}
    for name, arr in result.data.items():
        for d, n in zip(result.dims_of(name), np.shape(arr)):
            used.setdefault(d, n)
    out = []
    for d, (path, long_name) in INDEX_COORDS.items():
        if d in used and path not in result.data:
            values = np.array([-1, 1]) if d == "side" else np.arange(used[d])
            out.append((path, values, (d,), {"units": "1", "long_name": long_name,
                                              "mqcd_generated": "index coordinate"}))
    for name, arr in result.data.items():
        attrs = {"units": result.units.get(name, "") or "1", **DATASET_ATTRS.get(name, {})}
        out.append((name, arr, result.dims_of(name), attrs))
    return out


def _fill(result):
    def fill(f):
        for k, v in result.attrs.items():
            if isinstance(v, (dict, list)):
                v = json.dumps(v)
            f.attrs[k] = v
        layout = _layout(result)
        scales = {}                      # dimension name -> its dataset
        for name, arr, dims, attrs in layout:
            arr = _plain(arr)
            ds = f.create_dataset(name, data=arr, dtype=h5py.string_dtype()
                                  if arr.dtype == object else None)
            for k, v in attrs.items():
                ds.attrs[k] = v
            if len(dims) == 1 and (SCALES.get(dims[0]) == name or name.rpartition("/")[2]
                                   == dims[0]):
                ds.make_scale(dims[0])
                scales[dims[0]] = ds
        bare = {}                        # (group, dimension) -> scale without coordinate values
        for name, arr, dims, _ in layout:
            ds = f[name]
            group = name.rpartition("/")[0]
            for k, d in enumerate(dims):
                sc = scales.get(d)
                if sc is not None and sc.name == ds.name:
                    continue                               # the coordinate itself
                if sc is None or not _visible(sc.name, group):
                    # netCDF sees a dimension in the dataset's group and its parents only
                    if (group, d) not in bare:
                        bare[group, d] = _bare_scale(f, group, d, np.shape(arr)[k])
                    sc = bare[group, d]
                ds.dims[k].attach_scale(sc)
    return fill


def _visible(scale_path, group):
    """Whether a dimension scale at ``scale_path`` is in ``group`` or one of its parents."""
    where = scale_path.strip("/").rpartition("/")[0]
    return where == "" or group == where or group.startswith(where + "/")


def _bare_scale(f, group, dim, n):
    """A netCDF dimension with no coordinate values (an HDF5 dimension scale holding no data)
    in ``group``."""
    ds = f.create_dataset(f"{group}/{dim}" if group else dim, shape=(n,), dtype="f4")
    ds.make_scale("This is a netCDF dimension but not a netCDF variable.")
    ds.attrs["units"] = "1"              # for readers that expect units on every dataset
    return ds


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


def _is_bare_scale(obj):
    name = obj.attrs.get("NAME", b"")
    return (name.decode() if isinstance(name, bytes) else str(name)).startswith("This is a netCDF")


def _dim_name(dim):
    """Name of an h5py dimension from its attached scale (None when it has none)."""
    try:
        scales = list(dim.values())
    except (RuntimeError, KeyError):
        return None
    if not scales:
        return None
    ds = scales[-1]
    name = ds.attrs.get("NAME", b"")
    name = name.decode() if isinstance(name, bytes) else str(name)
    return ds.name.rsplit("/", 1)[-1] if name.startswith("This is a netCDF") or not name else name


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
                if (isinstance(obj, h5py.Dataset) and not _is_bare_scale(obj)
                        and "mqcd_generated" not in obj.attrs):
                    arr = obj[()]
                    if h5py.check_string_dtype(obj.dtype) is not None:
                        arr = obj.asstr()[()]
                        arr = np.array(arr, dtype=str) if np.ndim(arr) else str(arr)
                    res.data[name] = arr
                    u = obj.attrs.get("units", "")
                    res.units[name] = u.decode() if isinstance(u, bytes) else str(u)
                    dims = tuple(_dim_name(d) for d in obj.dims)
                    if all(dims):
                        file_dims[name] = dims
            file_dims = {}
            f.visititems(visit)
            for name, dims in file_dims.items():
                if dims != res.dims_of(name):
                    res.dims[name] = dims
    except ResultFileError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise ResultFileError(f"{path} could not be read: it is truncated or damaged "
                              f"({type(exc).__name__}: {exc})") from None
    if "time" not in res.data or not np.size(res.data["time"]):
        raise ResultFileError(f"{path} is an mqcd file without a time series (no 'time' dataset)")
    res.attrs["path"] = str(path)
    return res
