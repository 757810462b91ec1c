"""Per-trajectory random streams that depend only on (deck seed, trajectory index).

Trajectory i gets a 128-bit key from ``numpy.random.SeedSequence(seed, spawn_key=(i,))`` -- exactly
the i-th child of ``SeedSequence(seed).spawn(n)`` -- so its draws do not depend on how many
trajectories run, on which MPI rank, or in which order. Inside the compiled time loop the draws come
from a counter-based generator: the uniform number for (key, counter) is a SplitMix64-style
avalanche hash of the key and the counter, so there is no generator state to carry, split or
checkpoint (a restart needs only the step number). This small hash is written by hand because
numpy's bit generators cannot be called per element from numba; its counter layout is:

    counter = step * STREAMS + stream       (stream 0..STREAMS-1: initial sampling, hops, ...)
"""
import numpy as np
from numba import njit

STREAMS = 16
STREAM_INITIAL = 0
STREAM_HOP = 1
STREAM_DECOHERENCE = 2
STREAM_ACTIVE = 3          # initial active state of surface hopping for mixed initial states
STREAM_FRICTION = 4        # random force of friction-langevin (step-dependent draws)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)


def trajectory_keys(seed, indices):
    """Keys (n, 2) uint64 for the global trajectory indices ``indices``."""
    idx = np.asarray(indices, dtype=np.int64).ravel()
    out = np.empty((idx.size, 2), dtype=np.uint64)
    for j, i in enumerate(idx):
        out[j] = np.random.SeedSequence(int(seed), spawn_key=(int(i),)).generate_state(2, np.uint64)
    return out


@njit(cache=True, inline="always")
def _mix(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def uniform(k0, k1, counter):
    """Uniform number in [0, 1) for key (k0, k1) and a uint64 counter."""
    z = _mix(k0 + np.uint64(counter) * _GOLDEN)
    z = _mix(z ^ k1)
    return np.float64(z >> _S11) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def uniforms(keys, step, stream, out):
    """One uniform per trajectory for (step, stream): out (n,)."""
    c = np.uint64(step) * np.uint64(STREAMS) + np.uint64(stream)
    for i in range(keys.shape[0]):
        out[i] = uniform(keys[i, 0], keys[i, 1], c)
    return out


@njit(cache=True, inline="always")
def normal_pair(k0, k1, c):
    """Two standard normals (Box-Muller) from the uniforms at counters ``c`` and
    ``c + STREAMS`` of key (k0, k1)."""
    u1 = uniform(k0, k1, c)
    u2 = uniform(k0, k1, c + np.uint64(STREAMS))
    rad = np.sqrt(-2.0 * np.log(1.0 - u1))
    return rad * np.cos(2.0 * np.pi * u2), rad * np.sin(2.0 * np.pi * u2)


@njit(cache=True)
def normals(keys, stream, n_per_traj, out, base=0):
    """Standard normal numbers (Box-Muller), ``n_per_traj`` per trajectory: out (n, n_per_traj).

    Uses counters (base + j, stream) for j = 0, 1, ... so the values are fixed per (key, stream,
    base + j); ``base`` = step x 64 gives draws that change every step (friction-langevin).
    """
    for i in range(keys.shape[0]):
        j = 0
        while j < n_per_traj:
            c = (np.uint64(base) + np.uint64(j)) * np.uint64(STREAMS) + np.uint64(stream)
            z0, z1 = normal_pair(keys[i, 0], keys[i, 1], c)
            out[i, j] = z0
            if j + 1 < n_per_traj:
                out[i, j + 1] = z1
            j += 2
    return out
