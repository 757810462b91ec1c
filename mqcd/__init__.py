"""mqcd: mixed quantum-classical nonadiabatic dynamics on conditional electronic density matrices.

>>> import mqcd
>>> res = mqcd.run("inputs/tully1_ehrenfest.toml")      # doctest: +SKIP
>>> res["populations/adiabatic"][-1]                     # doctest: +SKIP
"""
from ._version import __version__
from .api import run
from .io.deck import DeckError, read_deck
from .io.results import Result, load

__all__ = ["__version__", "run", "load", "read_deck", "DeckError", "Result"]
