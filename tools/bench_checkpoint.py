"""Cost of one checkpoint: write (gather, in-memory HDF5 image, checksums, fsync, rename) and read
(with checksum verification), for an FSSH swarm on Tully 1.

    python tools/bench_checkpoint.py [--ntraj 100000] [--repeat 5]

Prints the best of ``repeat`` times and the file size (docs/reliability.md). Run it with
``PYTHONPATH=OLD_CHECKOUT`` to compare with an older mqcd in the same session.
"""
import argparse
import tempfile
import time
from pathlib import Path

from mqcd.api import _Runner
from mqcd.io.checkpoint import read_checkpoint
from mqcd.io.deck import read_deck
from mqcd.parallel import SerialComm


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ntraj", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(argv)
    deck = read_deck({"model": {"name": "tully1"},
                      "initial": {"position": [-15.0], "momentum": [10.0], "width": [1.0]},
                      "method": {"name": "fssh"},
                      "run": {"trajectories": a.ntraj, "dt": 0.5, "t_end": 10.0},
                      "output": {"stride": 10}})
    path = Path(tempfile.mkdtemp(prefix="mqcd_ckbench_")) / "b.h5.ckpt"
    runner = _Runner(deck, SerialComm(), path)
    runner.start()

    def best(f):
        out = float("inf")
        for _ in range(a.repeat):
            t = time.perf_counter()
            f()
            out = min(out, time.perf_counter() - t)
        return out
    w = best(lambda: runner.save("bench"))
    r = best(lambda: read_checkpoint(path))
    print(f"{a.ntraj} fssh trajectories: checkpoint {path.stat().st_size / 1e6:.1f} MB, "
          f"write {w * 1e3:.1f} ms, read {r * 1e3:.1f} ms (best of {a.repeat})")
    path.unlink()


if __name__ == "__main__":
    main()
