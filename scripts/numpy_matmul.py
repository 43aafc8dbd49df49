"""float32 matrix products with numpy, the side-by-side reference for the kernel benchmark.

usage: OPENBLAS_NUM_THREADS=2 python3 scripts/numpy_matmul.py [N ...]   (default 1024 2048 4096)

Prints the median GFLOP/s of `a @ b` for N x N float32 matrices over several runs. Needs numpy.
"""
import sys
import time

import numpy as np

sizes = [int(s) for s in sys.argv[1:]] or [1024, 2048, 4096]
rng = np.random.default_rng(0)
for n in sizes:
    a = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    a @ b
    runs = max(3, int(2e10 / (2 * n**3)))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    t = sorted(times)[len(times) // 2]
    print(f"numpy {np.__version__} matmul {n}: {2 * n**3 / t / 1e9:.1f} GFLOP/s (median of {runs})")
