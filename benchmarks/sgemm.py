"""The machine's fp32 matrix-multiply rate (numpy sgemm), measured in the same run as a benchmark.

Figures from a loaded machine are only comparable as ratios: a benchmark prints beside each time
``t`` the product ``t x sgemm rate`` in GFLOP, i.e. how many fp32 matrix-multiply GFLOP the
machine could have done in that time, measured right around the timed work. On a quiet 2-core
machine numpy's sgemm runs at 120-135 GFLOP/s, so 1 s there is about 130 "sgemm GFLOP".

    python benchmarks/sgemm.py            # prints the rate now
"""
from __future__ import annotations

import os
import time

import numpy as np


def sgemm_gflops(n=1024, min_seconds=0.5, repeats=3):
    """Best-of-``repeats`` rate of ``n x n`` float32 matrix products (GFLOP/s, 2 n^3 flops each)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b   # warm-up (threads, caches)
    best = 0.0
    for _ in range(repeats):
        count, t0 = 0, time.perf_counter()
        while True:
            a @ b
            count += 1
            dt = time.perf_counter() - t0
            if dt >= min_seconds / repeats:
                break
        best = max(best, 2.0 * n ** 3 * count / dt / 1e9)
    return best


class SgemmClock:
    """Keeps the sgemm rates measured during a run; ``ratio(seconds)`` uses the mean of the
    measurement taken just before and just after the timed work (``tick()`` around it)."""

    def __init__(self, n=1024, min_seconds=0.5):
        self.n, self.min_seconds = n, min_seconds
        self.rates = []

    def tick(self):
        self.rates.append(sgemm_gflops(self.n, self.min_seconds))
        return self.rates[-1]

    def rate(self, last=2):
        vals = self.rates[-last:]
        return sum(vals) / len(vals) if vals else float("nan")

    def fmt(self, seconds, last=2):
        """'4.52 s = 560 sgemm-GFLOP' using the latest rates."""
        return f"{seconds:.2f} s = {seconds * self.rate(last):.0f} sgemm-GFLOP"


def load_note():
    """'load average 3.2 on 2 CPUs' (the machine's state, to print beside the figures)."""
    if hasattr(os, "getloadavg"):
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    return f"{os.cpu_count()} CPUs"


if __name__ == "__main__":
    print(f"numpy sgemm: {sgemm_gflops():.1f} GFLOP/s ({load_note()})")
