"""Timing helpers shared by the benchmarks: best-of-N wall time after a warm-up."""

import threading
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


def concurrent_clients(clients, work):
    """Run `work(i, ready)` for i < `clients` on threads started together; each calls
    `ready()` once its untimed setup is done. -> (wall seconds from the moment all are ready to
    the last finish, [work's results]). A failing client releases the others; RuntimeError
    names the failures after every thread has ended."""
    start = []  # set by the barrier's action, before any thread is released
    barrier = threading.Barrier(clients + 1, action=lambda: start.append(time.perf_counter()))
    results, errors = [None] * clients, []

    def client(i):
        try:
            results[i] = work(i, barrier.wait)
        except Exception as error:  # reported after the join
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:  # a client failed before the start
        pass
    for thread in threads:
        thread.join()
    end = time.perf_counter()
    wall = end - start[0] if start else 0.0  # no start: a client failed before it
    # clients released by another's failure raise BrokenBarrierError: report the cause
    failed = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)] or errors
    if failed:
        raise RuntimeError(f"{len(failed)} of {clients} clients failed: {failed[0]!r}")
    return wall, results
