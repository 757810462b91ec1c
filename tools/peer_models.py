"""Cross-check of the Subotnik models (mqcd/models/subotnik.py) against mudslide's numbers.

Two steps, two environments (mqcd does not depend on mudslide; its numbers, not its code, are
used):

    <python with mudslide>  tools/peer_models.py dump peer_models.json    # pip install mudslide
    python                  tools/peer_models.py compare peer_models.json

``dump`` evaluates mudslide 0.12's ``SubotnikModelX``, ``SubotnikModelS`` and ``Subotnik2D``
diabatic matrices at fixed points; ``compare`` evaluates mqcd's ``subotnik_x``, ``subotnik_s`` and
``subotnik_2d`` at the same points and prints the largest differences (hartree).
"""
import json
import sys

import numpy as np

X1 = np.linspace(-12.0, 12.0, 49)
X2 = [(x, y) for x in np.linspace(-6.0, 6.0, 9) for y in np.linspace(-8.0, 8.0, 9)]


def dump(path):
    import mudslide.models as mm
    sm = getattr(mm, "scattering_models", None)
    from mudslide.models.scattering_models import Subotnik2D, SubotnikModelS, SubotnikModelX
    out = {"mudslide": getattr(__import__("mudslide"), "__version__", "?"), "models": {}}
    for name, cls in (("subotnik_x", SubotnikModelX), ("subotnik_s", SubotnikModelS)):
        m = cls()
        out["models"][name] = [m.V(np.array([x])).tolist() for x in X1]
    m = Subotnik2D(mass=[2000.0, 2000.0])     # (its scalar default fails to broadcast)
    out["models"]["subotnik_2d"] = [m.V(np.array(p)).tolist() for p in X2]
    del sm
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {path}")


def compare(path):
    from mqcd.models import build_model
    ref = json.load(open(path))
    print(f"mudslide {ref['mudslide']} vs mqcd: largest |H_mqcd - H_mudslide| (hartree)")
    for name, vals in ref["models"].items():
        m = build_model({"name": name})
        pts = np.array(X2 if name == "subotnik_2d" else X1[:, None], dtype=float).reshape(
            len(vals), m.ndof)
        H, _ = m.evaluate(pts)
        print(f"  {name}: {np.abs(H - np.array(vals)).max():.2e} over {len(vals)} points")


if __name__ == "__main__":
    {"dump": dump, "compare": compare}[sys.argv[1]](sys.argv[2])
