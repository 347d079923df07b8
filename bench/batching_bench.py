"""Server-side batching: aggregate streaming samples/s over `keras-ar serve` gRPC, with and
without `--enable_batching`.

A WaveNet (10 layers x 64 channels, dilations 1..512, 256-way head) is exported to a
SavedModel and served by two `keras-ar serve` processes (free 127.0.0.1 ports), one without
batching, one with `--enable_batching` and the parameters in `PARAMETERS`, measured in turn
at each client count (best of 2; `--quick`: 1). For 1, 8 and 32 concurrent clients (threads
of this process, each with its own `TFServingBackend` and state), every client streams its
own seeded batch-1 run of 1024 samples (512 with `--quick`) with
`serving.Generator(chunk_size=256)`: one `sample_chunk` round trip per 256 samples, the
state crossing the wire each time. The figure is the samples of all clients over the wall
time from their common start to the last one's end, and the ratio batched / unbatched at
each client count (both within this run). The batched server's log gives the mean requests
merged per `sample_chunk` run. The clients share the machine's cores with the servers.

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
PARAMETERS = """max_batch_size { value: 32 }
batch_timeout_micros { value: 20000 }
num_batch_threads { value: 1 }
"""
STATS = re.compile(r"signature sample_chunk: (\d+) batches of (\d+) requests")


def _model():
    from keras_ar.models import WaveNet

    return WaveNet(num_classes=256, dilations=[2 ** i for i in range(10)],
                   residual_channels=64, skip_channels=64)


def run(quick=False):
    import keras

    from bench.serving_bench import Server
    from export.saved_model import export_saved_model

    keras.utils.set_random_seed(0)
    samples = 512 if quick else 1024
    rows = [_row("machine", cpu_info(), 0, "")]
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        saved = root / "models" / "wavenet" / "1"
        export_saved_model(_model(), saved, signatures=("init_state", "sample_chunk"))
        (root / "batching.txt").write_text(PARAMETERS)
        modes = {"without batching": (),
                 "with batching": ("--enable_batching",
                                   f"--batching_parameters_file={root / 'batching.txt'}")}
        servers = {}
        try:
            for mode, extra in modes.items():
                servers[mode] = Server(saved.parent, root / f"{len(servers)}.log",
                                       extra_args=extra)
            rates = _rates(servers, saved, samples, repeats=1 if quick else 2)
        finally:
            for server in servers.values():
                server.stop()
        for (mode, clients), rate in rates.items():
            rows.append(_row(f"{clients} client(s), {mode}", "samples/s (all clients)", rate,
                             "samples/s"))
        for clients in CLIENTS:
            ratio = rates["with batching", clients] / rates["without batching", clients]
            rows.append(_row(f"{clients} client(s)", "batched / unbatched", ratio, "x"))
        log = servers["with batching"].log_path
        found = STATS.findall(log.read_text())
        if found:
            batches, requests = map(int, found[-1])
            rows.append(_row("with batching, all client counts", "requests per sample_chunk "
                             "run (mean)", requests / batches, "requests"))
    return rows


def _rates(servers, saved, samples, repeats):
    """{(mode, clients): best samples/s of `repeats}`}, the two servers measured in turn at
    each client count (both stay up: the idle one costs no CPU)."""
    rates = {}
    for clients in CLIENTS:
        for _ in range(repeats):
            for mode, server in servers.items():
                rate = _aggregate(server, saved, clients, samples)
                rates[mode, clients] = max(rates.get((mode, clients), 0.0), rate)
    return dict(sorted(rates.items(), key=lambda item: (item[0][1], item[0][0] != "without "
                                                                              "batching")))


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
