"""`keras-ar export`: checkpoint (.keras) -> SavedModel / TFLite / ONNX, then the parity gate.

    keras-ar export --checkpoint model.keras --targets savedmodel,tflite,onnx --out DIR
                    [--overwrite] [--quantize int8,float16] [--no-verify]
    keras-ar export verify --checkpoint model.keras --out DIR [--targets ...]
    keras-ar export repository --checkpoint model.keras --base BASE --name NAME
                    [--version N]
"""

import json
import pathlib
import sys

ACTIONS = ("export", "verify", "repository")
REFERENCE = "model.keras"


def add_arguments(parser):
    parser.add_argument("action", nargs="?", default="export", choices=ACTIONS,
                        help="export (default), verify an existing export, or write a TF "
                             "Serving model repository version")
    parser.add_argument("--checkpoint", default=None,
                        help="a Keras .keras file (verify: default <out>/model.keras, the copy "
                             "`keras-ar export` keeps beside the targets)")
    parser.add_argument("--targets", default="savedmodel,tflite,onnx",
                        help="comma-separated among savedmodel,tflite,onnx")
    parser.add_argument("--out", help="export directory (export, verify)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out directory")
    parser.add_argument("--quantize", default="", help="TFLite extras: int8,float16")
    parser.add_argument("--tflite-batch-size", type=int, default=None,
                        help="fixed TFLite batch (default dynamic); 1 is the fastest "
                             "on-device generate")
    parser.add_argument("--no-verify", action="store_true", help="skip the parity gate")
    parser.add_argument("--num-steps", type=int, default=64,
                        help="sample_step parity steps (>= 64 for the gate)")
    parser.add_argument("--base", help="TF Serving model base path (repository)")
    parser.add_argument("--name", help="model name (repository)")
    parser.add_argument("--version", type=int, help="version (repository; default next)")
    parser.add_argument("--with-tflite", action="store_true",
                        help="repository: add model.tflite to the version, for "
                             "--prefer_tflite_model serving")


def load_checkpoint(path):
    """Load a keras_ar model from a .keras file (or its directory); clear errors for missing
    or foreign files (`AutoregressiveModel.from_preset`)."""
    from keras_ar.models import AutoregressiveModel

    return AutoregressiveModel.from_preset(path)


def _checkpoint(args):
    """--checkpoint, or for `verify` the reference copy inside --out."""
    if args.checkpoint:
        return args.checkpoint
    kept = pathlib.Path(args.out or ".") / REFERENCE
    if args.action == "verify" and args.out and kept.is_file():
        return kept
    raise ValueError(f"`keras-ar export {args.action}` needs --checkpoint model.keras"
                     + (f" (no {REFERENCE} in {args.out!r} to verify against)"
                        if args.action == "verify" else "") + ".")


def _keep_reference(checkpoint, out):
    """Copy the exported checkpoint to `<out>/model.keras` (atomically): the Keras reference
    that `keras-ar export verify --out` checks the targets against later."""
    import os
    import shutil

    target = pathlib.Path(out) / REFERENCE
    tmp = target.with_name(f".{REFERENCE}.tmp")
    shutil.copyfile(checkpoint, tmp)
    os.replace(tmp, target)


def run(args):
    from export.export_all import export_all, parse_targets

    try:
        targets = parse_targets(args.targets)
        if args.action in ("export", "verify") and not args.out:
            raise ValueError(f"`keras-ar export {args.action}` needs --out DIR.")
        if args.action == "repository" and not (args.base and args.name):
            raise ValueError("`keras-ar export repository` needs --base and --name.")
        model = load_checkpoint(_checkpoint(args))
        if args.action == "export":
            quantize = tuple(q for q in args.quantize.split(",") if q)
            report = export_all(
                model, args.out, targets=targets, overwrite=args.overwrite,
                quantize=quantize, verify_parity=not args.no_verify,
                num_steps=args.num_steps, tflite_batch_size=args.tflite_batch_size)
            _keep_reference(args.checkpoint, args.out)
            print(json.dumps(report["targets"], indent=2))
        elif args.action == "verify":
            from export import verify

            rows = verify.verify(model, args.out, targets, num_steps=args.num_steps)
            print(verify.table(rows))
        else:
            from export import repository

            path = repository.write_version(model, args.base, args.name, args.version,
                                            tflite=args.with_tflite)
            print(path)
    except (ValueError, FileNotFoundError, FileExistsError, AssertionError,
            RuntimeError) as error:
        print(f"keras-ar export: error: {error}", file=sys.stderr)
        return 2
    return 0
