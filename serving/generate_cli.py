"""`keras-ar generate`: sample from an exported model on any backend.

    keras-ar generate --model runs/export/savedmodel --backend savedmodel --num_steps 16000 \
        --seed 1 --out sample.wav
    keras-ar generate --model http://127.0.0.1:8501/v1/models/wavenet --backend tfserving \
        --manifest runs/export/savedmodel --num_steps 100 --chunk-size 64 --out ids.txt

Generation runs in chunks (`--chunk-size K`, one `sample_chunk` round trip per K samples; the
same samples for every K); `--max_steps` pauses at that step and `--save_state` keeps the run.

The output kind follows `--out`'s suffix: .wav (16-bit, mu-law decoded when the manifest
says so), .png (a grid; needs the manifest's image shape or --image_shape), .txt, .npz.
"""

import pathlib

import numpy as np

BACKENDS = ("savedmodel", "tflite", "onnx", "tfserving")


def add_arguments(parser):
    parser.add_argument("--model", required=True,
                        help="artifact path, or http://HOST:PORT/v1/models/NAME | "
                             "grpc://HOST:PORT/NAME for --backend tfserving")
    parser.add_argument("--backend", choices=BACKENDS, default="savedmodel")
    parser.add_argument("--manifest", default=None,
                        help="generation_spec.json (or its directory) for tfserving")
    parser.add_argument("--num_steps", type=int, required=True)
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_k", type=int, default=0)
    parser.add_argument("--top_p", type=float, default=1.0)
    parser.add_argument("--stop_token", type=int, default=None)
    parser.add_argument("--prompt", default=None, help="comma-separated ids (every row)")
    parser.add_argument("--global_condition", default=None,
                        help="comma-separated ids/values, one per row")
    parser.add_argument("--chunk-size", "--chunk_size", dest="chunk_size", type=int,
                        default=None,
                        help="samples per round trip (sample_chunk; 1 = one sample_step "
                             "each); default per family: 256 audio, 32 text and sequences, "
                             "one image row")
    parser.add_argument("--graph_loop", action="store_true",
                        help="use the in-graph generate signature")
    parser.add_argument("--resume", default=None, help="resume a run saved with --save_state")
    parser.add_argument("--save_state", default=None, help="write the run (.npz) at the end")
    parser.add_argument("--max_steps", type=int, default=None,
                        help="pause after this many steps (use with --save_state)")
    parser.add_argument("--image_shape", default=None, help="H,W[,C] for .png output")
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--out", required=True, help=".wav | .png | .txt | .npz")


def make_backend(kind, model, manifest=None):
    if kind == "savedmodel":
        from serving.saved_model_backend import SavedModelBackend
        return SavedModelBackend(model)
    if kind == "tflite":
        from serving.tflite_backend import TFLiteBackend
        return TFLiteBackend(model)
    if kind == "onnx":
        from serving.onnx_backend import OnnxBackend
        return OnnxBackend(model)
    from serving.tf_serving_backend import TFServingBackend
    return TFServingBackend(model, manifest=manifest)


def _ints(text):
    return [int(v) for v in text.split(",")] if text else None


def run(args):
    from serving.generation_run import GenerationRun
    from serving.generator import Generator

    backend = make_backend(args.backend, args.model, args.manifest)
    generator = Generator(backend, chunk_size=args.chunk_size)
    options = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   stop_token=args.stop_token)
    if args.global_condition:
        values = np.array([float(v) for v in args.global_condition.split(",")])
        options["conditions"] = {"global_condition": values}
    if args.resume:
        run_state = GenerationRun.load(args.resume)
    elif args.graph_loop:
        out = generator.generate(args.num_steps, args.batch_size, args.seed,
                                 use_graph_loop=True, **options)
        return _write(args, generator, out)
    else:
        if args.prompt:
            options["prompt"] = np.tile(np.array(_ints(args.prompt))[None], (args.batch_size, 1))
        run_state = generator.start(args.num_steps, args.batch_size, args.seed, **options)
    out = generator.finish(run_state, progress=args.progress, max_steps=args.max_steps)
    if args.save_state:
        run_state.save(args.save_state)
    return _write(args, generator, out)


def _write(args, generator, out):
    from serving import writers

    path, spec = pathlib.Path(args.out), generator.spec
    x, lengths = out["x"], out["lengths"]
    decoding = spec.decoding
    if path.suffix == ".wav":
        audio = writers.decode_audio(x[0, : int(lengths[0])], spec.num_levels or 256,
                                     bool(decoding.get("mu_law")))
        writers.write_wav(path, audio, args.sample_rate)
    elif path.suffix == ".png":
        shape = _ints(args.image_shape) or spec.image_shape
        if not shape:
            raise SystemExit("keras-ar generate: .png output needs --image_shape H,W[,C].")
        images = writers.ids_to_images(x, shape, spec.num_levels or 256)
        writers.write_png(path, writers.image_grid(images))
    elif path.suffix == ".txt":
        writers.write_text(path, x, lengths)
    else:
        np.savez(path, x=x, lengths=lengths)
    print(f"wrote {path} ({x.shape[0]} rows, lengths {lengths.tolist()})")
    return 0
