"""Trainer: resume after SIGKILL, MirroredStrategy == single device, two-worker training."""

import dataclasses
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from pipelines import config as config_lib
from tests.pipelines import helpers

REPO = pathlib.Path(__file__).parents[2]


def _params(examples, **training):
    data = dataclasses.asdict(helpers.data_config(examples, window=128, batch_size=4))
    data.pop("examples_dir")
    base = dict(steps=4, steps_per_epoch=2, learning_rate=1e-2, verbose=0)
    base.update(training)
    return {"data": data,
            "model": {"family": "wavenet", "params": dict(helpers.TINY_WAVENET)},
            "training": dataclasses.asdict(config_lib.TrainingConfig(**base))}


def _spawn(tmp_path, params, examples, out, key="key", env=None, name="args", **extra):
    args = tmp_path / f"{name}.json"
    args.write_text(json.dumps({"params": params, "examples": str(examples), "out": str(out),
                                "root": str(tmp_path / "root"), "key": key, **extra}))
    env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "tests.pipelines.train_worker", str(args)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _weights(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, np.array(obj))
                     if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_from_backup(tmp_path):
    examples = helpers.write_examples(tmp_path / "ex", "audio")
    params = _params(examples, steps=400, steps_per_epoch=2)
    backup = tmp_path / "root" / "Trainer" / "backup" / "key" / "local_0"
    proc = _spawn(tmp_path, params, examples, tmp_path / "m1")
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        meta = backup / "training_metadata.json"
        if meta.is_file() and json.loads(meta.read_text())["epoch"] >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved_epoch = json.loads((backup / "training_metadata.json").read_text())["epoch"]
    backed_up = _weights(backup / "latest.weights.h5")  # the rerun deletes the backup
    params["training"]["steps"] = 2 * (saved_epoch + 1)  # one more epoch after the resume
    dump = tmp_path / "restored_optimizer.npz"
    rerun = _spawn(tmp_path, params, examples, tmp_path / "m2", name="rerun",
                   dump_optimizer=str(dump))
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output
    resume = json.loads((tmp_path / "m2" / "resume.json").read_text())
    assert resume["initial_epoch"] >= saved_epoch >= 2
    assert resume["initial_step"] == 2 * resume["initial_epoch"]  # optimizer step restored
    # every optimizer variable, the EMA slots included, holds the backed-up value at resume
    restored = np.load(dump)
    paths = list(restored["paths"])
    averages = [i for i, p in enumerate(paths) if p.endswith("_average")]
    assert len(averages) == len([p for p in paths if p.endswith("_momentum")]) > 0
    for i, path in enumerate(paths):
        np.testing.assert_array_equal(restored[str(i)], backed_up[f"optimizer/vars/{i}"],
                                      err_msg=path)
    assert all(np.any(restored[str(i)]) for i in averages)  # fresh EMA slots are zeros
    assert resume["ema_norm"] == pytest.approx(
        sum(float(np.abs(restored[str(i)]).sum()) for i in averages), rel=1e-5)
    summary = json.loads((tmp_path / "m2" / "training.json").read_text())
    assert summary["steps"] == params["training"]["steps"]
    assert len(summary["losses"]) == params["training"]["steps"] // 2 - resume["initial_epoch"]


@pytest.fixture(scope="module")
def single_and_mirrored(tmp_path_factory):
    """(folder, {run: output}): 4 steps of the Trainer on one device and under
    MirroredStrategy, each in a fresh process (as a pipeline step runs): collective ops of
    earlier strategies in one process can clash, and the Trainer splits the CPU into the 2
    logical devices that `devices` names itself."""
    tmp_path = tmp_path_factory.mktemp("single_and_mirrored")
    examples = helpers.write_examples(tmp_path / "ex", "audio")
    runs = {"single": {}, "mirrored": dict(strategy="mirrored", devices=["/cpu:0", "/cpu:1"])}
    procs = {name: _spawn(tmp_path, _params(examples, learning_rate=1e-3, **training),
                          examples, tmp_path / name, key=name, name=name)
             for name, training in runs.items()}
    outputs = {}
    for name, proc in procs.items():
        outputs[name], _ = proc.communicate(timeout=400)
        assert proc.returncode == 0, outputs[name]
    return tmp_path, outputs


@pytest.mark.slow
def test_mirrored_two_logical_cpus_matches_single_device(single_and_mirrored):
    tmp_path, runs = single_and_mirrored
    single, mirrored = (_weights(tmp_path / name / "raw.weights.h5") for name in runs)
    assert single.keys() == mirrored.keys()
    changed = 0
    for name in single:
        np.testing.assert_allclose(single[name], mirrored[name], atol=2e-4, rtol=1e-3,
                                   err_msg=name)
        changed += int(not np.allclose(single[name], 0))
    assert changed


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_two_processes_agree(tmp_path):
    examples = helpers.write_examples(tmp_path / "ex", "audio", count=(16, 4, 4), shards=4)
    params = _params(examples, strategy="multi_worker", steps=4, steps_per_epoch=2)
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker",
                                                               "index": index}}
        procs.append(_spawn(tmp_path, params, examples, tmp_path / "model", name=f"w{index}",
                            env={"TF_CONFIG": json.dumps(tf_config)}))
    for proc in procs:
        output, _ = proc.communicate(timeout=400)
        assert proc.returncode == 0, output
    chief = _weights(tmp_path / "model" / "raw.weights.h5")
    other = _weights(tmp_path / "model" / "_workers" / "worker_1" / "raw.weights.h5")
    assert chief.keys() == other.keys()
    for name in chief:
        np.testing.assert_allclose(chief[name], other[name], atol=1e-6, err_msg=name)
    summary = json.loads((tmp_path / "model" / "training.json").read_text())
    assert summary["replicas"] == 2 and summary["steps"] == 4


def test_mirrored_devices_beyond_an_initialised_runtime_raise_clearly():
    import tensorflow as tf

    from pipelines.components import training

    tf.config.list_logical_devices("CPU")  # the runtime is up (2 logical CPUs, conftest)
    training.ensure_logical_cpus(["/cpu:0", "/cpu:1"])  # enough: nothing to do
    with pytest.raises(ValueError, match=r"needs 4 logical CPU devices.*fresh process"):
        training.ensure_logical_cpus(["/cpu:0", "/cpu:3"])


def _scalars(log_dir):
    """{tag: [values]} from the TensorBoard event files under `log_dir`."""
    import tensorflow as tf

    out = {}
    for path in sorted(pathlib.Path(log_dir).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                out.setdefault(value.tag, []).append(
                    float(tf.make_ndarray(value.tensor)) if value.HasField("tensor")
                    else value.simple_value)
    return out


@pytest.mark.slow
def test_train_and_validation_curves_in_bits_reach_tensorboard(single_and_mirrored):
    tmp_path, outputs = single_and_mirrored  # the single-device run: 4 steps, 2 epochs
    assert "ran out of data" not in outputs["single"]  # validation takes its exact batches
    summary = json.loads((tmp_path / "single" / "training.json").read_text())
    bits = np.array(summary["losses"]) / (128 * np.log(2))  # window 128, nats per window
    np.testing.assert_allclose(summary["bits_per_position"], bits, rtol=1e-4)
    assert len(summary["val_bits_per_position"]) == 2
    assert all(0 < v < 12 for v in summary["val_bits_per_position"])
    train = _scalars(tmp_path / "single" / "logs" / "train")
    validation = _scalars(tmp_path / "single" / "logs" / "validation")
    np.testing.assert_allclose(train["epoch_bits_per_position"], bits, rtol=1e-4)
    np.testing.assert_allclose(validation["epoch_bits_per_position"],
                               summary["val_bits_per_position"], rtol=1e-4)
