"""Electronic models: built-ins registered by name, and user models loaded from a file.

>>> from mqcd.models import build_model
>>> m = build_model({"name": "tully1"})
>>> H, dH = m.evaluate([[0.0]])
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

from .base import Model
from .tully import DoubleArch, Tully1, Tully2, Tully3
from .multidim import ConicalIntersection2D, SpinBoson

BUILTIN = {cls.name: cls for cls in (Tully1, Tully2, Tully3, DoubleArch,
                                     ConicalIntersection2D, SpinBoson)}

__all__ = ["Model", "BUILTIN", "build_model", "load_user_model"]


def load_user_model(file, cls_name, base_dir=None):
    """Import class ``cls_name`` from the Python file ``file`` (relative to ``base_dir``)."""
    path = Path(file)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if not path.is_file():
        raise ValueError(f"[model] file = '{file}': no such file ({path})")
    spec = importlib.util.spec_from_file_location(f"mqcd_user_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # numba's cache of user kernels needs an importable module
    spec.loader.exec_module(module)
    cls = getattr(module, cls_name, None)
    if cls is None:
        found = [n for n, o in vars(module).items()
                 if inspect.isclass(o) and issubclass(o, Model) and o is not Model]
        raise ValueError(f"[model] class = '{cls_name}' not found in {path}; "
                         f"Model subclasses there: {found or 'none'}")
    if not (inspect.isclass(cls) and issubclass(cls, Model)):
        raise ValueError(f"[model] class = '{cls_name}' in {path} must subclass mqcd.models.Model")
    return cls


def build_model(section: dict, base_dir=None) -> Model:
    """Build a model from a deck's ``[model]`` section (already type-checked).

    Keys: ``name`` (a built-in) or ``file`` + ``class`` (a user model), optional ``mass`` and
    any of the model's declared parameters.
    """
    section = dict(section)
    name = section.pop("name", None)
    file = section.pop("file", None)
    cls_name = section.pop("class", None)
    if file is not None:
        if cls_name is None:
            raise ValueError("[model] file is given but class is missing: name the Model subclass")
        cls = load_user_model(file, cls_name, base_dir)
    elif name is not None:
        if name not in BUILTIN:
            raise ValueError(f"[model] name = '{name}' is not a built-in model; allowed: "
                             f"{', '.join(sorted(BUILTIN))} (or file + class for your own)")
        cls = BUILTIN[name]
    else:
        raise ValueError("[model] needs name (a built-in: " + ", ".join(sorted(BUILTIN))
                         + ") or file + class (your own model)")
    return cls(**section)
