"""Training helpers for the Trainer: strategies, precision, model building, callbacks."""

import json
import math
import os

import keras
import tensorflow as tf

from pipelines.components.training_control import current_learning_rate
from pipelines.config import MODEL_FAMILIES  # config name -> keras_ar.models class name


def ensure_logical_cpus(devices):
    """Split the host CPU into logical devices when `devices` names more CPUs (`/cpu:N`) than
    TensorFlow has, so `mirrored` over `[/cpu:0, /cpu:1]` runs on a CPU-only machine. This
    must happen before TensorFlow initialises its devices; otherwise a clear error."""
    cpu_ids = [int(d.rsplit(":", 1)[-1]) for d in devices or () if "cpu:" in d.lower()]
    if not cpu_ids:
        return
    needed = max(cpu_ids) + 1
    cpu = tf.config.list_physical_devices("CPU")[0]
    have = len(tf.config.get_logical_device_configuration(cpu) or [cpu])  # no runtime init
    if have >= needed:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(needed)])
    except RuntimeError as error:
        raise ValueError(
            f"training.devices {list(devices)} needs {needed} logical CPU devices, but "
            f"TensorFlow is already initialised with {have}. Run the Trainer in a fresh "
            f"process (e.g. `keras-ar component run Trainer ...`).") from error


def make_strategy(training):
    """The tf.distribute strategy named by `training.strategy`."""
    name = training.strategy
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        ensure_logical_cpus(training.devices)
        return tf.distribute.MirroredStrategy(devices=training.devices or None)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("training.strategy 'multi_worker' needs the TF_CONFIG environment "
                             "variable (cluster spec and this task's type/index).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=training.tpu or None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown training.strategy {name!r}.")


def is_chief(strategy):
    """True unless this is a non-chief worker of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in (resolver.cluster_spec().as_dict() or {})
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)


def worker_id(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return f"{getattr(resolver, 'task_type', 'local')}_{getattr(resolver, 'task_id', 0)}"


def chief_id(strategy):
    """`worker_id` of the cluster's chief (`chief_0`, else `worker_0`); this process's own
    id outside a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return worker_id(strategy)
    return "chief_0" if "chief" in (resolver.cluster_spec().as_dict() or {}) else "worker_0"


def set_precision(mixed_precision):
    keras.config.set_dtype_policy(mixed_precision or "float32")


def build_model(model_config, data, metadata):
    """A keras_ar model from `model.family` and `model.params`, checked against the data."""
    import keras_ar.models as models

    if model_config.family not in MODEL_FAMILIES:
        raise ValueError(f"Unknown model.family {model_config.family!r}; choose from "
                         f"{sorted(MODEL_FAMILIES)}.")
    cls = getattr(models, MODEL_FAMILIES[model_config.family], None)
    if cls is None:
        raise ValueError(f"keras_ar.models has no {MODEL_FAMILIES[model_config.family]} yet "
                         f"(model.family {model_config.family!r}).")
    params = dict(model_config.params)
    speakers = int(metadata.get("num_speakers", 0))
    if data.modality == "audio" and data.use_speaker:
        declared = int(params.get("num_global_classes", 0))
        if declared < speakers:
            raise ValueError(
                f"The data have {speakers} speakers but model.params.num_global_classes is "
                f"{declared}; set it to at least {speakers} (or data.use_speaker: false).")
    if data.modality == "images":
        _check_image_params(params, data, metadata)
    if data.modality == "tokens" and data.vocabulary:
        from pipelines.data import vocabulary

        vocabulary.check_vocab_size(data.vocabulary, params)
    return cls(**params, metadata=decoding_metadata(data, metadata))


def decoding_metadata(data, metadata):
    """What a generator needs to decode this model's samples, from the data config and the
    source's metadata; saved with the model and carried into every export's manifest."""
    out = {}
    if data.modality == "audio":
        out["sample_rate"] = int(data.sample_rate)
        if data.local_features:
            from serving import audio_features

            out["local_features"] = audio_features.describe(
                data.local_features, data.sample_rate, data.feature_hop, data.num_mels)
        if data.use_speaker and metadata.get("speakers"):
            out["speakers"] = [str(s) for s in metadata["speakers"]]
    names = metadata.get("class_names") or metadata.get("classes")
    if data.modality == "images" and data.use_label and names:
        out["class_names"] = [str(c) for c in names]
    if data.modality == "pairs":
        from pipelines.data import pairs

        source_alphabet, target_alphabet = pairs.alphabets(data.options)
        out.update(source_alphabet=source_alphabet, target_alphabet=target_alphabet,
                   target_stop_id=len(target_alphabet),
                   # `keras-ar generate --source WORD --out F.txt`: letters -> ids, ids ->
                   # characters (the pad and stop ids follow the lists)
                   source_vocabulary=list(source_alphabet),
                   vocabulary=list(target_alphabet))
    if data.modality == "tokens":
        if data.vocabulary:
            from pipelines.data import vocabulary

            out["vocabulary"] = vocabulary.load_vocabulary(data.vocabulary)
        else:
            out["text"] = "bytes"
    return out


def _check_image_params(params, data, metadata):
    """The model's bit depth and class count must cover what the source declares."""
    levels, classes = int(metadata.get("levels", 0)), int(metadata.get("num_classes", 0))
    declared = int(params.get("num_levels", 256))
    if levels and declared < levels:
        raise ValueError(
            f"The images have {levels} levels (source {data.source!r}) but "
            f"model.params.num_levels is {declared}; set num_levels to {levels} or reduce the "
            f"data with data.options.levels: {declared}.")
    declared = int(params.get("num_global_classes", 0))
    if data.use_label and declared < classes:
        raise ValueError(
            f"The images have {classes} classes but model.params.num_global_classes is "
            f"{declared}; set it to at least {classes} (or data.use_label: false).")


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose backup survives SIGKILL at any instant.

    Keras writes `latest.weights.h5` in place, so a kill during the write leaves a corrupt
    file and the rerun fails to load it. Here the weights (model + optimizer, EMA slots
    included) and the metadata are written to temporary files and renamed into place.
    `restore_dir` (default `backup_dir`) is where training state is read from: the workers of
    a cluster all read the chief's, so a worker killed before its own epoch-end write resumes
    at the same epoch as the others."""

    def __init__(self, backup_dir, restore_dir=None):
        super().__init__(backup_dir)
        self.restore_dir = restore_dir or backup_dir

    def _load_model(self):
        own = self._weights_path, self._training_metadata_path
        self._weights_path = os.path.join(self.restore_dir, "latest.weights.h5")
        self._training_metadata_path = os.path.join(self.restore_dir, "training_metadata.json")
        try:
            super()._load_model()
        finally:
            self._weights_path, self._training_metadata_path = own

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        tmp_weights = self._weights_path + ".tmp.weights.h5"
        self.model.save_weights(filepath=tmp_weights, overwrite=True)
        tmp_meta = self._training_metadata_path + ".tmp"
        with open(tmp_meta, "w") as f:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, f)
        os.replace(tmp_weights, self._weights_path)
        os.replace(tmp_meta, self._training_metadata_path)


class ResumeRecorder(keras.callbacks.Callback):
    """Writes where training (re)started: epoch and optimizer step after BackupAndRestore."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        averages = getattr(optimizer, "_model_variables_moving_average", None) or []
        info = {"initial_epoch": int(getattr(self.model, "_initial_epoch", 0) or 0),
                "initial_step": int(optimizer.iterations.numpy()),
                "learning_rate": current_learning_rate(optimizer),  # that of the next step
                "ema_norm": float(sum(float(tf.reduce_sum(tf.abs(v))) for v in averages))}
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "w") as f:
            json.dump(info, f)


class BitsPerPosition(keras.callbacks.Callback):
    """Adds `bits_per_position` (and `val_bits_per_position`) to each epoch's logs: the loss,
    -mean log p(x) in nats per example, over (positions per example x ln 2). Listed before
    TensorBoard and EpochLog, which then write and print the curves in bits."""

    def __init__(self, positions):
        super().__init__()
        self.scale = 1.0 / (positions * math.log(2.0))

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for key in ("loss", "val_loss"):
            if logs.get(key) is not None:
                logs[key.replace("loss", "bits_per_position")] = float(logs[key]) * self.scale


class EpochLog(keras.callbacks.Callback):
    """One line per epoch through the runner's logger (works without a terminal)."""

    def __init__(self, log, total_epochs):
        super().__init__()
        self.log, self.total = log, total_epochs

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        step = int(self.model.optimizer.iterations.numpy())
        line = (f"Trainer: epoch {epoch + 1}/{self.total} step {step} loss "
                f"{float(loss) if loss is not None else float('nan'):.4f}")
        for key, name in (("bits_per_position", "train"),
                          ("val_bits_per_position", "validation")):
            if logs.get(key) is not None:
                line += f", {name} {float(logs[key]):.4f} bits/position"
        if logs.get("learning_rate") is not None:
            line += f", lr {float(logs['learning_rate']):.3g}"
        self.log(line)
