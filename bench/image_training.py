"""The image benches' training protocol: equal wall-clock budgets in interleaved slices.

`train_models` trains several models in turn, each in slices of ~`slice_s` seconds of
`train_on_batch` until it has had `budget_s`, so load from other jobs on this shared machine
falls on all of them alike. With a validation split it also **selects a checkpoint**: after
every slice the weights evaluated (the EMA of the weights when the recipe averages them) are
scored on the validation images, and each model is tested with the best of them, i.e. early
stopping within the budget, as papers report test likelihoods at the best validation
likelihood. Used on digits, whose 1,300 training images are overfitted within a minute.
Every score after a slice is also a point of the model's learning curve (`Trainer.curve`);
without a validation split, `curve_images` are scored after every slice for the curve alone
(outside the budget: scoring is not training time).
"""

import math
import time

import keras
import numpy as np
import tensorflow as tf

BATCH = 32


def is_baseline(model):
    """The bench's plain baseline is a functional model of logits (no `log_prob`)."""
    return not hasattr(model, "log_prob")


def baseline_features(x, num_levels):
    """The baseline's input: int levels `[B, H, W, 1]` -> floats in [-1, 1]."""
    return 2.0 * tf.cast(x, tf.float32) / (num_levels - 1) - 1.0


def _train_stream(train, num_levels, baseline, seed=0):
    ds = tf.data.Dataset.from_tensor_slices(train).shuffle(len(train), seed=seed).repeat()
    ds = ds.batch(BATCH, drop_remainder=True)
    if baseline:
        def pair(x):
            x = tf.cast(x, tf.int32)
            return baseline_features(x, num_levels), x
        return ds.map(pair).prefetch(tf.data.AUTOTUNE)
    return ds.map(lambda x: {"x": tf.cast(x, tf.int32)}).prefetch(tf.data.AUTOTUNE)


def nll_function(model, num_levels):
    """A traced `x [N, H, W, 1] int32 -> -log p(x) [N]` in nats for `model`."""
    if is_baseline(model):
        @tf.function(reduce_retracing=True)
        def nll(x):
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
                x[..., 0], model(baseline_features(x, num_levels), training=False))
            return tf.reduce_sum(tf.reshape(ce, [tf.shape(x)[0], -1]), axis=-1)
    else:
        @tf.function(reduce_retracing=True)
        def nll(x):
            return -model.log_prob({"x": x})
    return nll


def test_nats_per_image(model, test, num_levels, batch=250, nll=None):
    """Mean -log p(x) in nats per image over `test` (`nll`: a traced `nll_function`)."""
    nll = nll or nll_function(model, num_levels)
    totals = [nll(tf.constant(test[i:i + batch], tf.int32)).numpy()
              for i in range(0, len(test), batch)]
    return float(np.mean(np.concatenate(totals)))


class Trainer:
    """One model, its optimizer and its own iterator over the shuffled training stream.

    `train_for(seconds)` runs `train_on_batch` until `seconds` of wall time have passed in
    this call; `wall` sums those slices (the first step's tracing included) and
    `images_per_s` counts the steps after the first over their own time. `checkpoint(val)`
    scores the weights evaluated on `val` (`score`) and keeps the best; `finish` puts them
    in place. `curve` lists (steps, wall s, nats per image) of every score taken by
    `checkpoint` or `record`."""

    def __init__(self, model, train_data, num_levels, jit_compile=False, seed=0,
                 learning_rate=1e-3, ema=0.0):
        self.model, self.baseline, self.num_levels = model, is_baseline(model), num_levels
        kwargs = ({"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
                  if self.baseline else {})
        optimizer = keras.optimizers.Adam(learning_rate, use_ema=ema > 0,
                                          ema_momentum=ema or 0.99)
        model.compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        self.batches = iter(_train_stream(train_data, num_levels, self.baseline, seed))
        self.steps, self.wall, self.cpu, self.timed, self.loss = 0, 0.0, 0.0, 0.0, None
        self.nll = nll_function(model, num_levels)
        self.best = None  # (val nats per image, weights, steps, wall s) once checkpointed
        self.curve = []  # (steps, wall s, nats per image) after each scored slice

    def train_for(self, seconds=None, max_steps=None):
        start, cpu_start = time.perf_counter(), time.process_time()
        while True:
            batch = next(self.batches)
            step_start = time.perf_counter()
            if self.baseline:
                self.loss = self.model.train_on_batch(*batch)
            else:
                self.loss = self.model.train_on_batch(batch)
            self.steps += 1
            if self.steps > 1:
                self.timed += time.perf_counter() - step_start
            elapsed = time.perf_counter() - start
            if (seconds is not None and elapsed >= seconds) or \
                    (max_steps is not None and self.steps >= max_steps):
                break
        self.wall += time.perf_counter() - start
        self.cpu += time.process_time() - cpu_start

    def images_per_s(self):
        return (self.steps - 1) * BATCH / max(self.timed, 1e-9)

    def _averaged_in_place(self):
        """With `ema`, the averaged weights become the model's (as `fit` does at its end)."""
        self.model.optimizer.finalize_variable_values(self.model.trainable_variables)

    def score(self, images):
        """-> (nats per image of the weights evaluated on `images`, those weights); the model
        keeps its own (not averaged) weights to train on."""
        current = self.model.get_weights()
        self._averaged_in_place()
        nats = test_nats_per_image(self.model, images, self.num_levels, nll=self.nll)
        evaluated = self.model.get_weights()
        self.model.set_weights(current)
        return nats, evaluated

    def record(self, images):
        """Score the weights evaluated on `images` and add the point to `curve`; -> (nats
        per image, those weights)."""
        nats, weights = self.score(images)
        self.curve.append((self.steps, self.wall, nats))
        return nats, weights

    def checkpoint(self, val):
        """Score the weights evaluated on `val` (a `curve` point); keep them if they are the
        best so far."""
        nats, weights = self.record(val)
        if self.best is None or nats < self.best[0]:
            self.best = (nats, weights, self.steps, self.wall)

    def finish(self):
        """The weights to test: the best checkpoint if any, else the averaged (or last)."""
        if self.best is not None:
            self.model.set_weights(self.best[1])
        else:
            self._averaged_in_place()

    def selected(self):
        """(steps, wall s) of the weights tested: the best checkpoint's, or the last."""
        return (self.best[2], self.best[3]) if self.best is not None else (self.steps,
                                                                           self.wall)


def train_models(factories, train_data, test, num_levels, budget_s, slice_s=30.0, seed=0,
                 count_tracing=True, recipe=None, recipes=None, val=None, curve_images=None):
    """Train every `factories` model (name -> zero-argument factory) in interleaved slices;
    -> ({name: finished Trainer}, {name: test nats per image}). `recipes`: name -> Trainer
    keywords that override `recipe` for that model. `val`: images to select each model's
    checkpoint on after every slice (None: test the weights at the end of the budget).
    `curve_images`: without `val`, images scored after every slice for `Trainer.curve`."""
    trainers = {}
    for name, factory in factories.items():
        keras.utils.set_random_seed(seed)
        trainers[name] = Trainer(factory(), train_data, num_levels, seed=seed,
                                 **{**(recipe or {}), **(recipes or {}).get(name, {})})
        if not count_tracing:
            trainers[name].train_for(max_steps=1)
            trainers[name].wall = trainers[name].cpu = 0.0
    while any(t.wall < budget_s for t in trainers.values()):
        for trainer in trainers.values():  # a slow first step (tracing) eats into the budget
            if trainer.wall < budget_s:
                trainer.train_for(seconds=min(slice_s, budget_s - trainer.wall))
                if val is not None:
                    trainer.checkpoint(val)
                elif curve_images is not None:
                    trainer.record(curve_images)
    nats = {}
    for name, trainer in trainers.items():
        trainer.finish()
        nats[name] = test_nats_per_image(trainer.model, test, num_levels, nll=trainer.nll)
    return trainers, nats


def bits_to_nats(images):
    """Nats per image in one bit per dimension of `images` [N, H, W, C]."""
    return int(np.prod(images.shape[1:])) * math.log(2.0)
