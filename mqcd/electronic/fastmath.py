"""Branch-free elementary functions that LLVM can vectorise inside numba loops.

numba's llvmlite here has no SVML, so ``math.sin``/``math.cos`` in a loop are scalar libm calls
(~24 ns each) and block vectorisation. ``sincos`` below reduces the argument by multiples of
pi/2 (Cody-Waite, two constants) and evaluates Taylor polynomials on [-pi/4, pi/4]; the error is a
few ulp for |theta| < 1e5 (tested against numpy in tests/test_electronic.py). Written by hand
because no library provides a numba-inlinable vector sincos.
"""
import numpy as np
from numba import njit

_TWO_OVER_PI = 0.6366197723675814
_PIO2_HI = 1.5707963267341256e+00
_PIO2_LO = 6.0771005065061922e-11


@njit(cache=True, inline="always", fastmath=False)
def sincos(theta):
    k = np.floor(theta * _TWO_OVER_PI + 0.5)
    r = (theta - k * _PIO2_HI) - k * _PIO2_LO
    r2 = r * r
    s = r * (1.0 + r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (
        1.0 / 362880 + r2 * (-1.0 / 39916800 + r2 * (1.0 / 6227020800 + r2 * (-1.0 / 1307674368000))))))))
    c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320 + r2 * (
        -1.0 / 3628800 + r2 * (1.0 / 479001600 + r2 * (-1.0 / 87178291200 + r2 / 20922789888000)))))))
    q = np.int64(k) & 3
    # quadrant q: (sin, cos) = (s, c), (c, -s), (-s, -c), (-c, s)
    swap = (q & 1) == 1
    sn = c if swap else s
    cs = s if swap else c
    if q == 1 or q == 2:
        cs = -cs
    if q >= 2:
        sn = -sn
    return sn, cs
