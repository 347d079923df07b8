"""bench.common.concurrent_clients: clients start together, results keep their order, and a
failing client is reported without leaving the others waiting."""

import threading
import time

import pytest

from bench.common import concurrent_clients


def test_clients_start_together_and_results_keep_their_order():
    started = []

    def work(i, ready):
        time.sleep(0.05 * i)  # untimed setup of different lengths
        ready()
        started.append(time.perf_counter())
        time.sleep(0.1)
        return i * 10

    wall, results = concurrent_clients(4, work)
    assert results == [0, 10, 20, 30]
    assert max(started) - min(started) < 0.05  # released by one barrier
    assert 0.1 <= wall < 0.5  # the timed part only, not the setup


@pytest.mark.parametrize("before_ready", [True, False])
def test_a_failing_client_is_reported_and_releases_the_others(before_ready):
    def work(i, ready):
        if i == 1 and before_ready:
            raise ValueError("setup broke")
        ready()
        if i == 1:
            raise ValueError("run broke")
        return i

    before = set(threading.enumerate())
    cause = r"setup broke" if before_ready else r"run broke"
    with pytest.raises(RuntimeError, match=rf"1 of 3 clients failed: ValueError\('{cause}"):
        concurrent_clients(3, work)
    # every client thread ended (threads of other tests in this worker are not counted)
    assert [t for t in threading.enumerate() if t not in before] == []
