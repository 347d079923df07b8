"""`keras-ar generate`: sample from an exported model on any backend.

    keras-ar generate --model runs/export/savedmodel --backend savedmodel --num_steps 16000 \
        --seed 1 --out sample.wav
    keras-ar generate --model http://127.0.0.1:8501/v1/models/wavenet --backend tfserving \
        --manifest runs/export/savedmodel --num_steps 100 --chunk-size 64 --out ids.txt

    keras-ar generate --model runs/export/tflite --global-condition 0,1,2 --repeat 8 \
        --num_steps 784 --scale 2 --out classes.png
    keras-ar generate --model runs/export/tflite --prompt-images test.npy --prompt-rows 14 \
        --global-condition 0,1,2 --repeat 4 --out completions.png
    keras-ar generate --model runs/export/onnx --source "phoneme" --source "graph" \
        --temperature 0 --stop-token 0 --out pronunciations.txt

Generation runs in chunks (`--chunk-size K`, one `sample_chunk` round trip per K samples; the
same samples for every K); `--max_steps` pauses at that step and `--save_state` keeps the run.

The output kind follows `--out`'s suffix: .wav (16-bit at the manifest's sample rate,
mu-law decoded when the manifest says so; one file per row, `<name>_<row>.wav` when the
batch has several), .png (a grid; needs the manifest's image shape or --image_shape), .txt
(decoded text: the manifest's vocabulary, one-character tokens joined without spaces, or
UTF-8 bytes for byte-level text; else ids), .npz (x and lengths). Rows end at `--stop-token`,
by default the stop token the artifact was exported with (the manifest's
decoding.stop_token; a grapheme-to-phoneme export's target stop id). `--out DIR/` (or an
existing directory) writes `sample.<kind>` files there, the kind from the model (audio .wav,
images .png, tokens .txt, sequences .npz). `--backend` is inferred from `--model` when
omitted.

`--repeat N` draws N samples for each row (its condition and prompt repeated, each with its
own noise); a .png grid then shows one row's N samples per grid row. `--prompt-images FILE`
(image models; `serving.image_prompt`) keeps each image's top `--prompt-rows` rows and
generates the rest (`--num_steps` defaults to the remaining pixels); the .png grid shows per
image: the original, the masked image (grey where generated), its completions.
Sequence-to-sequence models take one source row per `--source TEXT` (through the manifest's
source vocabulary) or `--source-ids 1,2,3`; `--num-steps` then defaults to the longest
row's target length by the model's rule (`serving.source_input`).
"""

import argparse
import collections
import pathlib
import sys

import numpy as np

from serving import condition_flags
from serving.backend import BACKENDS, infer_backend, make_backend  # noqa: F401

SUFFIXES = (".wav", ".png", ".txt", ".npz")
DEFAULT_KIND = {"WaveNet": ".wav", "CausalTransformer": ".txt", "ByteNet": ".txt",
                "EncoderDecoderTransformer": ".txt",
                "ContinuousSequenceModel": ".npz"}  # image models: .png


def add_arguments(parser):
    parser.add_argument("--model", required=True,
                        help="artifact path, or http://HOST:PORT/v1/models/NAME | "
                             "grpc://HOST:PORT/NAME for --backend tfserving")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="default: from --model (a URL: tfserving; a directory with "
                             "saved_model.pb, model.tflite or *.onnx; a .tflite file)")
    parser.add_argument("--manifest", default=None,
                        help="generation_spec.json (or its directory) for tfserving")
    parser.add_argument("--num-steps", "--num_steps", dest="num_steps", type=int, default=None,
                        help="values to generate per row (required, except with "
                             "--prompt-images: the pixels below the given rows, and with a "
                             "source: the longest row's target length)")
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int,
                        default=None, help="rows (default: one per --global-condition "
                                           "value, one per --prompt-images image, else 1)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="samples per row: each row (condition, prompt) repeated N times")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", "--top_k", dest="top_k", type=int, default=0)
    parser.add_argument("--top-p", "--top_p", dest="top_p", type=float, default=1.0)
    parser.add_argument("--stop-token", "--stop_token", dest="stop_token",
                        type=int, default=None,
                        help="a row ends at this id (default: the manifest's "
                             "decoding.stop_token, the one the model was exported with)")
    parser.add_argument("--prompt", default=None, help="comma-separated ids (every row)")
    parser.add_argument("--prompt-images", "--prompt_images", dest="prompt_images",
                        default=None,
                        help="image models: a .npy of pixel ids [N, H, W(, C)] or a .png of "
                             "one image; each image's top --prompt-rows rows are kept and the "
                             "rest generated (one row per image)")
    parser.add_argument("--prompt-rows", "--prompt_rows", dest="prompt_rows", type=int,
                        default=None, help="image rows given by --prompt-images (default: "
                                           "the top half)")
    parser.add_argument("--global-condition", "--global_condition", dest="global_condition",
                        default=None,
                        help="comma-separated ids/values, one per row")
    parser.add_argument("--local-condition", "--local_condition", dest="local_condition",
                        default=None,
                        help="frames for a model with local features: .npy [frames, D] (every "
                             "row) or [batch, frames, D], or a .wav whose log-mel frames are "
                             "computed as the manifest's decoding.local_features says")
    parser.add_argument("--source", action="append", default=None,
                        help="sequence-to-sequence models: source text, one row per flag, "
                             "mapped through the manifest's source vocabulary")
    parser.add_argument("--source-ids", "--source_ids", dest="source_ids", action="append",
                        default=None,
                        help="sequence-to-sequence models: comma-separated source ids, one "
                             "row per flag (padded to the model's max_source_length)")
    parser.add_argument("--chunk-size", "--chunk_size", dest="chunk_size", type=int,
                        default=None,
                        help="samples per round trip (sample_chunk; 1 = one sample_step "
                             "each); default per family: 256 audio, 32 text and sequences, "
                             "one image row")
    parser.add_argument("--graph-loop", "--graph_loop", dest="graph_loop", action="store_true",
                        help="use the in-graph generate signature")
    parser.add_argument("--resume", default=None, help="resume a run saved with --save-state")
    parser.add_argument("--save-state", "--save_state", dest="save_state",
                        default=None,
                        help="write the run (.npz) after every chunk and at the end: a run "
                             "that fails (a server gone) continues with --resume")
    parser.add_argument("--retry-deadline", "--retry_deadline", dest="retry_deadline",
                        type=float, default=30.0,
                        help="tfserving: seconds to keep retrying a server that is down or "
                             "restarting (exponential back-off; 0: fail at once)")
    parser.add_argument("--max-steps", "--max_steps", dest="max_steps", type=int, default=None,
                        help="pause after this many steps (use with --save-state)")
    parser.add_argument("--image-shape", "--image_shape", dest="image_shape",
                        default=None, help="H,W[,C] for .png output")
    parser.add_argument("--scale", type=int, default=1,
                        help=".png output: each pixel drawn as an N x N block")
    parser.add_argument("--sample-rate", "--sample_rate", dest="sample_rate",
                        type=int, default=None,
                        help="WAV rate; default: the manifest's sample_rate (else 16000)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a progress bar per chunk (default: when stderr is a terminal)")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    parser.add_argument("--out", required=True,
                        help="a file (.wav | .png | .txt | .npz) or a directory (DIR/)")


def _ints(text):
    return [int(v) for v in text.split(",")] if text else None


def run(args):
    """The command; a bad path, input or artifact prints one line naming it (exit 2)."""
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        if args.debug:
            raise
        print(f"keras-ar generate: error: {error} (--debug shows the traceback)",
              file=sys.stderr)
        return 2


def _run(args):
    from serving.generation_run import GenerationRun
    from serving.generator import Generator

    _check_flags(args)
    backend = make_backend(args.backend, args.model, args.manifest,
                           retry_deadline_s=args.retry_deadline)
    generator = Generator(backend, chunk_size=args.chunk_size)
    plan = _plan(args, generator.spec)
    _out_path(args.out, generator.spec)  # a bad --out fails before generating
    options = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   stop_token=_stop_token(args, generator.spec))
    options["conditions"] = ({} if args.resume  # the saved run holds its conditions
                             else condition_flags.conditions(args, generator.spec, plan))
    if plan.num_steps is None and not args.resume:  # a source without --num-steps
        plan = plan._replace(num_steps=condition_flags.default_steps(
            generator.spec, options["conditions"]["local_condition"],
            0 if plan.prompt is None else plan.prompt.shape[1]))
    if plan.prompt is not None:
        options["prompt"] = plan.prompt
    if args.resume:
        run_state = GenerationRun.load(args.resume)
    elif args.graph_loop:
        out = generator.generate(plan.num_steps, plan.batch, args.seed, use_graph_loop=True,
                                 **options)
        return _write(args, generator, out, plan)
    else:
        run_state = generator.start(plan.num_steps, plan.batch, args.seed, **options)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    out = _finish(args, generator, run_state, progress)
    return _write(args, generator, out, plan)


def _stop_token(args, spec):
    """--stop-token, else the stop token the artifact was exported with (the manifest's
    decoding.stop_token; None: rows run to --num-steps)."""
    if args.stop_token is not None:
        return args.stop_token
    baked = spec.decoding.get("stop_token")
    return None if baked is None else int(baked)


# batch: rows generated; base: rows before --repeat; prompt [batch, P(, C)] or None;
# images: the --prompt-images ids [base, H, W, C] or None; rows: the image rows they give
_Plan = collections.namedtuple("_Plan", "batch base num_steps prompt images rows")


def _check_flags(args):
    """The numeric flags, before any model is loaded."""
    for flag, value in (("--repeat", args.repeat), ("--scale", args.scale),
                        ("--batch-size", args.batch_size), ("--num-steps", args.num_steps)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} {value}: a positive integer is expected.")
    if args.num_steps is None and not (args.prompt_images or args.resume
                                       or condition_flags.source_rows(args)):
        raise ValueError("--num-steps is required (it may be left out with --prompt-images, "
                         "which generates the pixels below the given rows, with a source "
                         "(--source, --source-ids) or --resume).")
    condition_flags.check_source_flags(args)
    if args.prompt_rows is not None and not args.prompt_images:
        raise ValueError("--prompt-rows counts the rows of --prompt-images; pass "
                         "--prompt-images FILE too.")
    if args.prompt and args.prompt_images:
        raise ValueError("--prompt and --prompt-images both give a prompt; pass one.")


def _plan(args, spec):
    """The batch, steps and prompt the flags ask for (see `_Plan`)."""
    from serving import image_prompt

    repeat = args.repeat
    if not args.prompt_images:
        given = (len(args.global_condition.split(",")) if args.global_condition
                 else condition_flags.source_rows(args) or 1)
        base = args.batch_size or given
        prompt = (None if not args.prompt else
                  np.tile(np.array(_ints(args.prompt))[None], (base * repeat, 1)))
        return _Plan(base * repeat, base, args.num_steps, prompt, None, None)
    if spec.image_shape is None:
        raise ValueError(f"--prompt-images needs an image model; this one is a "
                         f"{spec.family or 'model without an image shape'}.")
    height, width = spec.image_shape[:2]
    images = image_prompt.read_images(args.prompt_images, spec.image_shape,
                                      spec.num_levels or 256)
    rows = height // 2 if args.prompt_rows is None else args.prompt_rows
    values = image_prompt.prompt_values(images, rows)
    if args.batch_size not in (None, len(images)):
        raise ValueError(f"--batch-size {args.batch_size}, but --prompt-images holds "
                         f"{len(images)} images (one row each); drop --batch-size.")
    remaining = (height - rows) * width
    if args.num_steps not in (None, remaining):
        raise ValueError(f"--num-steps {args.num_steps}: below {rows} given rows of {height} "
                         f"x {width} images {remaining} pixels remain; drop --num-steps or "
                         f"pass {remaining}.")
    return _Plan(len(images) * repeat, len(images), remaining,
                 np.repeat(values, repeat, axis=0), images, rows)


def _finish(args, generator, run_state, progress):
    """Run to the end (or --max-steps), saving the run after every chunk with --save-state;
    a failure names the saved state to --resume from."""
    if not args.save_state:
        return generator.finish(run_state, progress=progress, max_steps=args.max_steps)
    try:
        out = generator.finish(run_state, progress=progress, max_steps=args.max_steps,
                               callback=lambda t, values, run: run.save(args.save_state))
    except (RuntimeError, ValueError, OSError) as error:
        run_state.save(args.save_state)  # the last completed chunk: requests change nothing
        raise RuntimeError(f"{error}; the run so far (step {run_state.t} of "
                           f"{run_state.num_steps}) is saved in {args.save_state}: continue "
                           f"it with --resume {args.save_state}") from error
    run_state.save(args.save_state)
    return out


def _write(args, generator, out, plan):
    from serving import writers

    spec = generator.spec
    x, lengths = out["x"], out["lengths"]
    path = _out_path(args.out, spec)
    decoding = spec.decoding
    written = []
    if path.suffix == ".wav":
        rate = args.sample_rate or int(decoding.get("sample_rate") or 16000)
        ids = _condition_ids(args, plan)
        names = _row_names(decoding.get("speakers"), ids, len(x))
        for row, target in enumerate(_row_paths(path, len(x), names)):
            audio = writers.decode_audio(x[row, : int(lengths[row])], spec.num_levels or 256,
                                         bool(decoding.get("mu_law")))
            writers.write_wav(target, audio, rate)
            written.append(target)
    elif path.suffix == ".png":
        writers.write_png(path, writers.scale_image(_png_grid(args, spec, x, plan),
                                                    args.scale))
        written.append(path)
    elif path.suffix == ".txt":
        writers.write_text(path, x, lengths, vocabulary=decoding.get("vocabulary"),
                           text=decoding.get("text"))
        written.append(path)
    else:
        extra = {} if plan.prompt is None else {"prompt": plan.prompt}
        np.savez(path, x=x, lengths=lengths, **extra)
        written.append(path)
    shown = ", ".join(str(p) for p in written)
    print(f"wrote {shown} ({x.shape[0]} rows, lengths {lengths.tolist()})")
    return 0


def _png_grid(args, spec, x, plan):
    """The grid of whole images: --repeat samples per grid row, or with --prompt-images
    each image's original, masked copy and completions (prompt rows, then generated); these
    two layouts separate cells by 2 white pixels, a plain grid by 1 black one."""
    from serving import writers

    shape = tuple(_ints(args.image_shape) or spec.image_shape or ())
    if not shape:
        raise ValueError(".png output needs the image shape: this manifest has none; pass "
                         "--image_shape H,W[,C].")
    if plan.images is not None:
        x = np.concatenate([plan.prompt.reshape(x.shape[:1] + (-1,) + x.shape[2:]), x], 1)
    if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
        raise ValueError(f"each row holds {int(np.prod(x.shape[1:]))} values, not a whole "
                         f"{' x '.join(map(str, shape))} image ({int(np.prod(shape))}); "
                         f"generate every pixel (--num_steps) or write .npz.")
    levels = spec.num_levels or 256
    images = writers.ids_to_images(x, shape, levels)
    if plan.images is None:
        if args.repeat == 1:
            return writers.image_grid(images)
        return writers.image_grid(images, columns=args.repeat, pad=2, fill=255)
    return writers.inpainting_grid(writers.ids_to_images(plan.images, shape, levels),
                                   plan.rows, images)


def _out_path(out, spec):
    """--out as given (a known suffix), or `<dir>/sample.<kind>` for a directory."""
    path = pathlib.Path(out)
    if out.endswith(("/", "\\")) or path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        kind = ".png" if spec.image_shape else DEFAULT_KIND.get(spec.family, ".npz")
        return path / f"sample{kind}"
    if path.suffix not in SUFFIXES:
        raise SystemExit(f"keras-ar generate: --out {out!r} has the extension "
                         f"{path.suffix or '(none)'!r}; use one of {', '.join(SUFFIXES)} or a "
                         f"directory (ending in '/').")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _condition_ids(args, plan):
    """The class/speaker id of each generated row (after --repeat), or None."""
    if not args.global_condition:
        return None
    ids = [int(float(v)) for v in args.global_condition.split(",")]
    if plan.batch != plan.base and len(ids) == plan.base:
        ids = list(np.repeat(ids, plan.batch // plan.base))
    return ids


def _row_names(speakers, ids, rows):
    """Each row's speaker name (from the rows' ids and the manifest), or None."""
    if not speakers or not ids:
        return [None] * rows
    from serving import writers

    return [writers.file_label(speakers[i]) if 0 <= i < len(speakers) else None
            for i in (ids * rows)[:rows]]


def _row_paths(path, rows, names):
    """One file per row: `path` for a single unnamed row, else
    `<stem>_<row>[_<speaker>]<suffix>`."""
    if rows == 1 and names[0] is None:
        return [path]
    return [path.with_name(f"{path.stem}_{row}{'_' + names[row] if names[row] else ''}"
                           f"{path.suffix}") for row in range(rows)]
