"""Electrons at finite temperature and electronic friction (MB Sec. III.C and IV.B;
docs/friction.md).

* :mod:`.equilibrium`: canonical and Fermi-Dirac electronic states at a fixed nuclear position,
  the electronic free energy Phi_el;
* :mod:`.tensor`: the friction tensor eta (MB (118)-(121)) and the pseudo-magnetic B from the
  spectrum, with the broadened delta function;
* :mod:`.junction`: the wide-band steady state of a biased junction (NEGF): current-induced
  forces and the nonequilibrium friction;
* :mod:`.calculator`: ``mqcd friction`` / :func:`friction`;
* :mod:`.langevin`: the ``friction-langevin`` method's tables and integrator (MDEF).

The jellium part (mqcd/jellium) is a different concept: the friction of an impurity in a
homogeneous electron gas from its linear density response (Nazarov-Todorov-Gross), with no
electronic Hamiltonian of the impurity; this package works from a model's electronic
Hamiltonian h(x).
"""
from .calculator import FrictionResult, friction, friction_at

__all__ = ["FrictionResult", "friction", "friction_at"]
