"""Load: concurrent clients run their own state round trips; nothing mixes up."""

import concurrent.futures
import time

import numpy as np
import pytest

from serving.generator import Generator
from serving.saved_model_backend import SavedModelBackend
from serving.tf_serving_backend import TFServingBackend

CLIENTS, STEPS = 32, 100


def _client(url, manifest, seed):
    backend = TFServingBackend(url, manifest=manifest)
    try:
        generator = Generator(backend)
        latencies = []
        run = generator.start(STEPS, batch_size=1, seed=seed, temperature=1.0)
        while not run.finished:
            start = time.perf_counter()
            generator.step(run)
            latencies.append(time.perf_counter() - start)
        return run.x.copy(), latencies
    finally:
        backend.close()


@pytest.mark.slow
def test_32_clients_x_100_sample_steps_match_their_solo_runs(server, model_root):
    saved = model_root / "wavenet" / "1"
    url = f"grpc://{server.grpc_target}/wavenet_all/versions/1"
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda s: _client(url, saved, s), range(CLIENTS)))
    solo = Generator(SavedModelBackend(saved))
    for seed, (x, _) in enumerate(results):
        expected = solo.generate(STEPS, batch_size=1, seed=seed, temperature=1.0)["x"]
        np.testing.assert_array_equal(x, expected, err_msg=f"client {seed}")
    latencies = np.concatenate([lat for _, lat in results]) * 1e3
    print(f"{CLIENTS} clients x {STEPS} gRPC sample_step: p50 {np.percentile(latencies, 50):.2f}"
          f" ms, p99 {np.percentile(latencies, 99):.2f} ms")
