"""Trainer executor: builds the model from config and trains it under a tf.distribute strategy.

* strategy: default | mirrored (devices, or logical CPUs) | multi_worker | tpu; under
  multi_worker, `training.workers` = N > 0 runs the training on N local worker processes
  (`trainer_workers.launch`), and 0 trains here as one worker of TF_CONFIG's cluster;
* mixed precision (`training.mixed_precision`) and XLA (`training.jit_compile`) switches;
* learning rate: constant or `warmup_cosine` (`training_control.learning_rate`), a function
  of the optimizer's step, so a resumed run follows the same curve; the rate at each epoch
  end goes to the logs, TensorBoard and training.json (`learning_rates`, `lr_schedule`);
* EMA weights (`training.ema_momentum`): the optimizer keeps them; `model.keras` holds the
  EMA weights (what Evaluator and Exporter use), and validation scores them too
  (`EmaValidation`). `raw.weights.h5` holds the weights the model has after training, and
  Keras' fit (like `custom_loop.fit`) ends by moving the EMA values into them, so with EMA
  on it holds the EMA weights too;
* validation on `training.validation_batches` eval-split batches per epoch; with
  `training.early_stopping_patience` > 0, `EarlyStopping` on `val_bits_per_position`
  (`val_loss` where lengths vary) stops training and restores the best epoch's weights (its
  EMA weights with EMA on), which both `model.keras` and `raw.weights.h5` then hold;
  training.json's `early_stopping` says whether it stopped, when, and the best epoch. Its
  state is not in the backup: a resumed run starts watching afresh;
* `keras.callbacks.BackupAndRestore` (written atomically) at every epoch end
  (`training.steps_per_epoch` steps) under
  `<pipeline_root>/Trainer/backup/<cache key>/<worker>`: a killed run, rerun with the same
  inputs and parameters, resumes from the last epoch with its step counter, optimizer
  and EMA state (`resume.json` records where it started); every worker of a cluster
  restores the chief's backup, so all resume from the same epoch;
* the curves are bits per position: the loss (mean nats per example) over the positions per
  example, for pairs (varying lengths) the train split's mean `lengths`;
* TensorBoard logs in `<model>/logs`.
`model.fit` trains under every strategy but `multi_worker`, where Keras 3.15's fit fails and
`custom_loop.fit` (a `strategy.run` step with the same callbacks) trains instead.
Only the chief writes the model artifact; other workers write under `<model>/_workers/`.
"""

import json
import math
import os
import pathlib
import time

from pipelines import config as config_lib
from pipelines.components import embedder as embedder_lib
from pipelines.components.base import write_json


def execute(inputs, outputs, params, context):
    """The Trainer executor: `train` here, or on `training.workers` local processes."""
    training = params["training"]
    if training.get("strategy") == "multi_worker" and training.get("workers"):
        from pipelines.components import trainer_workers

        return trainer_workers.launch(inputs, outputs, params, context, training["workers"])
    return train(inputs, outputs, params, context)


def train(inputs, outputs, params, context):
    """Trains in this process (one worker of the cluster under multi_worker)."""
    import keras

    from pipelines.components import training as training_lib

    data = embedder_lib.data_config(params, inputs)
    training = config_lib.TrainingConfig(**params["training"])
    model_config = config_lib.ModelConfig(**params["model"])
    metadata = source_metadata(inputs["examples"].path)
    strategy = training_lib.make_strategy(training)
    chief = training_lib.is_chief(strategy)
    out = outputs["model"].path
    if not chief:
        out = out / "_workers" / training_lib.worker_id(strategy)
    training_lib.set_precision(training.mixed_precision)
    keras.utils.set_random_seed(training.seed)
    try:
        model, optimizer, ema = _compiled_model(strategy, training, model_config, data,
                                                metadata)
        history, seconds, best = _fit(model, optimizer, ema, strategy, training, data,
                                      context, out)
        # With early stopping, the model already holds the best epoch's (EMA) weights.
        _save(model, optimizer, out, ema and best is None)
    finally:
        training_lib.set_precision("")
    losses = [float(v) for v in history.history.get("loss", [])]
    curves = {key: [round(float(v), 5) for v in history.history.get(key, [])]
              for key in ("bits_per_position", "val_bits_per_position")}
    summary = {"steps": int(optimizer.iterations.numpy()), "seconds": round(seconds, 2),
               "steps_per_s": round(len(losses) * training.steps_per_epoch / max(seconds, 1e-9),
                                    2),
               "final_loss": losses[-1] if losses else None, "losses": losses,
               **{key: values for key, values in curves.items() if values},
               **_control_summary(history, optimizer, training, best),
               "replicas": strategy.num_replicas_in_sync, "ema": ema,
               "model_family": model_config.family, "metadata": metadata}
    _report(summary, out, outputs, context)


def _fit(model, optimizer, ema, strategy, training, data, context, out):
    """Trains (`model.fit`, or `custom_loop.fit` under multi_worker): (history, seconds,
    the BestValidation callback or None)."""
    from pipelines.components import custom_loop, training_control
    from pipelines.data import make_dataset

    dataset = _train_dataset(strategy, data, make_dataset,
                             model if training.jit_compile else None)
    epochs = math.ceil(training.steps / training.steps_per_epoch)
    validation, validation_steps = _validation(data, training, make_dataset)
    positions = (_mean_length(make_dataset(data, "train", repeat=False))
                 if data.modality == "pairs"
                 else _positions(make_dataset(data, "train", repeat=False)))
    best = None
    if training.early_stopping_patience and validation is None:
        context.log("Trainer: early stopping is off: the eval split gave no validation batch")
    elif training.early_stopping_patience:
        best = training_control.BestValidation(
            "val_bits_per_position" if positions else "val_loss",
            training.early_stopping_patience, training.early_stopping_min_delta,
            optimizer if ema else None)
    callbacks = _callbacks(context, strategy, out, epochs, positions, optimizer,
                           ema and validation is not None, best)
    start = time.perf_counter()
    verbose = _keras_verbose(training.verbose)
    if training.strategy == "multi_worker":  # Keras 3's fit fails there: custom_loop.py
        history = custom_loop.fit(model, strategy, dataset, epochs, training.steps_per_epoch,
                                  callbacks, verbose, training.jit_compile)
    else:
        history = model.fit(dataset, epochs=epochs, steps_per_epoch=training.steps_per_epoch,
                            callbacks=callbacks, verbose=verbose, validation_data=validation,
                            validation_steps=validation_steps)
    return history, time.perf_counter() - start, best


def _control_summary(history, optimizer, training, best):
    """training.json's schedule record (rate per epoch end, final rate) and early stopping."""
    from pipelines.components import training_control

    return {"learning_rates": [float(v) for v in history.history.get("learning_rate", [])],
            "lr_schedule": {"name": training.lr_schedule,
                            "learning_rate": training.learning_rate,
                            "warmup_steps": training.warmup_steps,
                            "min_learning_rate": training.min_learning_rate,
                            "final_learning_rate":
                                training_control.current_learning_rate(optimizer)},
            "early_stopping": best.summary() if best is not None else None}


def _compiled_model(strategy, training, model_config, data, metadata):
    """(model, optimizer, ema?) built and compiled under the strategy's scope."""
    import keras

    from pipelines.components import training as training_lib
    from pipelines.components import training_control

    with strategy.scope():
        model = training_lib.build_model(model_config, data, metadata)
        ema = training.ema_momentum > 0
        optimizer = keras.optimizers.Adam(training_control.learning_rate(training), use_ema=ema,
                                          ema_momentum=training.ema_momentum or 0.99)
        model.compile(optimizer=optimizer, jit_compile=training.jit_compile)
        optimizer.build(model.trainable_variables)
    return model, optimizer, ema


def _positions(dataset):
    """Values per example (x's shape after the batch axis), or None where it varies."""
    from keras_ar import contract

    dims = dataset.element_spec[contract.X].shape[1:]
    return int(math.prod(dims)) if dims.is_fully_defined() else None


def _mean_length(dataset):
    """Mean scored positions per example (`lengths`) over a split: the loss, mean nats per
    example over batches of one size, divided by it is nats per position in expectation."""
    import numpy as np

    from keras_ar import contract

    lengths = [np.asarray(b[contract.LENGTHS]) for b in dataset]
    return float(np.mean(np.concatenate(lengths))) if lengths else None


def _validation(data, training, make_dataset):
    """(dataset, batches): up to `validation_batches` batches of the eval split per epoch, or
    (None, None): none asked for, an empty eval split, or the multi-worker loop (no
    validation pass there)."""
    if training.validation_batches <= 0 or training.strategy == "multi_worker":
        return None, None
    dataset = make_dataset(data, "eval", repeat=False).take(training.validation_batches)
    batches = sum(1 for _ in dataset)
    # Repeated, so every epoch reads the same `batches` batches from one live iterator: Keras
    # re-creates an exhausted iterator only when it knows the cardinality, which a
    # distributed (mirrored) dataset hides.
    return (dataset.repeat(), batches) if batches else (None, None)


def _callbacks(context, strategy, out, epochs, positions=None, optimizer=None,
               ema_validation=False, best=None):
    """Atomic backup/restore (per worker), resume record, EMA weights for validation, bits
    per position, learning rate, early stopping, TensorBoard logs (train and validation
    curves), epoch log."""
    import keras

    from pipelines.components import training as training_lib
    from pipelines.components import training_control

    backups = pathlib.Path(context.pipeline_root) / "Trainer" / "backup" / context.cache_key
    return [training_lib.AtomicBackupAndRestore(
                str(backups / training_lib.worker_id(strategy)),
                restore_dir=str(backups / training_lib.chief_id(strategy))),
            training_lib.ResumeRecorder(str(out / "resume.json")),
            *([training_control.EmaValidation(optimizer)] if ema_validation else []),
            *([training_lib.BitsPerPosition(positions)] if positions else []),
            *([training_control.LearningRateLog(optimizer)] if optimizer else []),
            *([best] if best is not None else []),
            keras.callbacks.TensorBoard(str(out / "logs"), profile_batch=0),
            training_lib.EpochLog(context.log, epochs)]


def _report(summary, out, outputs, context):
    """training.json, the model artifact's properties and the log line."""
    write_json(out / "training.json", summary)
    outputs["model"].properties.update(steps=summary["steps"],
                                       final_loss=summary["final_loss"] or 0.0)
    context.log(f"Trainer: {summary['steps']} steps in {summary['seconds']} s "
                f"({summary['steps_per_s']} steps/s, {summary['replicas']} replica(s)), "
                f"loss {summary['final_loss']}")


def _train_dataset(strategy, data, make_dataset, checked_by=None):
    """Per-input-pipeline datasets from `make_dataset(..., input_context)`: each worker reads
    its own shards (whole files when there are enough) in per-replica batches. With
    `checked_by` (a model compiled with XLA, which drops graph asserts), each batch passes
    that model's value checks in the input pipeline first (`keras_ar.models.input_checks`)."""
    from keras_ar.models.input_checks import checked_source

    def make(ctx):
        dataset = make_dataset(data, "train", ctx)
        return dataset if checked_by is None else checked_source(checked_by, dataset)
    return strategy.distribute_datasets_from_function(make)


def _save(model, optimizer, out, finalize_ema):
    out.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(out / "raw.weights.h5"))
    if finalize_ema:
        optimizer.finalize_variable_values(model.trainable_variables)  # EMA -> weights
    model.save(str(out / "model.keras"), include_optimizer=False)


def source_metadata(examples_dir):
    """The source metadata ExampleGen recorded in `ingest.json` (speakers, classes...)."""
    path = pathlib.Path(examples_dir) / "ingest.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("metadata", {})


def load_model(model_dir):
    """The trained (EMA) model from a Model artifact directory."""
    from keras_ar.models import AutoregressiveModel, presets

    path = os.path.join(model_dir, presets.CHECKPOINT_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No trained model at {path}: run the Trainer first.")
    return AutoregressiveModel.from_preset(path, compile=False)


def _keras_verbose(verbose):
    """training.verbose -> Keras' `verbose`: -1 is a progress bar on a TTY (else 2); 2 is
    Keras-silent, as EpochLog prints the line per epoch in bits."""
    import sys

    if verbose == -1:
        verbose = 1 if sys.stdout.isatty() else 2
    return 0 if verbose == 2 else verbose
