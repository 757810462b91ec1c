"""Ehrenfest (mean-field) dynamics on the conditional density matrix.

Electrons: i drho/dt = [H_el, rho] (exact unitary step); nuclei: F_k = -Tr(rho d_k H_el).
All parts are the shared defaults of :class:`~mqcd.methods.base.Method`.
"""
from .base import Method


class Ehrenfest(Method):
    name = "ehrenfest"
    description = "mean-field Ehrenfest: F = -Tr(rho dH), i drho/dt = [H, rho]"
    options = {}
