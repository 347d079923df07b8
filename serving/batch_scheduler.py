"""Server-side batching with TF Serving's semantics (`--enable_batching`).

One scheduler serves every model, as TF Serving's shared batch scheduler: requests go to a
queue per (model version, signature, output set, non-batch shapes, dtypes and input keys),
so only requests whose tensors line up are merged. A queue holds one open batch and the
closed batches waiting for a thread:

* a request joins the open batch when its rows fit under `max_batch_size`; otherwise the
  open batch is closed and a new one opened. A request of more than `max_batch_size` rows
  is refused with INVALID_ARGUMENT, as TF Serving refuses it without
  `enable_large_batch_splitting`.
* a batch is closed when full, or runs once `batch_timeout_micros` have passed since its
  first request arrived and one of the `num_batch_threads` threads is free (with 0, an idle
  thread takes it at once: batches form from the requests that arrive while the threads are
  busy).
* opening a batch when `max_enqueued_batches` batches already wait in the queue (the open
  one included) answers UNAVAILABLE: the queue is full, retry later.

A batch's inputs are concatenated along axis 0, padded up to the next `allowed_batch_sizes`
entry with copies of the first row, run once, and every output is split back by rows: each
request gets exactly the rows it would get alone (the signatures batched compute each row
independently). An error in the merged run is answered to every request of the batch.
"""

import collections
import logging
import threading
import time

import numpy as np

from serving.errors import ServingError

LOG = logging.getLogger("keras_ar.serving")


class _Task:
    """One request: its feeds, its rows, and where its answer lands."""

    def __init__(self, feeds, rows):
        self.feeds, self.rows = feeds, rows
        self.outputs = self.error = None
        self.done = threading.Event()

    def finish(self, outputs=None, error=None):
        self.outputs, self.error = outputs, error
        self.done.set()


class _Queue:
    """The open batch and the closed batches of one queue key."""

    def __init__(self, run, label, parameters):
        self.run, self.label, self.parameters = run, label, parameters
        self.open, self.open_rows, self.open_start, self.open_deadline = [], 0, 0.0, 0.0
        self.ready = collections.deque()  # closed batches: (first arrival, [tasks])

    def add(self, task, now):
        limit = self.parameters.max_batch_size
        if self.open and self.open_rows + task.rows > limit:
            self._close()
        if not self.open:
            if len(self.ready) >= self.parameters.max_enqueued_batches:
                raise ServingError(
                    "UNAVAILABLE",
                    f"The batch scheduling queue of model {self.label[0]!r} version "
                    f"{self.label[1]} signature \"{self.label[2]}\" is full "
                    f"({len(self.ready)} batches waiting; max_enqueued_batches = "
                    f"{self.parameters.max_enqueued_batches}). Retry later, or raise "
                    f"max_enqueued_batches or num_batch_threads in the batching parameters "
                    f"file.")
            self.open_deadline = now + self.parameters.batch_timeout_s
            self.open_start = now
        self.open.append(task)
        self.open_rows += task.rows
        if self.open_rows >= limit:
            self._close()

    def _close(self):
        self.ready.append((self.open_start, self.open))
        self.open, self.open_rows = [], 0

    def due(self, now):
        """The arrival time of the batch a free thread would take now, or None."""
        if self.ready:
            return self.ready[0][0]
        if self.open and self.open_deadline <= now:
            return self.open_start
        return None

    def take(self):
        if not self.ready:
            self._close()
        return self.ready.popleft()[1]

    def empty(self):
        return not self.open and not self.ready


class BatchScheduler:
    """Merges concurrent requests into batches (`BatchingParameters`) and runs them on
    `num_batch_threads` daemon threads. `submit` blocks until the request's rows are back.
    `stats()` counts batches per (model, version, signature)."""

    def __init__(self, parameters):
        self.parameters = parameters
        self._cond = threading.Condition()
        self._queues = {}  # key -> _Queue; removed when empty (no servable is kept alive)
        self._stats = {}  # (model, version, signature) -> counters
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
                         for i in range(parameters.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, key, label, run, feeds):
        """Run `run(merged feeds) -> {output: array}` on a batch holding `feeds`; returns
        `feeds`' rows of every output. `key` names the queue (requests with equal keys are
        merged); `label` is (model, version, signature), for errors and stats."""
        rows = next(iter(feeds.values())).shape[0]
        if rows > self.parameters.max_batch_size:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Task size {rows} is larger than maximum input batch size "
                f"{self.parameters.max_batch_size} (max_batch_size in the batching "
                f"parameters file). Send at most {self.parameters.max_batch_size} rows per "
                f"request, or raise max_batch_size.")
        task = _Task(feeds, rows)
        with self._cond:
            if self._closed:
                raise ServingError("UNAVAILABLE", "The server is shutting down.")
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(run, label, self.parameters)
            try:
                queue.add(task, time.monotonic())
            finally:
                if queue.empty():
                    del self._queues[key]
            self._cond.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def stats(self):
        """[{model, version, signature, batches, requests, rows, padded_rows,
        largest_batch}] (largest_batch: most requests merged into one run)."""
        with self._cond:
            return [dict(zip(("model", "version", "signature"), label), **counts)
                    for label, counts in sorted(self._stats.items())]

    def log_stats(self):
        for entry in self.stats():
            LOG.info("Batching %s version %s signature %s: %d batches of %d requests (%d "
                     "rows, %d after padding); largest batch %d requests", entry["model"],
                     entry["version"], entry["signature"], entry["batches"],
                     entry["requests"], entry["rows"], entry["padded_rows"],
                     entry["largest_batch"])

    def close(self):
        """Stop the threads; requests still queued are answered UNAVAILABLE."""
        with self._cond:
            self._closed = True
            pending = [t for q in self._queues.values() for _, batch in q.ready for t in batch]
            pending += [t for q in self._queues.values() for t in q.open]
            self._queues.clear()
            self._cond.notify_all()
        for task in pending:
            task.finish(error=ServingError("UNAVAILABLE", "The server is shutting down."))

    # ----------------------------------------------------------------- threads
    def _work(self):
        while True:
            with self._cond:
                picked = self._next()
                while picked is None:
                    if self._closed:
                        return
                    self._cond.wait(self._wait_s())
                    picked = self._next()
                queue, batch = picked
            self._run(queue, batch)

    def _next(self):
        """(queue, batch) of the oldest batch due now, or None (under the lock)."""
        now = time.monotonic()
        due = [(queue.due(now), key) for key, queue in self._queues.items()]
        due = [(t, key) for t, key in due if t is not None]
        if not due:
            return None
        key = min(due, key=lambda item: item[0])[1]
        queue = self._queues[key]
        batch = queue.take()
        if queue.empty():
            del self._queues[key]
        return queue, batch

    def _wait_s(self):
        """Seconds until the first open batch's timeout (None: until notified)."""
        deadlines = [q.open_deadline for q in self._queues.values() if q.open]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _run(self, queue, batch):
        rows = sum(task.rows for task in batch)
        padded = self.parameters.padded_size(rows)
        try:
            outputs = queue.run(_merge(batch, padded))
            parts = _split(outputs, batch, padded)
        except ServingError as error:
            parts = [error] * len(batch)
        except Exception as error:  # a bug answers INTERNAL to each request of the batch
            LOG.exception("A batch of %s failed", queue.label)
            parts = [ServingError("INTERNAL", f"{type(error).__name__}: {error}")] * len(batch)
        with self._cond:
            counts = self._stats.setdefault(queue.label, dict(
                batches=0, requests=0, rows=0, padded_rows=0, largest_batch=0))
            counts["batches"] += 1
            counts["requests"] += len(batch)
            counts["rows"] += rows
            counts["padded_rows"] += padded
            counts["largest_batch"] = max(counts["largest_batch"], len(batch))
        for task, part in zip(batch, parts):
            if isinstance(part, ServingError):
                task.finish(error=part)
            else:
                task.finish(outputs=part)


def _merge(batch, padded):
    """{input: the batch's rows concatenated along axis 0, padded to `padded` rows with
    copies of the first row}."""
    if len(batch) == 1 and batch[0].rows == padded:
        return batch[0].feeds
    rows = sum(task.rows for task in batch)
    merged = {}
    for key in batch[0].feeds:
        parts = [task.feeds[key] for task in batch]
        if padded > rows:
            parts.append(np.repeat(parts[0][:1], padded - rows, axis=0))
        merged[key] = np.concatenate(parts, axis=0)
    return merged


def _split(outputs, batch, padded):
    """[{output: the task's rows}] per task; every output must have `padded` rows."""
    for key, value in outputs.items():
        if np.ndim(value) == 0 or np.shape(value)[0] != padded:
            raise ServingError("INTERNAL",
                               f"Output `{key}` of shape {list(np.shape(value))} has no "
                               f"batch axis of {padded} rows, so the batch cannot be split; "
                               f"run this signature without --enable_batching.")
    parts, start = [], 0
    for task in batch:
        stop = start + task.rows
        parts.append({k: v[start:stop] for k, v in outputs.items()})
        start = stop
    return parts
