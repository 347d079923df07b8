"""Server-side batching: aggregate streaming samples/s over `keras-ar serve` gRPC, with and
without `--enable_batching`.

A WaveNet (10 layers x 64 channels, dilations 1..512, 256-way head) is exported to a
SavedModel and served by two `keras-ar serve` processes (free 127.0.0.1 ports), one without
batching, one with `--enable_batching` and the parameters in `PARAMETERS`, measured in turn
at each client count (best of 2; `--quick`: 1; a new batched server per client count, so
its batch counts are that count's). For 1, 8 and 32 concurrent clients (threads
of this process, each with its own `TFServingBackend` and state), every client streams its
own seeded batch-1 run of 1024 samples (512 with `--quick`) with
`serving.Generator(chunk_size=256)`: one `sample_chunk` round trip per 256 samples, the
state crossing the wire each time. The figure is the samples of all clients over the wall
time from their common start to the last one's end, and the ratio batched / unbatched at
each client count (both within this run). The batched server's log gives the mean requests
merged per timed `sample_chunk` run at each client count. The clients share the machine's
cores with the servers.

`PARAMETERS`: one batch thread per core, so two merged runs proceed at once (one merged run
alone leaves much of the second core idle: two runs of 16 requests at once took 180-290 ms
each, one run of 32 alone 270-360 ms); `max_batch_size` 16, so 32 streaming clients fill
two batches that run immediately, without waiting for the timeout; a 30 ms timeout, long
enough that the clients' next requests, which come back together after a run, join one
batch instead of splitting into small ones, and short enough that a lone client waits
little.

Run: `python -m bench.batching_bench [--quick]` (full: about 2 minutes on a quiet 2-core
machine).
"""

import pathlib
import re
import sys
import tempfile

from bench.common import concurrent_clients, cpu_info

CLIENTS = (1, 8, 32)
CHUNK = 256
PARAMETERS = """max_batch_size { value: 16 }
batch_timeout_micros { value: 30000 }
num_batch_threads { value: 2 }
"""
STATS = re.compile(r"signature sample_chunk: (\d+) batches of (\d+) requests")


def _model():
    from keras_ar.models import WaveNet

    return WaveNet(num_classes=256, dilations=[2 ** i for i in range(10)],
                   residual_channels=64, skip_channels=64)


def run(quick=False):
    import keras

    from export.saved_model import export_saved_model

    keras.utils.set_random_seed(0)
    samples = 512 if quick else 1024
    repeats = 1 if quick else 2
    rows = [_row("machine", cpu_info(), 0, "")]
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        saved = root / "models" / "wavenet" / "1"
        export_saved_model(_model(), saved, signatures=("init_state", "sample_chunk"))
        (root / "batching.txt").write_text(PARAMETERS)
        rates, merged = _rates(root, saved, samples, repeats)
    for (mode, clients), rate in rates.items():
        rows.append(_row(f"{clients} client(s), {mode}", "samples/s (all clients)", rate,
                         "samples/s"))
    for clients in CLIENTS:
        ratio = rates["with batching", clients] / rates["without batching", clients]
        rows.append(_row(f"{clients} client(s)", "batched / unbatched", ratio, "x"))
    for clients, requests in merged.items():
        rows.append(_row(f"{clients} client(s), with batching", "requests per sample_chunk "
                         "run (mean, timed runs)", requests, "requests"))
    return rows


def _rates(root, saved, samples, repeats):
    """({(mode, clients): best samples/s of `repeats`}, {clients: mean requests merged per
    timed `sample_chunk` run}): at each client count a new batched server (so its counts are
    that client count's) and the unbatched one, measured in turn (the idle one costs no
    CPU)."""
    from bench.serving_bench import Server

    batching = ("--enable_batching", f"--batching_parameters_file={root / 'batching.txt'}")
    rates, merged = {}, {}
    servers = {"without batching": Server(saved.parent, root / "unbatched.log")}
    try:
        for clients in CLIENTS:
            log = root / f"batched-{clients}.log"
            servers["with batching"] = Server(saved.parent, log, extra_args=batching)
            for _ in range(repeats):
                for mode, server in servers.items():
                    rate = _aggregate(server, saved, clients, samples)
                    rates[mode, clients] = max(rates.get((mode, clients), 0.0), rate)
            servers.pop("with batching").stop()
            merged[clients] = _timed_batch_size(log, clients * repeats)
    finally:
        for server in servers.values():
            server.stop()
    order = sorted(rates, key=lambda key: (key[1], key[0] != "without batching"))
    return {key: rates[key] for key in order}, merged


def _timed_batch_size(log, warm_ups):
    """Mean requests per `sample_chunk` run from the server's counts at stop, leaving out
    the `warm_ups` one-request runs (each client's untimed first chunk, sent alone)."""
    found = STATS.findall(log.read_text())
    if not found:
        return float("nan")
    batches, requests = map(int, found[-1])
    return (requests - warm_ups) / max(1, batches - warm_ups)


def _aggregate(server, saved, clients, samples):
    """Samples/s over `clients` threads, each streaming `samples` samples of its own run."""
    from serving.generator import Generator
    from serving.tf_serving_backend import TFServingBackend

    generators = [Generator(TFServingBackend(f"grpc://{server.grpc_target}/wavenet",
                                             manifest=saved, retry_deadline_s=0),
                            chunk_size=CHUNK) for _ in range(clients)]
    for generator in generators:  # connection, callables: untimed
        generator.generate(CHUNK, seed=0)

    def client(i, ready):
        ready()
        generators[i].generate(samples, seed=i)

    try:
        wall, _ = concurrent_clients(clients, client)
    finally:
        for generator in generators:
            generator.backend.close()
    return clients * samples / wall


def _row(case, metric, value, unit):
    return {"benchmark": "batching", "case": case, "metric": metric, "value": float(value),
            "unit": unit}


if __name__ == "__main__":
    print(cpu_info(), flush=True)
    for row in run(quick="--quick" in sys.argv)[1:]:
        print(f"{row['case']}: {row['metric']} {row['value']:,.4g} {row['unit']}", flush=True)
