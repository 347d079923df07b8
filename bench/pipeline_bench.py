"""Pipelines: input pipeline vs training throughput, input wait, and ingest.

For audio (`pipelines/configs/speech_wavenet.yaml`: espeak-ng speech, WaveNet) and images
(`pipelines/configs/fashion_pixelcnn.yaml` when present, else Fashion-MNIST with a small
GatedPixelCNN built here), all in one process:

* ingest: ExampleGen (Beam DirectRunner, in_memory) from the bundled source into TFRecords:
  records/s, and for speech audio seconds/s (sum of the WAV durations);
* ingest runners: the same ExampleGen on DirectRunner in_memory, DirectRunner
  multi_processing (2 workers) and DaskRunner on a `distributed.LocalCluster` of 2 worker
  processes (1 thread each) on 127.0.0.1: records/s and the ratio to in_memory. The cluster
  starts and each worker imports TensorFlow and the sources before any timing (that start is
  its own row); `python -m bench.pipeline_bench --part runners` runs only this part;
* input: `make_dataset(config, "train")` alone: the first batch's latency (opening files,
  tracing the map functions), examples/s over the rest of its first pass (TFRecord read,
  decode, resample, mu-law, cache fill) and over later batches (from the cache);
* training: the Trainer's step (`model.compute_loss` + Adam, in a `tf.function`) on one
  in-memory batch: examples/s with no input pipeline at all;
* input wait: the same step fed by `make_dataset` (prefetch AUTOTUNE), from a fresh dataset
  (first pass included): the share of the loop's wall time spent in `next(iterator)`
  (target < 5%), and the slowdown against the in-memory batch run (input threads compete
  with training for the same 2 cores).
"""

import dataclasses
import io
import json
import os
import pathlib
import tempfile
import time
import wave

import tensorflow as tf

from pipelines import config as config_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
SPEECH_CONFIG = REPO / "pipelines" / "configs" / "speech_wavenet.yaml"
IMAGE_CONFIG = REPO / "pipelines" / "configs" / "fashion_pixelcnn.yaml"
FALLBACK_IMAGES = {  # used only while fashion_pixelcnn.yaml is not in the tree
    "name": "fashion_pixelcnn_bench",
    "data": {"source": "fashion_mnist", "modality": "images", "max_examples": 2000,
             "use_label": True, "batch_size": 16, "num_shards": 2},
    "model": {"family": "gated_pixel_cnn",
              "params": {"image_shape": [28, 28, 1], "num_levels": 256, "num_layers": 5,
                         "filters": 32, "num_global_classes": 10}},
}


def run(quick=False, parts=("ingest", "runners", "training")):
    if parts == ("runners",):
        return runners(quick)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        speech = config_lib.load(str(SPEECH_CONFIG))
        case = "speech_wavenet (espeak-ng, 4 voices)"
        examples, ingest_rows = ingest(speech, pathlib.Path(tmp) / "speech", case,
                                       max_examples=16 if quick else 0)
        rows += ingest_rows
        rows += input_vs_training(speech, examples, "audio: " + case, quick)
        images, name = _image_config(quick)
        examples, ingest_rows = ingest(images, pathlib.Path(tmp) / "images", name)
        rows += ingest_rows
        rows += input_vs_training(images, examples, "images: " + name, quick)
    return rows + runners(quick)


# ----------------------------------------------------------------------------- runners
RUNNERS = {"in_memory": {},
           "multi_processing": {"options": {"direct_running_mode": "multi_processing",
                                            "direct_num_workers": 2}},
           "dask": {"runner": "DaskRunner"}}


def runners(quick=False):
    """ExampleGen's records/s on each runner (RUNNERS) for the speech and image configs."""
    from distributed import Client, LocalCluster

    rows = []
    start = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None,
                           scheduler_kwargs={"dashboard": False})
    try:
        with Client(cluster) as client:
            client.run(_warm_worker)
        warm = time.perf_counter() - start
        images, name = _image_config(quick)
        cases = [(config_lib.load(str(SPEECH_CONFIG)), "speech_wavenet (espeak-ng)",
                  16 if quick else None), (images, name, None)]
        with tempfile.TemporaryDirectory() as tmp:
            for config, case, cap in cases:
                rates = {}
                for runner, beam in RUNNERS.items():
                    if runner == "dask":
                        beam = dict(beam, options={
                            "dask_client_address": cluster.scheduler_address})
                    out = pathlib.Path(tmp) / f"{len(rows)}-{runner}"
                    _, ingest_rows = ingest(config, out, case, cap, beam=beam)
                    rates[runner] = ingest_rows[2]["value"]
                    rows.append(_row(case, f"ingest on {runner}", rates[runner],
                                     "examples/s"))
                for runner in ("multi_processing", "dask"):
                    rows.append(_row(case, f"ingest {runner} / in_memory",
                                     rates[runner] / rates["in_memory"], "x"))
        rows.append(_row("dask LocalCluster, 2 workers", "cluster start + worker imports",
                         warm, "s"))
    finally:
        cluster.close()
    return rows


def _warm_worker():
    import tensorflow  # noqa: F401

    import pipelines.components.example_gen
    import pipelines.data.sources  # noqa: F401


def _image_config(quick):
    """The image config (or the fallback) with at most 2000 images (400 when quick)."""
    if IMAGE_CONFIG.is_file():
        raw, name = config_lib.to_dict(config_lib.load(str(IMAGE_CONFIG))), IMAGE_CONFIG.name
    else:
        raw, name = dict(FALLBACK_IMAGES), "fashion_mnist + GatedPixelCNN (bench fallback)"
    cap = 400 if quick else 2000
    if not raw["data"].get("max_examples") or raw["data"]["max_examples"] > cap:
        raw["data"] = dict(raw["data"], max_examples=cap)
    images = raw["data"]["max_examples"]
    return config_lib.from_dict(raw, "pipeline_bench"), f"{name}, {images} images"


# ----------------------------------------------------------------------------- ingest
def ingest(config, out_dir, case, max_examples=None, beam=None):
    """ExampleGen into `out_dir` on the `beam` runner settings (default: DirectRunner
    in_memory); rows for records/s (and audio seconds/s for audio)."""
    from pipelines.components import specs
    from pipelines.components.base import Artifact, ExecutionContext

    data = dataclasses.asdict(config.data)
    data.pop("examples_dir")
    if max_examples is not None and max_examples:
        data["max_examples"] = max_examples
    artifact = Artifact("Examples", str(out_dir))
    start = time.perf_counter()
    specs.EXAMPLE_GEN.run_executor({}, {"examples": artifact}, {"data": data},
                                   ExecutionContext(str(out_dir.parent), "bench", "bench",
                                                    log=lambda m: None, beam=beam or {}))
    seconds = time.perf_counter() - start
    records = artifact.properties["records"]
    rows = [_row(case, "ingest records", records, "records"),
            _row(case, "ingest wall time", seconds, "s"),
            _row(case, "ingest throughput", records / seconds, "examples/s")]
    if config.data.modality == "audio":
        audio_seconds = _audio_seconds(out_dir)
        rows += [_row(case, "ingest audio", audio_seconds, "audio s"),
                 _row(case, "ingest audio throughput", audio_seconds / seconds,
                      "audio s/s")]
    return str(out_dir), rows


def _audio_seconds(examples_dir):
    from pipelines.data import records

    total = 0.0
    for split in records.SPLITS:
        for data in tf.data.TFRecordDataset(records.shard_files(examples_dir, split)):
            record = records.deserialize(data.numpy())
            with wave.open(io.BytesIO(record["audio"])) as w:
                total += w.getnframes() / w.getframerate()
    return total


# ----------------------------------------------------------------------------- throughput
def input_vs_training(config, examples, case, quick):
    import keras

    from pipelines.components import training as training_lib
    from pipelines.data import make_dataset

    data = dataclasses.replace(config.data, examples_dir=examples)
    batch = data.batch_size
    first_pass = -(-_train_count(examples) // batch)  # batches until the cache is full
    later = 10 if quick else 50
    steps = 8 if quick else 40
    keras.utils.set_random_seed(0)
    startup, cold, warm = _input_rates(make_dataset(data, "train"), first_pass, later,
                                       batch)
    model = training_lib.build_model(config.model, data, _metadata(examples))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    one_batch = next(iter(make_dataset(data, "train")))
    model.compute_loss(x=one_batch)  # builds the model eagerly
    model.optimizer.build(model.trainable_variables)
    step = _train_step(model)
    in_memory = _in_memory_loop(step, one_batch, steps)
    waited, fed = _fed_loop(step, make_dataset(data, "train"), steps)
    in_memory = min(in_memory, _in_memory_loop(step, one_batch, steps))  # before and after
    return [
        _row(case, "input first batch (startup)", startup, "s"),
        _row(case, "input first pass", cold, "examples/s"),
        _row(case, "input cached", warm, "examples/s"),
        _row(case, "training (in-memory batch)", steps * batch / in_memory, "examples/s"),
        _row(case, "training (make_dataset)", steps * batch / fed, "examples/s"),
        _row(case, "input first pass / training", cold / (steps * batch / in_memory), "x"),
        _row(case, "input cached / training", warm / (steps * batch / in_memory), "x"),
        _row(case, "loop waiting on input", 100.0 * waited / fed, "%"),
        _row(case, "slowdown vs in-memory", 100.0 * (fed / in_memory - 1.0), "%"),
    ]


def _input_rates(dataset, first_pass, later, batch):
    """(first-batch seconds, examples/s over the rest of the first pass, examples/s from the
    cache): the first batch also pays for opening the files and tracing the map functions."""
    iterator = iter(dataset)
    start = time.perf_counter()
    next(iterator)
    startup = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(max(first_pass - 1, 1)):
        next(iterator)
    cold = max(first_pass - 1, 1) * batch / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(later):
        next(iterator)
    return startup, cold, later * batch / (time.perf_counter() - start)


def _in_memory_loop(step, batch, steps):
    """Seconds for `steps` steps on one in-memory batch, after two warm-up steps."""
    for _ in range(2):
        step(batch).numpy()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(batch)
    loss.numpy()
    return time.perf_counter() - start


def _fed_loop(step, dataset, steps):
    """(seconds in next(iterator), total seconds) of `steps` steps after one warm-up step."""
    iterator = iter(dataset)
    step(next(iterator)).numpy()
    waited = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        before = time.perf_counter()
        batch = next(iterator)
        waited += time.perf_counter() - before
        loss = step(batch)
    loss.numpy()
    return waited, time.perf_counter() - start


def _train_step(model):
    optimizer, variables = model.optimizer, model.trainable_variables

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=batch, training=True)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return step


def _train_count(examples):
    from pipelines.data import records

    return sum(1 for _ in tf.data.TFRecordDataset(records.shard_files(examples, "train")))


def _metadata(examples):
    path = os.path.join(examples, "ingest.json")
    return json.load(open(path)).get("metadata", {}) if os.path.isfile(path) else {}


def _row(case, metric, value, unit):
    return {"benchmark": "pipelines", "case": case, "metric": metric, "value": float(value),
            "unit": unit}


def main(argv=None):
    import argparse

    from bench.common import cpu_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "runners"], default="all")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(cpu_info(), flush=True)
    rows = run(args.quick, ("runners",) if args.part == "runners" else
               ("ingest", "runners", "training"))
    for row in rows:
        print(f"{row['case']:45s} {row['metric']:35s} {row['value']:10.3f} {row['unit']}")


if __name__ == "__main__":
    main()
