"""A `strategy.run` training loop for `MultiWorkerMirroredStrategy`, driving Keras callbacks.

Keras 3's `model.fit` does not work under `MultiWorkerMirroredStrategy` (TF backend, Keras
3.15): before training it pulls one batch and `strategy.reduce("MEAN", batch)`s the whole
input dict, which the collective all-reduce cannot convert ("Attempt to convert a value
({'x': PerReplica...}) with an unsupported type"); past that, its per-step log reduction
(`strategy.reduce("MEAN", scalar, axis=0)`) fails on the scalar loss ("Invalid reduction
dimension 0 for input with 0 dimensions"; tensorflow/tensorflow#72388,
keras-team/keras#20585). This loop does what `fit` does for our models with public APIs only:

    per replica:  loss_r = model.compute_loss(batch_r)        (already x 1/replicas)
                  g_r = d optimizer.scale_loss(loss_r) / d w
    all-reduce:   optimizer.apply_gradients(g)  sums g_r over replicas (= one device's
                  gradient of the global-batch mean loss), then the same Adam/EMA update
                  on every worker
    logged loss:  sum_r loss_r  (the global-batch mean)

Callbacks get the same calls as under `fit` (train/epoch/batch begin and end), so
`BackupAndRestore` restores and sets the initial epoch, and TensorBoard, the resume recorder
and the epoch log work unchanged. Like `fit`, the loop ends by moving the optimizer's EMA
values into the weights (`use_ema`).
"""

import keras
import tensorflow as tf


def fit(model, strategy, dataset, epochs, steps_per_epoch, callbacks, verbose=0,
        jit_compile=False):
    """Trains `model` (built and compiled under `strategy.scope()`) on `dataset` (a
    distributed dataset of input dicts). Returns the `keras.callbacks.History`."""
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        list(callbacks) + [history], add_progbar=verbose != 0, model=model, verbose=verbose,
        epochs=epochs, steps=steps_per_epoch)
    train_step = _make_train_step(model, strategy, jit_compile)
    iterator = iter(dataset)
    model.stop_training = False
    callback_list.on_train_begin()
    initial_epoch = int(getattr(model, "_initial_epoch", 0) or 0)  # set by BackupAndRestore
    logs = {}
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        total = 0.0
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            loss = float(train_step(iterator))
            total += loss
            callback_list.on_train_batch_end(step, {"loss": loss})
        logs = {"loss": total / steps_per_epoch}
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    if epochs > 0:  # as fit does: the EMA values (use_ema) become the model's weights
        model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs)
    return history


def _make_train_step(model, strategy, jit_compile):
    optimizer = model.optimizer
    variables = model.trainable_variables

    def replica_step(batch):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=batch, training=True)
            scaled = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss

    @tf.function(jit_compile=jit_compile)
    def one_step(batch):
        per_replica = strategy.run(replica_step, args=(batch,))
        return strategy.reduce("SUM", per_replica, axis=None)

    @tf.function
    def train_step(iterator):
        return one_step(next(iterator))

    return train_step
