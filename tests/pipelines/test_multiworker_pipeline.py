"""The Trainer on local worker processes (`training.strategy: multi_worker`, `training.workers`):
a tiny text pipeline on 2 workers completes and exports; SIGKILL of one worker mid-training
stops the other and fails the Trainer naming it, and the rerun resumes both workers from the
chief's last epoch backup."""

import json
import os
import signal
import threading
import time

import pytest

from pipelines import config as config_lib
from pipelines import runner
from pipelines.metadata import Metadata, state_name
from tests.pipelines.test_text_pipeline import _tiny_text_config

STEPS = 60  # 30 epochs of 2 steps: time to kill a worker at the end of epoch 2


def _two_worker_config(tmp_path):
    raw = config_lib.to_dict(_tiny_text_config(tmp_path))
    raw["data"]["num_shards"] = 2  # one whole file per worker
    raw["training"].update(strategy="multi_worker", workers=2, steps=STEPS, steps_per_epoch=2,
                           verbose=0)
    raw["export"]["targets"] = ["savedmodel"]
    return config_lib.from_dict(raw, "tiny_text_workers")


def _kill_worker_at_epoch(root, index, epoch, killed):
    """SIGKILLs worker `index` once the chief's backup holds `epoch`; records (pid, epoch)."""
    deadline = time.time() + 900
    while time.time() < deadline and not killed:
        metas = list(root.glob("Trainer/backup/*/worker_0/training_metadata.json"))
        listings = list(root.glob("Trainer/model/*/_workers/workers.json"))
        if metas and listings:
            try:
                saved = json.loads(metas[0].read_text())["epoch"]
            except (OSError, ValueError, KeyError):  # the backup was just deleted
                saved = 0
            if saved >= epoch:
                pid = json.loads(listings[0].read_text())["workers"][index]["pid"]
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, saved))
        time.sleep(0.05)


@pytest.mark.slow
def test_two_workers_train_export_and_resume_after_one_is_killed(tmp_path):
    config = _two_worker_config(tmp_path)
    root = tmp_path / "root"
    killed = []
    watcher = threading.Thread(target=_kill_worker_at_epoch, args=(root, 1, 2, killed))
    watcher.start()
    with pytest.raises(runner.PipelineError) as err:
        runner.run(config, root, logger=lambda m: None)
    watcher.join()
    assert killed, "worker 1 was never killed"
    message = str(err.value)
    assert "Trainer failed" in message and "worker 1 of 2 was killed by SIGKILL" in message
    assert "the other workers were stopped" in message
    [failed_dir] = list((root / "Trainer" / "model").iterdir())
    listing = json.loads((failed_dir / "_workers" / "workers.json").read_text())
    chief_pid = listing["workers"][0]["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(chief_pid, 0)  # stopped and reaped, not left waiting on its collectives
    assert not (failed_dir / "model.keras").exists()  # no half-trained model artifact
    store = Metadata(root / runner.METADATA_FILE)
    [trainer_run] = store.executions("Trainer")
    assert state_name(trainer_run) == "FAILED"

    report = runner.run(config, root, logger=lambda m: None)
    states = {name: state for name, state, _ in report}
    assert states.pop("Trainer") == "COMPLETE"
    assert [states.pop(n) for n in ("ExampleGen", "DataValidator", "Embedder")] == [
        "CACHED"] * 3
    assert set(states.values()) == {"COMPLETE"}, states
    outputs = {name: out for name, _, out in report}
    model = outputs["Trainer"]["model"].path
    chief = json.loads((model / "resume.json").read_text())
    other = json.loads((model / "_workers" / "worker_1" / "resume.json").read_text())
    assert chief["initial_epoch"] >= killed[0][1] >= 2  # resumed, not restarted
    assert other["initial_epoch"] == chief["initial_epoch"]  # both from the chief's backup
    assert chief["initial_step"] == 2 * chief["initial_epoch"]
    summary = json.loads((model / "training.json").read_text())
    assert summary["replicas"] == 2 and summary["steps"] == STEPS
    assert len(summary["losses"]) == STEPS // 2 - chief["initial_epoch"]
    assert outputs["Trainer"]["model"].properties["steps"] == STEPS
    assert "Trainer: epoch" in (model / "_workers" / "logs" / "worker_0.log").read_text()
    exported = outputs["Exporter"]["exported_model"].path / "export" / "savedmodel"
    assert (exported / "saved_model.pb").is_file()


@pytest.mark.parametrize("training, expected", [
    ({"workers": 2}, "0 unless training.strategy is 'multi_worker'"),
    ({"strategy": "multi_worker", "workers": -1}, "an integer >= 0"),
])
def test_workers_values_are_checked(training, expected):
    with pytest.raises(config_lib.ConfigError, match="`training.workers`") as err:
        config_lib.from_dict({"training": training}, "c.yaml")
    assert expected in str(err.value)
