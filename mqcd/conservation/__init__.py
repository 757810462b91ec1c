"""Continuum fields of many-particle trajectories on several electronic surfaces (Plechac,
Sandberg and Szepessy; docs/conservation_fields.md).

* ``kernels``: Gaussian mollifier and its closed-form bond line integrals on a periodic grid;
* ``micro``: per-configuration ingredients (per-particle energies, pair derivatives, the
  energy-exchange terms of the heat flux);
* ``fields``: microscopic and q-weighted ensemble fields (density, momentum, energy, momentum
  and energy fluxes; stress and heat flux);
* ``balance``: residuals of the balance laws and of the virial identity;
* ``store``: the per-record trajectory store of ``[output] trajectories = true``;
* ``api``: :func:`fields_from_file` (the library call of ``mqcd fields``), :func:`write_fields`.
"""
from .api import fields_from_file, load_run, summary, write_fields
from .balance import box_stress, residuals
from .fields import FieldSeries, Grid, ensemble_fields, trajectory_fields

__all__ = ["FieldSeries", "Grid", "box_stress", "ensemble_fields", "fields_from_file",
           "load_run", "residuals", "summary", "trajectory_fields", "write_fields"]
