"""What the swarm knows collectively: Gaussian-smeared nuclear density and its log-derivatives, and
the smoothed conditional electronic density-matrix field with its first and second derivatives,
estimated at every trajectory (``estimate_fields``). See ``docs/theory/fields.md``.
"""
from .bandwidth import abramson_factors, bandwidth, effective_count, normal_reference_constant, spread
from .conservative import t2_conservative
from .crossval import select_density_scale, select_regression_scale
from .engine import EngineSettings, Group, kernel_sums
from .estimate import (DEFAULT_NEED, FieldEstimate, FieldOptions, estimate_fields, fisher_spread,
                       log_derivatives, pack_hermitian, unpack_hermitian)
from .workspace import FieldWorkspace
from .base import SwarmEstimator
from .kernel import PATHS as KERNEL_PATHS, KernelEstimator
from .fluid import FluidEstimator, FluidFields1D, FluidOptions
from .oracle import ExactEstimator, ExactWavefunction
from .density import ModalEstimator, mode_bandwidths, mode_labels

#: ``[method] field_method`` -> estimator class (mqcd/fields/base.py)
ESTIMATORS = {"kernel": KernelEstimator, "fluid": FluidEstimator, "exact": ExactEstimator,
              "modes": ModalEstimator}


def build_estimator(name, opts, model, deck, comm, need, conservative=False) -> SwarmEstimator:
    """The estimator ``name`` (a key of ``ESTIMATORS`` or a kernel path of ``KERNEL_PATHS``)."""
    cls = KernelEstimator if name in KERNEL_PATHS else ESTIMATORS[name]
    return cls(opts, model, deck, comm, need, conservative)

__all__ = ["FieldOptions", "FieldEstimate", "FieldWorkspace", "estimate_fields", "DEFAULT_NEED",
           "bandwidth", "spread", "fisher_spread", "effective_count", "normal_reference_constant",
           "abramson_factors", "select_density_scale", "select_regression_scale", "t2_conservative",
           "kernel_sums", "Group", "EngineSettings", "log_derivatives", "pack_hermitian",
           "unpack_hermitian", "SwarmEstimator", "KernelEstimator", "FluidEstimator",
           "FluidFields1D", "FluidOptions", "ExactEstimator", "ExactWavefunction", "ESTIMATORS",
           "build_estimator", "ModalEstimator", "mode_labels", "mode_bandwidths"]
