"""What the swarm knows collectively: Gaussian-smeared nuclear density and its log-derivatives, and
the smoothed conditional electronic density-matrix field with its first and second derivatives,
estimated at every trajectory (``estimate_fields``). See ``docs/theory/fields.md``.
"""
from .bandwidth import abramson_factors, bandwidth, effective_count, normal_reference_constant, spread
from .engine import EngineSettings, Group, kernel_sums
from .estimate import (DEFAULT_NEED, FieldEstimate, FieldOptions, estimate_fields, log_derivatives,
                       pack_hermitian, unpack_hermitian)
from .workspace import FieldWorkspace

__all__ = ["FieldOptions", "FieldEstimate", "estimate_fields", "bandwidth", "spread", "effective_count",
           "normal_reference_constant", "abramson_factors", "kernel_sums", "Group", "EngineSettings",
           "log_derivatives", "pack_hermitian", "unpack_hermitian", "DEFAULT_NEED", "FieldWorkspace"]
