"""Image models: test bits/dim after an equal wall-clock training budget, vs a plain baseline.

Data (offline): Fashion-MNIST from Debian's `dataset-fashion-mnist` (train: the 60k
`train` images; test: the first 1000 of `t10k`, 500 in quick mode), binarised as in the Keras
PixelCNN example (value >= 0.33 * 256 -> 1), and as stored (8-bit, 256 levels: part
`fashion8`, the same models with 256-way outputs); and scikit-learn's handwritten digits
(`load_digits`, 8x8, 17 levels: the last 297 images are the test split, the 200 before them
the validation split, 1300 train).

Models, all unconditional, ~530k parameters on binarised Fashion-MNIST:

* `baseline`: the 2016 PixelCNN (arXiv 1601.06759, section 3.4 / figure 5) written plainly
  below: 7x7 mask-A conv to 2h features, residual blocks (ReLU, 1x1 2h -> h, ReLU, 3x3 mask-B
  h -> h, ReLU, 1x1 h -> 2h, add), ReLU, 1x1, ReLU, 1x1 -> softmax; the mask is multiplied
  into the kernel in `call`, no caches; sparse softmax cross-entropy loss.
* `PixelCNN`, `GatedPixelCNN`, `PixelCNNPlusPlus` from `keras_ar.models`, trained with their
  own `compute_loss` (nats per image). PixelCNN++: dropout 0 on Fashion-MNIST (runs are
  under an epoch), the paper's 0.5 on digits (tens of epochs); one scale on 8 x 8 digits;
  10 mixtures unless binary (`_pixel_cnn_plus_plus`).

Every model gets Adam(1e-3) (or `--lr`; `--ema m` evaluates an exponential moving average
of the weights, momentum m, as Polyak averaging in the PixelCNN++ paper), batch 32, the same
shuffled stream (its own iterator) and `budget_s` seconds of wall time of `train_on_batch`
(digits: 60 s, 15 s in a quick run; on Fashion-MNIST the first step's tracing included,
as for the reference figures; on digits the first step runs before the clock starts;
throughput counts the steps after it). The models train in turn in ~30 s slices (digits,
and Fashion-MNIST in a quick run: 5 s), so load from other jobs on this shared machine
falls on all of them alike (`bench.image_training`); the process CPU seconds each model got
are reported too. After every slice the weights evaluated are scored (on the validation
split, else the first 250 test images, outside the budget): the learning-curve rows
(`series`, `step`, `wall_s`) that `bench/plots.py` draws.
Fashion-MNIST tests the weights at the end of the budget. Digits, whose 1300 training
images every model overfits within 60 s, tests each model's best checkpoint on the
validation split (scored after every slice; scoring every 2 s chose the same way): early
stopping within the budget.
`--seeds 0,1,2` repeats a part with other initialisations and shuffles and adds the mean:
one run of a few hundred steps does not separate the models on 8-bit images.
Also: `PixelCNNPlusPlus` training images/s with and without `jit_compile` (same model size).

Run alone: `.venv/bin/python -m bench.image_quality_bench [--quick] [--budget 330]`.
"""

import argparse
import gzip
import os
import platform
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from bench.image_training import BATCH, Trainer, bits_to_nats, train_models
from keras_ar.models import GatedPixelCNN, PixelCNN, PixelCNNPlusPlus

FASHION_ROOT = "/usr/share/datasets/fashion-mnist"
FULL_BUDGET_S = 330.0
QUICK_BUDGET_S = 20.0
QUICK_SLICE_S = 5.0  # a quick run's Fashion-MNIST slices: a few points per learning curve
CURVE_IMAGES = 250  # without a validation split, the test images scored after every slice
DIGITS_BUDGET_S, DIGITS_SLICE_S, DIGITS_VALIDATION = 60.0, 5.0, 200
QUICK_DIGITS_BUDGET_S = 15.0


# ----------------------------------------------------------------------------- data
def _idx_images(subset, root=FASHION_ROOT):
    path = os.path.join(root, f"{subset}-images-idx3-ubyte.gz")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: install Debian's `dataset-fashion-mnist` "
            "(apt-get install dataset-fashion-mnist); this benchmark never downloads.")
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)


def fashion_binarised(test_images):
    """(train, test) uint8 [N, 28, 28, 1] in {0, 1}."""
    threshold = int(0.33 * 256)
    train = (_idx_images("train") >= threshold).astype(np.uint8)
    test = (_idx_images("t10k")[:test_images] >= threshold).astype(np.uint8)
    return train, test


def fashion_8bit(test_images):
    """(train, test) uint8 [N, 28, 28, 1] in [0, 255], the images as stored."""
    return _idx_images("train"), _idx_images("t10k")[:test_images]


def digits(validation=DIGITS_VALIDATION):
    """(train, val, test) uint8 [N, 8, 8, 1] in [0, 16]: the last 297 images are the test
    split, the `validation` images before them the validation split (None if 0), the rest
    train."""
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.uint8)[..., None]
    train, test = images[:-297], images[-297:]
    cut = len(train) - validation
    return train[:cut], (train[cut:] if validation else None), test


# ----------------------------------------------------------------------------- baseline
class PlainMaskedConv2D(keras.layers.Layer):
    """Single-channel masked convolution: mask "A" hides the centre pixel, "B" keeps it."""

    def __init__(self, filters, kernel_size, mask_type, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.mask_type = filters, kernel_size, mask_type

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight(shape=(k, k, input_shape[-1], self.filters),
                                      initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
        mask = np.ones((k, k, 1, 1), np.float32)
        centre = k // 2
        mask[centre, centre + (self.mask_type == "B"):] = 0.0
        mask[centre + 1:] = 0.0
        self.mask = tf.constant(mask)

    def call(self, x):
        return tf.nn.conv2d(x, self.kernel * self.mask, 1, "SAME") + self.bias


def baseline_pixelcnn(image_shape, num_levels, h=64, num_blocks=9, output_hidden=256):
    """The 2016 paper's PixelCNN as a functional Keras model: pixel floats -> logits."""
    inputs = keras.Input(image_shape)
    x = PlainMaskedConv2D(2 * h, 7, "A")(inputs)
    for _ in range(num_blocks):
        y = keras.layers.Conv2D(h, 1)(keras.layers.ReLU()(x))
        y = PlainMaskedConv2D(h, 3, "B")(keras.layers.ReLU()(y))
        y = keras.layers.Conv2D(2 * h, 1)(keras.layers.ReLU()(y))
        x = keras.layers.Add()([x, y])
    x = keras.layers.Conv2D(output_hidden, 1, activation="relu")(keras.layers.ReLU()(x))
    logits = keras.layers.Conv2D(num_levels, 1)(x)
    return keras.Model(inputs, logits, name="baseline_pixelcnn")


# ----------------------------------------------------------------------------- models
def make_models(image_shape, num_levels):
    """name -> zero-argument factory; sizes chosen for ~530k parameters at 28x28, 2 levels."""
    common = dict(image_shape=image_shape, num_levels=num_levels)
    return {
        "baseline (2016 PixelCNN, plain)": lambda: baseline_pixelcnn(image_shape, num_levels),
        "PixelCNN": lambda: _pixel_cnn(common),
        # (7 x 56: 530k parameters with its vertical kernels' masked rows counted, 415k live)
        "GatedPixelCNN": lambda: GatedPixelCNN(num_layers=7, filters=56, **common),
        "PixelCNNPlusPlus": lambda: _pixel_cnn_plus_plus(common),
    }


def _pixel_cnn(common):
    """Binary images and digits: 5 masked 5 x 5 blocks at 64 (13 rows up; 1.5x the speed of
    7 x 86; on digits the better under early stopping); 8-bit images 7 of 3 x 3 at 86 (5 x 5
    lost a seed of three); output layer 256 wide (beat 86). Chosen on probes kept in the git
    history of docs/benchmarks.md."""
    if common["num_levels"] == 2 or common["image_shape"][0] <= 8:
        return PixelCNN(num_layers=5, filters=64, kernel_size=5, output_filters=256, **common)
    return PixelCNN(num_layers=7, filters=86, output_filters=256, **common)


def _pixel_cnn_plus_plus(common):
    """3 scales of 2 resnets x 24 on 28 x 28 (545k parameters), no dropout (under an epoch);
    on 8 x 8 digits one scale of 1 x 60 (best of six sizes over 3 seeds) with the paper's
    dropout 0.5 (digits train for many epochs). 10 mixtures (the paper's) beat 5 on digits
    and 8-bit images; binary images keep 5. Probes: git history of docs/benchmarks.md."""
    size = (dict(num_layers=1, filters=60, num_scales=1, dropout=0.5)
            if common["image_shape"][0] <= 8
            else dict(num_layers=2, filters=24, num_scales=3, dropout=0.0))
    return PixelCNNPlusPlus(num_mixtures=5 if common["num_levels"] == 2 else 10, **size,
                            **common)


# ----------------------------------------------------------------------------- run
def _row(case, metric, value, unit, **fields):
    """A result row; `fields` (series, step, wall_s of a learning-curve point) are what
    `bench/plots.py` and `bench/report.py` read."""
    return {"benchmark": "images_quality", "case": case, "metric": metric,
            "value": float(value), "unit": unit, **fields}


def compare(label, train_data, test, num_levels, budget_s, slice_s=30.0, save_dir=None,
            seed=0, count_tracing=True, recipe=None, val=None):
    """Train every model for `budget_s` seconds in round-robin slices of ~`slice_s` (so load
    from other jobs falls on all models alike); -> (rows of bits/dim, nats/image, images/s;
    {name: bits/dim}). `count_tracing=False` runs each model's first (tracing) step before
    its clock starts. `recipe`: Trainer keywords (`learning_rate`, `ema`) for every model.
    `val`: validation images to select each model's checkpoint on (`train_models`)."""
    trainers, nats = train_models(make_models(test.shape[1:], num_levels), train_data, test,
                                  num_levels, budget_s, slice_s, seed, count_tracing, recipe,
                                  val=val, curve_images=None if val is not None
                                  else test[:CURVE_IMAGES])
    bits = {name: value / bits_to_nats(test) for name, value in nats.items()}
    rows = []
    for name, trainer in trainers.items():
        if save_dir:
            os.makedirs(save_dir, exist_ok=True)
            trainer.model.save_weights(os.path.join(
                save_dir, f"{label.split()[0]}_{name.split()[0]}_seed{seed}.weights.h5"))
        rows += _model_rows(f"{label}: {name}", trainer, bits[name], nats[name])
        rows += _curve_rows(f"{label}: {name}", trainer, test, val)
    return rows + _versus_baseline(label, bits), bits


def _versus_baseline(label, bits):
    base = bits["baseline (2016 PixelCNN, plain)"]
    return [_row(f"{label}: {name} vs baseline", "bits/dim difference (< 0 better)",
                 bits[name] - base, "bits/dim")
            for name in ("PixelCNN", "GatedPixelCNN", "PixelCNNPlusPlus")]


def compare_seeds(label, seeds, *args, **kwargs):
    """`compare` once per seed; with several seeds, also the mean bits/dim of each model."""
    rows, runs = [], []
    for seed in seeds:
        seed_label = f"{label}, seed {seed}" if len(seeds) > 1 else label
        seed_rows, bits = compare(seed_label, *args, seed=seed, **kwargs)
        rows += seed_rows
        runs.append(bits)
    if len(seeds) > 1:
        mean = {name: float(np.mean([run[name] for run in runs])) for name in runs[0]}
        for name, value in mean.items():
            spread = max(run[name] for run in runs) - min(run[name] for run in runs)
            print(f"  {label}, mean of {len(seeds)} seeds: {name}: {value:.4f} bits/dim "
                  f"(max - min {spread:.4f})", flush=True)
            rows.append(_row(f"{label}, mean of {len(seeds)} seeds: {name}",
                             "test bits/dim", value, "bits/dim"))
        rows += _versus_baseline(f"{label}, mean of {len(seeds)} seeds", mean)
    return rows


def _model_rows(case, trainer, bits, nats):
    steps, wall = trainer.selected()
    print(f"  {case}: {bits:.4f} bits/dim, {trainer.images_per_s():.1f} images/s, "
          f"{trainer.steps} steps, {trainer.model.count_params()} params; tested the weights "
          f"of step {steps} ({wall:.0f} s)", flush=True)
    return [_row(case, "test bits/dim", bits, "bits/dim"),
            _row(case, "steps of the weights tested", steps, "steps"),
            _row(case, "test nats/image", nats, "nats"),
            _row(case, "train images/s", trainer.images_per_s(), "images/s"),
            _row(case, f"train steps (batch {BATCH})", trainer.steps, "steps"),
            _row(case, "train wall s", trainer.wall, "s"),
            _row(case, "train process CPU s", trainer.cpu, "s"),
            _row(case, "parameters", trainer.model.count_params(), "params")]


def _curve_rows(case, trainer, test, val):
    """The learning curve: one row per scored slice, bits/dim of the weights evaluated on the
    validation split (or the first CURVE_IMAGES test images), with its step and wall time."""
    images = val if val is not None else test[:CURVE_IMAGES]
    metric = ("validation bits/dim after a slice" if val is not None
              else f"bits/dim on {len(images)} test images after a slice")
    return [_row(case, metric, nats / bits_to_nats(images), "bits/dim", series="learning curve",
                 step=steps, wall_s=wall) for steps, wall, nats in trainer.curve]


def jit_throughput(train_data, num_levels, quick):
    """`PixelCNNPlusPlus` training images/s, plain graph vs `jit_compile=True`, interleaved."""
    steps = 6 if quick else 30
    trainers = {}
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = make_models(train_data.shape[1:], num_levels)["PixelCNNPlusPlus"]()
        trainers[jit] = Trainer(model, train_data, num_levels, jit_compile=jit)
        trainers[jit].train_for(max_steps=1)  # trace / compile
    for _ in range(3):
        for trainer in trainers.values():
            trainer.train_for(max_steps=trainer.steps + steps // 3)
    rows = [_row(f"PixelCNNPlusPlus training, jit_compile={jit}",
                 f"train images/s ({trainer.steps - 1} steps)", trainer.images_per_s(),
                 "images/s") for jit, trainer in trainers.items()]
    rows.append(_row("PixelCNNPlusPlus training", "jit / no-jit throughput",
                     trainers[True].images_per_s() / trainers[False].images_per_s(), "x"))
    return rows


def _recipe_label(learning_rate, ema):
    """'' for the default recipe (Adam 1e-3, no averaging), else ', Adam <lr>[, EMA <m>]'."""
    if learning_rate == 1e-3 and not ema:
        return ""
    return f", Adam {learning_rate:g}" + (f", EMA {ema:g}" if ema else "")


def run(quick=False, budget_s=None, parts=("fashion", "fashion8", "digits", "jit"),
        save_dir=None, seeds=(0,), learning_rate=1e-3, ema=0.0):
    budget_s = float(budget_s or (QUICK_BUDGET_S if quick else FULL_BUDGET_S))
    recipe, tag = dict(learning_rate=learning_rate, ema=ema), _recipe_label(learning_rate, ema)
    slice_s = QUICK_SLICE_S if quick else 30.0
    rows = []
    if "fashion" in parts or "jit" in parts:
        train_f, test_f = fashion_binarised(test_images=500 if quick else 1000)
    if "fashion" in parts:
        rows += compare_seeds(f"binarised Fashion-MNIST 28x28, {budget_s:g} s{tag}", seeds,
                              train_f, test_f, 2, budget_s, save_dir=save_dir, recipe=recipe,
                              slice_s=slice_s)
    if "fashion8" in parts:
        train_8, test_8 = fashion_8bit(test_images=500 if quick else 1000)
        rows += compare_seeds(f"8-bit Fashion-MNIST 28x28, {budget_s:g} s{tag}", seeds,
                              train_8, test_8, 256, budget_s, save_dir=save_dir, recipe=recipe,
                              slice_s=slice_s)
    if "digits" in parts:
        train_d, val_d, test_d = digits()
        digits_s = QUICK_DIGITS_BUDGET_S if quick else DIGITS_BUDGET_S
        rows += compare_seeds(f"digits 8x8 (17 levels), {digits_s:g} s after tracing, "
                              f"best of validation{tag}", seeds, train_d, test_d, 17,
                              digits_s, slice_s=DIGITS_SLICE_S, save_dir=save_dir,
                              count_tracing=False, recipe=recipe, val=val_d)
    if "jit" in parts:
        rows += jit_throughput(train_f, 2, quick)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of training per model on Fashion-MNIST")
    parser.add_argument("--parts", default="fashion,fashion8,digits,jit",
                        help="comma-separated subset of fashion,fashion8,digits,jit")
    parser.add_argument("--save-dir", default=None, help="save trained weights here")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated seeds; several add the mean per model")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="EMA momentum of the weights evaluated (0: none), for every model")
    parser.add_argument("--out", default=None,
                        help="also write results.json, results.md and the plots here")
    args = parser.parse_args()
    start, cpu_start = time.perf_counter(), time.process_time()
    rows = run(quick=args.quick, budget_s=args.budget, parts=args.parts.split(","),
               save_dir=args.save_dir, seeds=[int(s) for s in args.seeds.split(",")],
               learning_rate=args.lr, ema=args.ema)
    for row in rows:
        print(f"{row['case']:60s} {row['metric']:34s} {row['value']:.4g} {row['unit']}")
    if args.out:
        from bench.common import cpu_info
        from bench.runner import write_results

        os.makedirs(args.out, exist_ok=True)
        write_results(args.out, rows, {
            "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "cpu": cpu_info(),
            "machine": platform.machine(),
            "command": "python -m bench.image_quality_bench " + " ".join(sys.argv[1:]),
            "quick": args.quick, "benchmarks": ["images_quality"],
            "seconds": {"images_quality": time.perf_counter() - start},
            "cpu_seconds": {"images_quality": time.process_time() - cpu_start}})


if __name__ == "__main__":
    main()
