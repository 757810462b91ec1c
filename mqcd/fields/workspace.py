"""Reusable array buffers for repeated field estimates.

Allocating fresh arrays of tens of megabytes on every time step is not free: the first write to
each new page costs a page fault (about 1.7 us per 4 KiB page measured on the development VM,
i.e. about 0.4 ns per byte - as much as the arithmetic of the whole 1D estimate at 1e5
trajectories). A :class:`FieldWorkspace` passed to :func:`mqcd.fields.estimate_fields` keeps its
buffers between calls with the same sizes. The arrays of a :class:`FieldEstimate` computed with a
workspace are views into it and are overwritten by the next call with the same workspace: copy
what you keep.
"""
from __future__ import annotations

import numpy as np


class FieldWorkspace:
    """Named buffers, re-allocated only when the requested shape or dtype changes."""

    def __init__(self):
        self._buf: dict = {}

    def array(self, name, shape, dtype=np.float64):
        """An uninitialised C-contiguous array ``(shape, dtype)`` owned by the workspace."""
        shape = tuple(int(s) for s in shape)
        dtype = np.dtype(dtype)
        a = self._buf.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = np.empty(shape, dtype=dtype)
            self._buf[name] = a
        return a

    def nbytes(self):
        """Total size of the buffers held (bytes)."""
        return int(sum(a.nbytes for a in self._buf.values()))


class _Fresh:
    """Workspace stand-in that always allocates (used when no workspace is given)."""

    @staticmethod
    def array(name, shape, dtype=np.float64):
        return np.empty(tuple(int(s) for s in shape), dtype=dtype)


FRESH = _Fresh()
