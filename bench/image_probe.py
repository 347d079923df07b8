"""Probe model variants next to the image bench's baseline, with the bench's protocol.

Each variant is a `keras_ar.models` class and constructor keywords, given as JSON
`{"name": ["PixelCNN", {"num_layers": 7, "filters": 86}], ...}`, optionally with a third
item of `Trainer` keywords for that variant alone (`{"learning_rate": 3e-3}`); the bench's
baseline always trains with them. Same data, `Trainer`, interleaved slices and budgets as
`bench.image_quality_bench` (digits: 60 s after tracing in 5 s slices, each model tested at
its best checkpoint on the validation split; Fashion-MNIST: `--budget` s, tracing included,
30 s slices, tested at the end); prints test bits/dim per seed and the means.

Example (the tenth session's digits probe):
`.venv/bin/python -u -m bench.image_probe --part digits --seeds 0,1,2 --lr 2e-3 --ema 0.95
--variants '{"o256": ["PixelCNN", {"num_layers": 7, "filters": 86, "output_filters": 256}]}'`
"""

import argparse
import json

import numpy as np

from bench import image_quality_bench as bench
from bench.image_training import bits_to_nats, train_models
from keras_ar import models

PARTS = {  # part -> (loader of (train, val or None, test), num_levels, slice s, count tracing)
    "digits": (bench.digits, 17, bench.DIGITS_SLICE_S, False),
    "fashion": (lambda: _no_val(bench.fashion_binarised(test_images=1000)), 2, 30.0, True),
    "fashion8": (lambda: _no_val(bench.fashion_8bit(test_images=1000)), 256, 30.0, True),
}


def _no_val(split):
    return split[0], None, split[1]


def factories(variants, image_shape, num_levels):
    """The baseline plus every variant: name -> zero-argument factory."""
    out = {"baseline": lambda: bench.baseline_pixelcnn(image_shape, num_levels)}
    for name, (class_name, kwargs, *_) in variants.items():
        if not hasattr(models, class_name):
            raise ValueError(f"variant {name!r}: unknown model {class_name!r}; expected a "
                             "class of keras_ar.models such as 'PixelCNN'.")
        out[name] = (lambda cls=getattr(models, class_name), kw=kwargs:
                     cls(image_shape=image_shape, num_levels=num_levels, **kw))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=sorted(PARTS), default="digits")
    parser.add_argument("--variants", required=True, help="JSON: name -> [class, kwargs]")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds per model (default: 60 on digits, 330 otherwise)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema", type=float, default=0.0)
    args = parser.parse_args()
    load, num_levels, slice_s, count_tracing = PARTS[args.part]
    budget = args.budget or (bench.DIGITS_BUDGET_S if args.part == "digits"
                             else bench.FULL_BUDGET_S)
    train, val, test = load()
    variants = json.loads(args.variants)
    results = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        trainers, nats = train_models(
            factories(variants, test.shape[1:], num_levels), train, test, num_levels, budget,
            slice_s, seed, count_tracing, dict(learning_rate=args.lr, ema=args.ema),
            {name: spec[2] for name, spec in variants.items() if len(spec) > 2}, val=val)
        for name, trainer in trainers.items():
            bits = nats[name] / bits_to_nats(test)
            results.setdefault(name, []).append(bits)
            print(f"seed {seed} {name:16s} {bits:.4f} bits/dim, {trainer.steps} steps "
                  f"(tested: step {trainer.selected()[0]}), {trainer.images_per_s():.1f} "
                  f"images/s, {trainer.model.count_params()} params", flush=True)
    for name, values in results.items():
        print(f"mean {name:16s} {np.mean(values):.4f} ({' '.join(f'{v:.4f}' for v in values)})")


if __name__ == "__main__":
    main()
