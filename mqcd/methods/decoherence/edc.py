"""Energy-based decoherence correction (Granucci and Persico, J. Chem. Phys. 126, 134114 (2007)).

Each step, in the adiabatic basis, every non-active amplitude decays as
c_n <- c_n exp(-dt / tau_na), tau_na = (1 + C / E_kin) / |E_n - E_a| (C in hartree, E_kin the
nuclear kinetic energy), and the active amplitude is renormalised. In density-matrix form (exact
for pure states, gauge invariant because it only scales matrix elements):
rho_nm <- s_n s_m rho_nm (n, m != a), rho_aa <- rho_aa + sum_n (1 - s_n^2) rho_nn (the population
removed from the other states goes to the active one, so the trace is kept exactly, whatever its
round-off value), rho_an <- s_n f rho_an with f = sqrt(rho_aa_new / rho_aa_old) >= 1 (f = 0 when
rho_aa_old = 0, where a pure state has rho_an = 0 anyway). A pure state stays pure (c_n <- s_n c_n,
c_a <- f c_a) and positivity is kept; no square root of a negative number can occur.
"""
import numpy as np
from numba import njit

from ...electronic.adiabatic import to_adiabatic, to_diabatic
from ...io.schema import Key, positive


@njit(cache=True)
def _edc(rho_ad, E, active, ekin, C, dt):
    n, ns, _ = rho_ad.shape
    s = np.empty(ns)
    for i in range(n):
        a = active[i]
        ek = max(ekin[i], 1e-300)
        for m in range(ns):
            s[m] = 1.0 if m == a else np.exp(-dt * abs(E[i, m] - E[i, a]) / (1.0 + C / ek))
        old = rho_ad[i, a, a].real
        new = old
        for m in range(ns):
            if m != a:
                new += (1.0 - s[m] * s[m]) * max(rho_ad[i, m, m].real, 0.0)
        f = np.sqrt(new / old) if old > 0.0 else 0.0
        for m in range(ns):
            for k in range(ns):
                if m == a and k == a:
                    rho_ad[i, m, k] = new
                elif m == a:
                    rho_ad[i, m, k] *= f * s[k]
                elif k == a:
                    rho_ad[i, m, k] *= f * s[m]
                else:
                    rho_ad[i, m, k] *= s[m] * s[k]


class EnergyDecoherence:
    name = "edc"
    options = {"edc_c": Key("float", 0.1, "Granucci-Persico parameter C of decoherence = 'edc'",
                            "hartree", check=positive)}

    def __init__(self, opts):
        self.C = opts.get("edc_c", 0.1)

    def apply(self, sw, dt, accepted, attempted):
        E, V = sw.ensure_adiabatic()
        rho_ad = to_adiabatic(sw.rho, V)
        _edc(rho_ad, E, sw.active, sw.kinetic_energy(), self.C, dt)
        sw.rho[...] = to_diabatic(rho_ad, V)
