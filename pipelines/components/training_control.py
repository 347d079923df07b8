"""Learning-rate schedule, EMA validation and early stopping for the Trainer.

* `learning_rate(training)`: `training.learning_rate` (constant) or, for `warmup_cosine`,
  a `keras.optimizers.schedules.CosineDecay`: lr(t) = learning_rate * t / warmup_steps
  below `warmup_steps`, then a cosine from learning_rate down to `min_learning_rate` at
  t = `steps`. It is a function of the optimizer's step only, which BackupAndRestore
  restores, so a resumed run uses the same rate at the same step; it serialises with the
  optimizer (`model.save(..., include_optimizer=True)`).
* `LearningRateLog` adds `learning_rate` (the rate of the next step) to each epoch's logs.
* `EmaValidation`: with EMA on, validation scores the EMA weights (what `model.keras`
  holds), swapped in by exact copies around each validation pass.
* `BestValidation`: `keras.callbacks.EarlyStopping(restore_best_weights=True)` whose
  snapshot of the best epoch holds the EMA values when EMA is on (the weights validation
  scored), so the model after `fit` is the best validation epoch's, EMA or not.
"""

import keras
import numpy as np


def learning_rate(training):
    """A float or a `LearningRateSchedule` for `keras.optimizers.Adam`."""
    if training.lr_schedule == "constant":
        return training.learning_rate
    if training.lr_schedule == "warmup_cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0, warmup_target=training.learning_rate,
            warmup_steps=training.warmup_steps,
            decay_steps=training.steps - training.warmup_steps,
            alpha=training.min_learning_rate / training.learning_rate,
            name="warmup_cosine")
    raise ValueError(f"Unknown training.lr_schedule {training.lr_schedule!r}; expected "
                     "'constant' or 'warmup_cosine'.")


def current_learning_rate(optimizer):
    """The rate the optimizer's next step uses (the schedule at its step count)."""
    return float(np.asarray(keras.ops.convert_to_numpy(optimizer.learning_rate)))


class LearningRateLog(keras.callbacks.Callback):
    """Adds `learning_rate` at the epoch's end (before TensorBoard writes the logs)."""

    def __init__(self, optimizer):
        super().__init__()
        self.optimizer = optimizer

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = current_learning_rate(self.optimizer)


def _ema_pairs(optimizer):
    """[(variable, its moving average)] of an optimizer with `use_ema` (else [])."""
    averages = getattr(optimizer, "_model_variables_moving_average", None) or []
    return [(v, a) for v, a in zip(optimizer._trainable_variables, averages)
            if a is not None]


class EmaValidation(keras.callbacks.Callback):
    """Validation passes score the EMA weights: copied in at `on_test_begin`, the trained
    weights copied back at `on_test_end` (exact copies, unlike SwapEMAWeights' add/subtract
    swap, which perturbs the trained weights by rounding)."""

    def __init__(self, optimizer):
        super().__init__()
        self.optimizer = optimizer
        self._saved = None

    def on_test_begin(self, logs=None):
        pairs = _ema_pairs(self.optimizer)
        self._saved = [keras.ops.convert_to_numpy(v) for v, _ in pairs]
        for variable, average in pairs:
            variable.assign(average)

    def on_test_end(self, logs=None):
        if self._saved is None:
            return
        for (variable, _), value in zip(_ema_pairs(self.optimizer), self._saved):
            variable.assign(value)
        self._saved = None


class BestValidation(keras.callbacks.EarlyStopping):
    """Early stopping on `monitor` that restores the best epoch's weights at the end of
    training; with `optimizer` (EMA on) the snapshot holds the EMA values in place of the
    trainable weights, as the validation that chose it scored them (`EmaValidation`)."""

    def __init__(self, monitor, patience, min_delta=0.0, optimizer=None):
        super().__init__(monitor=monitor, patience=patience, min_delta=min_delta, mode="min",
                         restore_best_weights=True)
        self.optimizer = optimizer

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.optimizer is not None and self.best_weights is not None and (
                self.best_epoch == epoch):  # this epoch is the best so far
            self.best_weights = self._ema_snapshot()

    def _ema_snapshot(self):
        averages = {id(v): a for v, a in _ema_pairs(self.optimizer)}
        return [keras.ops.convert_to_numpy(averages.get(id(w), w)) for w in self.model.weights]

    def summary(self):
        """What training.json records: the monitored key, best epoch and value (1-based), and
        the epoch it stopped at (None: it ran every epoch)."""
        last = int(self.params.get("epochs") or 0) - 1
        stopped = 0 < self.stopped_epoch < last
        return {"monitor": self.monitor, "patience": self.patience,
                "min_delta": abs(self.min_delta),
                "best_epoch": int(self.best_epoch) + 1 if self.best is not None else None,
                "best_value": None if self.best is None else round(float(self.best), 6),
                "stopped_early": stopped,
                "stopped_epoch": int(self.stopped_epoch) + 1 if stopped else None}
