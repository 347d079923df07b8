"""ContinuousSequenceModel on Japanese Vowels: test NLL per step against two baselines, and the
length distribution of generated sequences.

Data: the official split shipped in the sktime wheel (270 train, 370 test utterances of 12-dim
LPC cepstra, 7 to 29 frames, 9 speakers as `global_condition`). Values are standardised per
dimension with the train frames' mean and std (an affine map: it shifts every model's NLL by
the same constant). The train split is cut into 240 utterances to fit and 30 to validate.

Models (same backbone: 5 gated residual blocks x 32, speaker embedding; same optimizer, batch,
number of steps, training-time input noise (`input_noise`, 0.15 or $KERAS_AR_BENCH_INPUT_NOISE)
and checkpoint rule: the weights with the best validation NLL, checked every `eval_every`
steps; 64 wide overfits the 240 utterances within a few hundred steps):

* `mdn`: `ContinuousSequenceModel`, 5 Gaussians + stop head;
* `gaussian`: the same with `num_mixtures=1`;
* `fixed_length`: no stop head; every sequence is padded to 29 frames with the standardised
  image of the loader's zero frame and the padded frames are modelled too (5 Gaussians);
* `mdn, no input noise`: the first model trained without input noise (ablation).

NLL per valid step (nats, standardised units) = -(sum of the log-likelihoods) / (number of
valid test frames). For the stop models the log-likelihood is the value densities + the stop
terms (no stop before the last frame, stop at it). The fixed-length model has no stop
probability; it pays for "not yet" inside its densities (mixture weight spent on the padding
frame) and signals the end by predicting the padding frame at t = n. It is scored two ways:
`values only` (its densities over the valid frames: the end is free, a lower bound on its cost)
and `with end term` (plus log P(x_n within +-0.05 of the padding frame in every dimension),
the probability its density gives the first padded frame, for n < 29). The stop models must
beat the `values only` figure: the fair comparison gives the baseline every benefit of doubt.

Lengths: `generate` at temperature 1 with the test utterances' speakers (one sample per test
utterance, several seeds); two-sample KS of generated vs test lengths, next to the data's own
variation at the same sample sizes: KS of the train vs test lengths, and the median / 95th
percentile of the KS between two bootstrap resamples (370 each) of the test lengths.
"""

import math
import os

import keras
import numpy as np
import tensorflow as tf

from keras_ar.models import ContinuousSequenceModel

MAX_LENGTH = 29
BATCH = 32
# training-time noise on the inputs (standardised units), every model but the ablation
INPUT_NOISE = float(os.environ.get("KERAS_AR_BENCH_INPUT_NOISE", "0.15"))
PAD_BOX = 0.05  # half-width (standardised units) of the box that counts as "the padding frame"


class FixedLengthBaseline(ContinuousSequenceModel):
    """The same network scoring all `max_length` frames' values, no stop terms."""

    def _log_prob_from_params(self, params, inputs):
        values = self.head.value_log_prob(params, tf.cast(inputs["x"], tf.float32))
        return tf.reduce_sum(values, axis=-1)


def ks_statistic(a, b):
    """Two-sample Kolmogorov-Smirnov statistic sup |F_a - F_b|."""
    a, b = np.sort(np.asarray(a)), np.sort(np.asarray(b))
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / a.size
    fb = np.searchsorted(b, grid, side="right") / b.size
    return float(np.abs(fa - fb).max())


def bootstrap_ks(lengths, size_a, size_b, draws=500, seed=0):
    """KS between two resamples (with replacement) of `lengths`: the sampling variation."""
    rng = np.random.default_rng(seed)
    return np.array([ks_statistic(rng.choice(lengths, size_a), rng.choice(lengths, size_b))
                     for _ in range(draws)])


# ----------------------------------------------------------------------------- data
def load_data(seed=0):
    from pipelines.data import japanese_vowels

    train, test = japanese_vowels.load("train"), japanese_vowels.load("test")
    valid = np.arange(MAX_LENGTH)[None, :] < train["lengths"][:, None]
    mean, std = train["x"][valid].mean(0), train["x"][valid].std(0)
    for split in (train, test):
        split["x"] = ((split["x"] - mean) / std).astype(np.float32)  # padding -> -mean/std
    order = np.random.default_rng(seed).permutation(len(train["lengths"]))
    fit = {k: v[order[30:]] for k, v in train.items()}
    val = {k: v[order[:30]] for k, v in train.items()}
    return {"fit": fit, "val": val, "test": test, "train": train,
            "pad": (-mean / std).astype(np.float32)}


def as_inputs(split, fixed):
    inputs = {"x": split["x"], "global_condition": split["global_condition"]}
    inputs["lengths"] = (np.full_like(split["lengths"], MAX_LENGTH) if fixed
                         else split["lengths"])
    return inputs


# ----------------------------------------------------------------------------- models
def build(kind, input_noise=INPUT_NOISE, hidden_dim=32, num_layers=5):
    cls = FixedLengthBaseline if kind == "fixed_length" else ContinuousSequenceModel
    return cls(feature_dim=12, num_mixtures=1 if kind == "gaussian" else 5,
               num_layers=num_layers, hidden_dim=hidden_dim, max_length=32,
               num_global_classes=9, input_noise=input_noise)


def train(model, data, steps, eval_every, learning_rate=1e-3, weight_decay=0.0, seed=0):
    """AdamW, batch 32, `steps` steps, cosine decay; keeps the weights with the best
    validation NLL (checked every `eval_every` steps)."""
    fixed = isinstance(model, FixedLengthBaseline)
    fit = as_inputs(data["fit"], fixed)
    dataset = (tf.data.Dataset.from_tensor_slices(fit).shuffle(len(fit["x"]), seed=seed)
               .repeat().batch(BATCH))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay))
    keeper = BestWeights(data, eval_every)
    model.fit(dataset, steps_per_epoch=eval_every, epochs=steps // eval_every, verbose=0,
              callbacks=[keeper])
    model.set_weights(keeper.best_weights)
    return keeper.curve


class BestWeights(keras.callbacks.Callback):
    """Validation NLL every epoch (`eval_every` steps); keeps the best weights."""

    def __init__(self, data, eval_every):
        super().__init__()
        self.data, self.eval_every = data, eval_every
        self.best, self.best_weights, self.curve = math.inf, None, []

    def on_epoch_end(self, epoch, logs=None):
        nll = scores(self.model, self.data["val"], self.data["pad"])["nll"]
        self.curve.append(((epoch + 1) * self.eval_every, float(nll)))
        if nll < self.best:
            self.best, self.best_weights = nll, self.model.get_weights()


def scores(model, split, pad):
    """{"nll": per valid step (the model's own measure), "values": value part only,
    "with_end": fixed-length only, values + log P(padding frame at t = n)}."""
    fixed = isinstance(model, FixedLengthBaseline)
    params = model(as_inputs(split, fixed), training=False)
    x, lengths = tf.constant(split["x"]), split["lengths"]
    valid = np.arange(MAX_LENGTH)[None, :] < lengths[:, None]
    steps = valid.sum()
    values = model.head.value_log_prob(params, x).numpy()
    out = {"values": -values[valid].sum() / steps}
    if fixed:
        end = end_log_prob(model.head, params.numpy(), lengths, pad)
        out["with_end"] = out["values"] - end.sum() / steps
        out["nll"] = -values.sum() / steps  # what it is trained on (all 29 frames)
        return out
    last = np.arange(MAX_LENGTH)[None, :] == (lengths - 1)[:, None]
    stops = model.head.stop_log_prob(params, last).numpy()
    out["nll"] = out["values"] - stops[valid].sum() / steps
    return out


def end_log_prob(head, params, lengths, pad):
    """[N] log P(x_n in the box of half-width PAD_BOX around `pad`) under the fixed-length
    model's mixture at position n (0 for n = 29: nothing follows)."""
    from scipy.special import log_softmax, logsumexp, ndtr

    k, d = head.num_mixtures, head.feature_dim
    out = np.zeros(len(lengths))
    for i, n in enumerate(lengths):
        if n >= MAX_LENGTH:
            continue
        p = params[i, n].astype(np.float64)
        means = p[k:k + k * d].reshape(k, d)
        scales = np.exp(np.clip(p[k + k * d:k + 2 * k * d].reshape(k, d), -7, 7))
        mass = ndtr((pad + PAD_BOX - means) / scales) - ndtr((pad - PAD_BOX - means) / scales)
        out[i] = logsumexp(log_softmax(p[:k]) + np.log(np.maximum(mass, 1e-300)).sum(-1))
    return out


def generated_lengths(model, speakers, seed, temperature=1.0):
    out = model.generate(batch_size=len(speakers), num_steps=32, seed=seed,
                         conditions={"global_condition": speakers}, temperature=temperature)
    return out["lengths"].numpy()


# ----------------------------------------------------------------------------- benchmark
CASES = (("mdn", "mdn", INPUT_NOISE), ("gaussian", "gaussian", INPUT_NOISE),
         ("fixed_length", "fixed_length", INPUT_NOISE), ("mdn, no input noise", "mdn", 0.0))


def run(quick=False):
    steps, eval_every = (200, 100) if quick else (1000, 100)
    seeds = 1 if quick else 3
    data = load_data()
    test = data["test"]
    rows = _reference_rows(data)
    nll = {}
    for case, kind, noise in CASES:
        keras.utils.set_random_seed(0)
        model = build(kind, noise)
        curve = train(model, data, steps, eval_every)
        best_step = min(curve, key=lambda c: c[1])[0]
        measured = scores(model, test, data["pad"])
        nll[case] = measured
        name = f"{case} ({model.count_params()} params, best of {steps} steps at {best_step})"
        rows.append(_row(name, "test NLL per step", measured["nll" if kind != "fixed_length"
                                                            else "with_end"], "nats"))
        rows.append(_row(name, "test NLL per step, values only", measured["values"], "nats"))
        if kind != "fixed_length":
            ks = [ks_statistic(generated_lengths(model, test["global_condition"], seed),
                               test["lengths"]) for seed in range(seeds)]
            rows.append(_row(case, f"KS generated vs test lengths (mean of {seeds} seeds)",
                             float(np.mean(ks)), ""))
            rows.append(_row(case, "KS generated vs test lengths (worst seed)", max(ks), ""))
    for baseline in ("gaussian", "fixed_length"):
        theirs = nll[baseline]["values" if baseline == "fixed_length" else "nll"]
        rows.append(_row(f"mdn vs {baseline}", "NLL per step advantage",
                         theirs - nll["mdn"]["nll"], "nats"))
    return rows


def _reference_rows(data):
    test, train = data["test"]["lengths"], data["train"]["lengths"]
    boot = bootstrap_ks(test, len(test), len(test))
    return [_row("data: train vs test lengths", "KS", ks_statistic(train, test), ""),
            _row("data: two resamples of the test lengths (370 each)", "KS median",
                 float(np.median(boot)), ""),
            _row("data: two resamples of the test lengths (370 each)", "KS 95th percentile",
                 float(np.quantile(boot, 0.95)), "")]


def _row(case, metric, value, unit):
    return {"benchmark": "continuous", "case": case, "metric": metric, "value": float(value),
            "unit": unit}
