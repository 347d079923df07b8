"""The batching bench reads the merged requests per run from the batched server's own log
line (`BatchScheduler.log_stats`), leaving out each client's one-request warm-up; its
parameters are a batching file the server accepts."""

import logging
import threading

import numpy as np

from bench import batching_bench
from serving.batch_scheduler import BatchScheduler
from serving.batching_parameters import BatchingParameters


def test_the_timed_batch_size_comes_from_the_server_log(tmp_path, caplog):
    scheduler = BatchScheduler(BatchingParameters.from_text(batching_bench.PARAMETERS))
    label = ("wavenet", 1, "sample_chunk")

    def submit(rows):
        scheduler.submit(label, label, lambda feeds: feeds, {"x": np.zeros([rows, 2])})

    try:
        submit(1)  # a warm-up, alone
        clients = [threading.Thread(target=submit, args=(1,)) for _ in range(4)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        with caplog.at_level(logging.INFO, logger="keras_ar.serving"):
            scheduler.log_stats()
    finally:
        scheduler.close()
    stats = scheduler.stats()[0]
    log = tmp_path / "batched.log"
    log.write_text("\n".join(caplog.messages) + "\n")
    timed = (stats["requests"] - 1) / (stats["batches"] - 1)
    assert stats["requests"] == 5 and timed >= 1
    assert batching_bench._timed_batch_size(log, warm_ups=1) == timed
