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

__all__ = ["FieldOptions", "FieldEstimate", "FieldWorkspace", "estimate_fields", "DEFAULT_NEED",
           "bandwidth", "spread", "fisher_spread", "effective_count", "normal_reference_constant",
           "abramson_factors", "select_density_scale", "select_regression_scale", "t2_conservative",
           "kernel_sums", "Group", "EngineSettings", "log_derivatives", "pack_hermitian",
           "unpack_hermitian"]
