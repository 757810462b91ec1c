import copy

import pytest


def make_deck(model="tully1", k=10.0, method="ehrenfest", ntraj=200, dt=0.5, t_end=4000.0,
              width=None, state=0, sampling="wigner", seed=1, stop="time", x0=-15.0, **method_opts):
    """A 1D scattering deck as a dict (atomic units)."""
    return {"model": {"name": model} if isinstance(model, str) else model,
            "initial": {"position": [x0], "momentum": [k], "width": [width or 10.0 / k],
                        "state": state, "sampling": sampling},
            "method": {"name": method, **method_opts},
            "run": {"trajectories": ntraj, "dt": dt, "t_end": t_end, "seed": seed, "stop": stop},
            "output": {"stride": 10}}


@pytest.fixture
def deck():
    return copy.deepcopy(make_deck())
