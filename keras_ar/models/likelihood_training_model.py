"""Scoring and Keras training of the autoregressive models by likelihood."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from keras_ar import contract
from keras_ar.models import input_checks
from keras_ar.models.api_types import Inputs


class LikelihoodTrainingModel(keras.Model):
    """Scoring and training by likelihood, the base of `AutoregressiveModel`.

    `log_prob(inputs)` sums `head.log_prob` of `model(inputs)` over the positions (the first
    `lengths[i]` of row i when `lengths` is given); `fit`/`evaluate`/`predict` take inputs
    only, with the loss -mean log p(x | c) in nats per example. Under `jit_compile=True` the
    data are checked before Keras' compiled step (`input_checks`, through the subclass's
    `_validate_x` and `_validate_conditions`).
    """

    def log_prob(self, inputs: Inputs) -> tf.Tensor:
        """log p(x | c) in nats, `[B]`.

        Args:
            inputs: `x`, or a dict with `x`, the conditions and (sequence models,
                `scores_lengths`) `lengths` int32 `[B]`: only row i's first lengths[i]
                positions are scored.
        """
        inputs = self._as_inputs(inputs)
        params = self(inputs, training=False)
        return self._log_prob_from_params(params, inputs)

    def _log_prob_from_params(self, params, inputs):
        per_position = self.head.log_prob(params, inputs[contract.X])
        per_position = tf.reshape(per_position, [tf.shape(per_position)[0], -1])
        if contract.LENGTHS in inputs:
            positions = tf.range(tf.shape(per_position)[1])[None, :]
            mask = positions < tf.cast(inputs[contract.LENGTHS], tf.int32)[:, None]
            per_position = tf.where(mask, per_position, tf.zeros_like(per_position))
        return tf.reduce_sum(per_position, axis=-1)

    def compute_loss(self, x: Inputs = None, y: Any = None, y_pred: tf.Tensor | None = None,
                     sample_weight: Any = None, training: bool = True) -> tf.Tensor:
        """Negative mean log-likelihood (nats per example): `fit` needs inputs only."""
        inputs = self._as_inputs(x)
        if y_pred is None:
            y_pred = self(inputs, training=training)
        loss = -tf.reduce_mean(self._log_prob_from_params(y_pred, inputs))
        for extra in self.losses:
            loss += tf.cast(extra, loss.dtype)
        # Under tf.distribute, Keras sums the replicas' gradients: scale each replica's mean
        # loss by 1 / replicas (as Keras' own losses do) so the update equals one device's.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss * (1.0 / replicas)
        return loss

    def compile(self, optimizer: Any = "adam", **kwargs: Any) -> None:
        """As `keras.Model.compile`; `jit_compile` defaults to False. With
        `jit_compile=True`, `fit`/`evaluate`/`predict` check their data before the compiled
        step, since XLA drops the graph asserts (`input_checks`)."""
        self._generate_functions = {}
        kwargs.setdefault("jit_compile", False)
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Recompile a loaded model as it was saved (optimizer, jit_compile...), so
        `keras.models.load_model` returns a model that resumes `fit` with its optimizer state
        (Keras restores the optimizer's variables after this)."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def check_inputs(self, inputs: Inputs) -> dict[str, tf.Tensor]:
        """Run the value checks `call` makes on `inputs` (ids in range, finite values and
        conditions, lengths); return the inputs dict, in a graph (e.g. `Dataset.map`) with
        every tensor gated on the checks. Eager: ValueError; graph: InvalidArgumentError."""
        return input_checks.gated(self._check_input_values, self._as_inputs(inputs))

    def _check_input_values(self, inputs):
        """The value checks of `call` on an inputs dict (hook; models whose `call` checks
        `x` otherwise than `_validate_x` override it)."""
        self._validate_x(inputs[contract.X], contract.X)
        self._validate_conditions(
            {k: inputs[k] for k in contract.CONDITION_KEYS if k in inputs})

    def _checked(self, data):
        return input_checks.checked_source(self, data) if self.jit_compile else data

    def fit(self, x: Any = None, *args: Any, **kwargs: Any) -> keras.callbacks.History:
        if kwargs.get("validation_data") is not None:
            kwargs["validation_data"] = self._checked(kwargs["validation_data"])
        return super().fit(self._checked(x), *args, **kwargs)

    def evaluate(self, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        return super().evaluate(self._checked(x), *args, **kwargs)

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        return super().predict(self._checked(x), *args, **kwargs)

    def train_on_batch(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        return super().train_on_batch(self._checked(x), *args, **kwargs)

    def test_on_batch(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        return super().test_on_batch(self._checked(x), *args, **kwargs)

    def predict_on_batch(self, x: Any) -> Any:
        return super().predict_on_batch(self._checked(x))

    def _as_inputs(self, inputs):
        if isinstance(inputs, dict):
            return dict(inputs)
        return {contract.X: inputs}
