"""mqcd: mixed quantum-classical nonadiabatic dynamics on conditional electronic density matrices."""
from ._version import __version__
from .io.results import Result, load

__all__ = ["__version__", "Result", "load"]
