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


ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")


def cpu_info():
    """'<model name>, <cores> cores, ISA: <flags>' from /proc/cpuinfo (Linux), for every
    printed figure: machines differ between runs."""
    import os

    name, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name == "unknown CPU":
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    isa = [flag for flag in ISA_FLAGS if flag in flags] or ["?"]
    return f"{name}, {os.cpu_count()} cores, ISA: {' '.join(isa)}"
