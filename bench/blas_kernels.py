"""Do score_generated's numbers depend on the CPU kernels numpy's OpenBLAS picks? FD, KID and pixel distances of
fixed features, computed by qaug (torch, float64) and by the numpy/scipy formulas qaug used before, each in a fresh
process under several OPENBLAS_CORETYPE values (OpenBLAS otherwise picks them from the CPU model; nothing pins it).

Run: python bench/blas_kernels.py  (seconds; core types this CPU can run: older ones than the CPU are safe)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import hashlib, sys
import numpy as np
from scipy import linalg
sys.path.insert(0, sys.argv[1])
from qaug.reproducible import pin
pin()
from qaug.generation_metrics import _pairwise, frechet_distance, kernel_inception_distance

rng = np.random.default_rng(1)
a, b = rng.normal(size=(50, 32)), rng.normal(0.3, 1.2, size=(60, 32))
ours = (frechet_distance(a, b), kernel_inception_distance(a, b), _pairwise(a, b).tobytes())
ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
fd = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * np.real(linalg.sqrtm(ca @ cb)))
sq = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2 * a @ b.T
numpy = (float(fd), float(((a @ b.T) / 32 + 1).sum()), np.sqrt(np.clip(sq, 0, None) / 32).tobytes())
digest = lambda t: hashlib.sha256(repr(t).encode()).hexdigest()[:16]
print(digest(ours), digest(numpy), repr(ours[0]), repr(numpy[0]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coretypes", nargs="+", default=["", "Sandybridge", "Haswell", "SkylakeX"],
                        help="OPENBLAS_CORETYPE values ('' = OpenBLAS's own choice)")
    args = parser.parse_args()
    results = {}
    for coretype in args.coretypes:
        env = dict(os.environ, OPENBLAS_CORETYPE=coretype)
        out = subprocess.run([sys.executable, "-c", PROBE, str(ROOT)], env=env, capture_output=True, text=True, check=True).stdout.split()
        results[coretype or "(default)"] = out
        print(f"{coretype or '(default)':12s} qaug {out[0]} FD {out[2]:22s} numpy/scipy {out[1]} FD {out[3]}")
    ours, theirs = {r[0] for r in results.values()}, {r[1] for r in results.values()}
    print(f"qaug (torch): {len(ours)} distinct result(s); numpy/scipy: {len(theirs)} distinct result(s) over {len(results)} kernel choices")
    sys.exit(0 if len(ours) == 1 else 1)


if __name__ == "__main__":
    main()
