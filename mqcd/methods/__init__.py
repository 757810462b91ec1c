"""Mixed quantum-classical methods, each a short recipe of shared parts.

Register a method by adding its class to ``METHODS``; its ``options`` dict declares its
``[method]`` deck keys (see mqcd.io.deck.Key).
"""
from .adiabatic import Adiabatic
from .base import Method
from .ehrenfest import Ehrenfest
from .fssh import FSSH
from .friction_langevin import FrictionLangevin
from .ladder import LADDER

METHODS = {cls.name: cls for cls in (Ehrenfest, FSSH, Adiabatic, *LADDER)}
METHODS[FrictionLangevin.name] = FrictionLangevin           # MDEF (issue 15)


def method_schema():
    """{method name: {key: Key}} for deck validation and documentation."""
    return {name: cls.options for name, cls in METHODS.items()}


def build_method(deck, model, comm=None):
    opts = {k: v for k, v in deck.method.items() if k != "name"}
    return METHODS[deck.method["name"]](opts, model, deck, comm)


__all__ = ["Method", "METHODS", "method_schema", "build_method"]
