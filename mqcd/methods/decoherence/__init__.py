"""Decoherence corrections for surface hopping: one small file per scheme.

A scheme is a class with ``options`` (its deck keys in [method]) and
``apply(sw, dt, accepted, attempted)`` that modifies ``sw.rho`` in place after the hop step
(``accepted``/``attempted``: boolean masks of this step's hops). Register it in ``SCHEMES``.
"""
from .edc import EnergyDecoherence
from .idc import InstantaneousDecoherence


class NoDecoherence:
    name = "none"
    options = {}

    def __init__(self, opts):
        pass

    def apply(self, sw, dt, accepted, attempted):
        pass


SCHEMES = {cls.name: cls for cls in (NoDecoherence, EnergyDecoherence, InstantaneousDecoherence)}


def scheme_options():
    out = {}
    for cls in SCHEMES.values():
        out.update(cls.options)
    return out
