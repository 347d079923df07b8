"""Learning curves on digits: validation and test bits/dim every `--every` s of training.

The bench's digits split (1300 train / 200 validation / 297 test), `Trainer` and recipe; the
bench's four models (`--bench-models`) and/or `bench.image_probe`-style `--variants` (the
baseline always). Every `--every` s of each model's training its evaluated weights (the EMA
with `--ema`) are scored on both splits; the model trains on from its own weights. Prints
one row of test bits/dim per model and seed, the validation-selected point and the lowest.

The thirteenth session's curves (docs/benchmarks.md), e.g. run 2:
`.venv/bin/python -u -m bench.image_curves --budget 80 --seeds 0,1 --variants '{"Gated":
["GatedPixelCNN", {"num_layers": 7, "filters": 56}], "PP d0.5": ["PixelCNNPlusPlus",
{"num_layers": 1, "filters": 60, "num_scales": 1, "num_mixtures": 10, "dropout": 0.5}]}'`
"""

import argparse
import json

import keras

from bench import image_quality_bench as bench
from bench import image_training as it
from bench.image_probe import factories


def _bits(trainer, images):
    """Bits/dim of the weights evaluated, the model's own weights left in place."""
    return trainer.score(images)[0] / it.bits_to_nats(images)


def _trainers(args, variants, image_shape, train, seed):
    facs = factories(variants, image_shape, 17)  # the probe's baseline and the variants
    if args.bench_models:  # the bench's four, its baseline in place of the probe's
        facs = {**bench.make_models(image_shape, 17),
                **{k: v for k, v in facs.items() if k != "baseline"}}
    trainers = {}
    for name, factory in facs.items():
        keras.utils.set_random_seed(seed)
        spec = variants.get(name, [])
        recipe = {"learning_rate": args.lr, "ema": args.ema,
                  **(spec[2] if len(spec) > 2 else {})}
        trainers[name] = it.Trainer(factory(), train, 17, seed=seed, **recipe)
        trainers[name].train_for(max_steps=1)  # tracing before the clock, as the bench
        trainers[name].wall = trainers[name].cpu = 0.0
    return trainers


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="{}", help="JSON: name -> [class, kwargs, recipe]")
    p.add_argument("--bench-models", action="store_true")
    p.add_argument("--seeds", default="0")
    p.add_argument("--budget", type=float, default=60.0)
    p.add_argument("--every", type=float, default=5.0)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--ema", type=float, default=0.95)
    args = p.parse_args()
    train, val, test = bench.digits()
    variants = json.loads(args.variants)
    for seed in [int(s) for s in args.seeds.split(",")]:
        trainers = _trainers(args, variants, test.shape[1:], train, seed)
        curves = {name: [] for name in trainers}
        t = 0.0
        while t < args.budget - 1e-6:
            t += args.every
            for name, trainer in trainers.items():
                trainer.train_for(seconds=t - trainer.wall)
                curves[name].append((t, trainer.steps, _bits(trainer, val), _bits(trainer, test)))
        for name, c in curves.items():
            chosen = min(c, key=lambda r: r[2])
            print(f"seed {seed} {name[:20]:20s} " + " ".join(f"{r[3]:.4f}" for r in c)
                  + f" | validation picks {chosen[0]:g} s: {chosen[3]:.4f}; lowest "
                  f"{min(r[3] for r in c):.4f}", flush=True)
        print("CURVES", seed, json.dumps(curves), flush=True)


if __name__ == "__main__":
    main()
