"""mqcd: mixed quantum-classical nonadiabatic dynamics on conditional electronic density matrices.

>>> import mqcd
>>> res = mqcd.run("inputs/tully1_ehrenfest.toml")      # doctest: +SKIP
>>> res["populations/adiabatic"][-1]                     # doctest: +SKIP
"""
import os

# numba's OpenMP threads otherwise spin while they wait; on a core shared with another process (a
# second job, or MPI ranks on the same node) every parallel kernel then costs a scheduler time
# slice: a 1000-trajectory ehrenfest-qc run took 88 s instead of 6.5 s (docs/performance.md,
# "Threads"). Must be set before the OpenMP runtime starts (first parallel kernel); a user's own
# setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._version import __version__  # noqa: E402
from .api import run  # noqa: E402
from .io.deck import DeckError, read_deck  # noqa: E402
from .io.results import Result, load  # noqa: E402

__all__ = ["__version__", "run", "load", "read_deck", "DeckError", "Result"]
