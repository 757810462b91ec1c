"""Electronic models: built-ins registered by name, and user models loaded from a file.

>>> from mqcd.models import build_model
>>> m = build_model({"name": "tully1"})
>>> H, dH = m.evaluate([[0.0]])
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path

from .base import Model
from .tully import DoubleArch, Tully1, Tully2, Tully3
from .multidim import ConicalIntersection2D, SpinBoson
from .lvc import LVC
from .exciton import FMO, Holstein
from .subotnik import Subotnik2D, SubotnikS, SubotnikX
from .shin_metiu import ShinMetiu
from .complex import ComplexCrossing, ConicalIntersection2DComplex, UniformCurvature
from .newns_anderson import NewnsAnderson
from .pairs import PairBox, PairChain

BUILTIN = {cls.name: cls for cls in (Tully1, Tully2, Tully3, DoubleArch,
                                     ConicalIntersection2D, SpinBoson)}
BUILTIN.update({cls.name: cls for cls in (LVC, Holstein, FMO, SubotnikX, SubotnikS, Subotnik2D,
                                          ShinMetiu, ComplexCrossing, UniformCurvature,
                                          ConicalIntersection2DComplex)})
BUILTIN[NewnsAnderson.name] = NewnsAnderson    # one-body model of a metal (issue 15)
BUILTIN.update({cls.name: cls for cls in (PairChain, PairBox)})   # many-particle (issue 17)

__all__ = ["Model", "BUILTIN", "ModelError", "build_model", "load_user_model", "model_fingerprint",
           "user_frame"]


class ModelError(ValueError):
    """A user model failed (import, construction or evaluation); the message names the model
    file, the line and the call."""


def user_frame(exc, path):
    """``(line number, source line)`` of the innermost frame of ``exc``'s traceback inside the file
    ``path``, or None when the traceback does not pass through it."""
    if path is None:
        return None
    path = str(Path(path).resolve())
    found = None
    for fr in traceback.extract_tb(exc.__traceback__):
        try:
            if str(Path(fr.filename).resolve()) == path:
                found = (fr.lineno, (fr.line or "").strip())
        except OSError:          # pragma: no cover - odd file names
            continue
    return found


def _describe(exc, path):
    where = user_frame(exc, path)
    at = f" at line {where[0]} of {path}" + (f" (`{where[1]}`)" if where[1] else "") if where else ""
    return f"{type(exc).__name__}: {exc}{at}"


def load_user_model(file, cls_name, base_dir=None):
    """Import class ``cls_name`` from the Python file ``file`` (relative to ``base_dir``)."""
    path = Path(file)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if not path.is_file():
        raise ValueError(f"[model] file = '{file}': no such file ({path})")
    path = path.resolve()
    spec = importlib.util.spec_from_file_location(f"mqcd_user_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # numba's cache of user kernels needs an importable module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(spec.name, None)
        line = (exc.text or "").strip()
        raise ModelError(f"[model] file {path}: syntax error at line {exc.lineno}: {exc.msg}"
                         + (f" (`{line}`)" if line else "")) from None
    except Exception as exc:             # noqa: BLE001 - any error of the user's module
        sys.modules.pop(spec.name, None)
        raise ModelError(f"[model] file {path} failed when imported: {_describe(exc, path)}") from None
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

    Keys: ``name`` (a built-in) or ``file`` + ``class`` (a user model), optional ``mass``,
    ``parameter_file`` (models that read one, e.g. ``lvc``; relative to ``base_dir``) and any of
    the model's declared parameters.
    """
    section = dict(section)
    name = section.pop("name", None)
    pfile = section.pop("parameter_file", None)
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
    if pfile is not None:
        if not getattr(cls, "accepts_parameter_file", False):
            raise ValueError(f"[model] parameter_file: model '{cls.name}' reads no parameter file "
                             "(models that do: " + ", ".join(
                                 sorted(n for n, c in BUILTIN.items()
                                        if getattr(c, "accepts_parameter_file", False))) + ")")
        p = Path(pfile)
        if not p.is_absolute() and base_dir is not None:
            p = Path(base_dir) / p
        section["parameter_file"] = str(p)
    mass = section.pop("mass", None)
    try:
        model = cls(**section)
        ndof = int(model.ndof)
        if mass is not None:
            m = [mass] if isinstance(mass, (int, float)) else list(mass)
            if len(m) not in (1, ndof):
                raise ValueError(f"[model] mass has {len(m)} entries; model '{model.name}' has "
                                 f"{ndof} nuclear degree(s) of freedom: give one value (for all) "
                                 f"or {ndof}")
            model = cls(mass=mass, **section)
    except Exception as exc:             # noqa: BLE001 - a user model's __init__ / setup
        if isinstance(exc, ValueError) and (file is None or str(exc).startswith("[model]")):
            raise                        # mqcd's own parameter checks: already clear
        path = Path(inspect.getfile(cls)).resolve() if file is not None else None
        raise ModelError(f"[model] constructing {cls.__name__}"
                         + (f" (from {path})" if path else "")
                         + f" failed: {_describe(exc, path)}") from None
    model.source_path = Path(inspect.getfile(cls)).resolve() if file is not None else None
    return model


def model_fingerprint(model):
    """``{"model_file": path, "model_sha256": hex}`` of a user model's source file, or of the
    parameter file of a built-in that reads one (``lvc``, ``holstein``); empty strings for the
    other built-ins, whose source is part of the installed mqcd version."""
    path = getattr(model, "source_path", None) or getattr(model, "parameter_file", None) or None
    if path is None:
        return {"model_file": "", "model_sha256": ""}
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        digest = "unreadable"
    return {"model_file": str(path), "model_sha256": digest}
