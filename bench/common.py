"""Timing helpers shared by the benchmarks: best-of-N wall time after a warm-up."""

import time


def best_time(fn, repeats=3, warmup=1):
    """Minimum wall time of `fn()` over `repeats` runs, after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
