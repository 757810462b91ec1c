"""Instantaneous decoherence: collapse rho onto the active state at hops.

After an accepted hop (``idc_on = "accepted"``, ID-S) or after every attempted hop, accepted or
frustrated (``"attempted"``, ID-A), rho <- |a><a| for the (new) active state a. Cheap, parameter
free, and it removes the overcoherence that makes plain FSSH fail on reflections (Tully model 3)
and on the double arch; see Nelson, Fernandez-Alberti, Roitberg and Tretiak, J. Chem. Phys. 138,
224111 (2013) for the two variants.
"""
import numpy as np

from ...io.schema import Key


class InstantaneousDecoherence:
    name = "idc"
    options = {"idc_on": Key("str", "accepted", "with decoherence = 'idc': collapse after "
                             "'accepted' hops (ID-S) or after all 'attempted' hops (ID-A)",
                             choices=("accepted", "attempted"))}

    def __init__(self, opts):
        self.on = opts.get("idc_on", "accepted")

    def apply(self, sw, dt, accepted, attempted):
        mask = accepted if self.on == "accepted" else attempted
        idx = np.nonzero(mask)[0]
        if idx.size == 0:
            return
        _, V = sw.ensure_adiabatic()
        v = V[idx, :, sw.active[idx]].astype(np.complex128)
        sw.rho[idx] = v[:, :, None] * np.conj(v)[:, None, :]
