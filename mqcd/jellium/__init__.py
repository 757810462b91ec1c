"""A diatomic impurity in a homogeneous electron gas under current (Nazarov, Todorov and Gross,
"Viscous current-induced forces"; docs/jellium.md).

Modules, one concept each:

- :mod:`~mqcd.jellium.heg` electron-gas parameters and LDA ingredients;
- :mod:`~mqcd.jellium.lindhard` Lindhard chi_0(q, omega);
- :mod:`~mqcd.jellium.kernels` xc kernels (RPA, ALDA, MCP07 static and dynamic);
- :mod:`~mqcd.jellium.response` chi^h(q, omega) of eq. (17) and its omega-derivative (App. E);
- :mod:`~mqcd.jellium.interaction` F(d), U(d), d_eq, bond stiffness (eqs. (10)-(11), App. C);
- :mod:`~mqcd.jellium.friction` wind, friction and cross terms (eqs. (14)-(15), App. D-E);
- :mod:`~mqcd.jellium.dynamics` time integration under a current pulse (eq. (16));
- :mod:`~mqcd.jellium.deck`, :mod:`~mqcd.jellium.run`, :mod:`~mqcd.jellium.cli` the
  ``mqcd jellium`` command.
"""
from .dynamics import MotionCoefficients, Pulse, simulate
from .heg import ElectronGas
from .interaction import energy, equilibrium_distance, force
from .kernels import KERNELS, make_kernel
from .response import Response

__all__ = ["ElectronGas", "Response", "KERNELS", "make_kernel", "force", "energy",
           "equilibrium_distance", "MotionCoefficients", "Pulse", "simulate"]
