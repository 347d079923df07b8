"""`keras-ar bench`: run benchmarks, write JSON results, a markdown page and PNG plots.

Each benchmark module exposes `run(quick: bool) -> list[dict]`; every row has at least
`benchmark`, `case`, `metric`, `value` and `unit` (some carry more fields for the plots).
Ratios are computed inside one module run (this machine is shared and noisy), never across
runs. `--out DIR` receives `results.json` (meta + rows), `results.md` (`bench.report`) and
one PNG per claim whose benchmarks ran (`bench.plots`), each written atomically.
"""

import importlib
import json
import os
import platform
import time

BENCHMARKS = {
    "wavenet": "bench.wavenet_bench",
    "transformer": "bench.transformer_bench",
    "runtimes": "bench.runtime_bench",
    "generate_loop": "bench.generate_loop_bench",
    "serving": "bench.serving_bench",
    "batching": "bench.batching_bench",
    "streaming": "bench.streaming_bench",
    "images_quality": "bench.image_quality_bench",
    "images_sampling": "bench.image_bench",
    "pipelines": "bench.pipeline_bench",
    "continuous": "bench.continuous_bench",
    "seq2seq": "bench.seq2seq_bench",
}


# name -> what it measures, for `keras-ar bench --help`.
DESCRIPTIONS = {
    "wavenet": "WaveNet cached generate vs naive recomputation; step latency",
    "transformer": "CausalTransformer KV-cache generate vs full recompute; tokens/s",
    "runtimes": "sample_step and generate on SavedModel, TFLite (+int8/float16), ONNX; sizes",
    "generate_loop": "the exported TFLite/ONNX generate loop: inner chunk sizes, fixed batch",
    "streaming": "sample_chunk round trips (Generator) vs the in-graph loop, local and gRPC",
    "serving": "sample_step round trips over keras-ar serve gRPC/REST; bare gRPC echo floor",
    "batching": "keras-ar serve --enable_batching: streaming samples/s at 1/8/32 clients",
    "images_quality": "image models' test bits/dim at an equal training budget vs a baseline",
    "images_sampling": "PixelCNN-family cached generate vs naive per-pixel recomputation",
    "pipelines": "ingest, input pipeline vs training throughput, input wait share",
    "continuous": "ContinuousSequenceModel NLL and generated lengths on Japanese Vowels",
    "seq2seq": "ByteNet vs encoder-decoder Transformer: greedy tokens/s, time vs source length",
}

HELPERS = """used by them:
  bench/common.py        best-of-N timing, the CPU model and ISA flags printed with results
  bench/report.py        results.md: machine header, one table per benchmark
  bench/plots.py         the PNG plots written beside results.md
  bench/grpc_echo.py     a bare Python gRPC echo: the floor under serving's round trips
  bench/image_training.py  the image benches' equal-budget training and checkpoint choice"""


def add_arguments(parser):
    import argparse

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    lines = [f"  {name:16s}{BENCHMARKS[name].replace('.', '/')}.py\n{'':18s}{DESCRIPTIONS[name]}"
             for name in BENCHMARKS]
    parser.epilog = ("benchmarks (current figures and their commands: docs/benchmarks.md):\n"
                     + "\n".join(lines) + "\n" + HELPERS)
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {sorted(BENCHMARKS)}")
    parser.add_argument("--out", default="bench/results", help="directory for JSON + markdown")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")


def run(args):
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"unknown benchmarks {unknown} in --only {args.only!r}; choose from "
                         f"{sorted(BENCHMARKS)}, comma-separated (e.g. --only wavenet,runtimes)")
    os.makedirs(args.out, exist_ok=True)
    rows, seconds, cpu_seconds = [], {}, {}
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        print(f"== {name}", flush=True)
        start, cpu_start = time.perf_counter(), time.process_time()
        for row in module.run(quick=args.quick):
            print("  ", _format_row(row), flush=True)
            rows.append(row)
        seconds[name] = time.perf_counter() - start
        cpu_seconds[name] = time.process_time() - cpu_start  # load-independent cost
        print(f"== {name}: {seconds[name]:.0f} s ({cpu_seconds[name]:.0f} CPU s)", flush=True)
        # after every benchmark: a failure later keeps what ran (meta lists what completed)
        write_results(args.out, rows, _meta(args, names, seconds, cpu_seconds))
    return 0


def command_line(names, out, quick):
    """The `keras-ar bench` command that reruns `names` into `out`."""
    only = "" if names == list(BENCHMARKS) else f" --only {','.join(names)}"
    return f"keras-ar bench --out {out}{only}" + (" --quick" if quick else "")


def _meta(args, names, seconds, cpu_seconds):
    from bench.common import cpu_info

    return {"time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "machine": platform.machine(), "cpu": cpu_info(), "cpus": os.cpu_count(),
            "quick": bool(args.quick), "benchmarks": list(seconds), "seconds": seconds,
            "cpu_seconds": cpu_seconds, "command": command_line(names, args.out, args.quick)}


def write_results(out, rows, meta):
    """`results.json`, the plots and `results.md` (which links them) into `out`."""
    from bench.plots import write_plots
    from bench.report import markdown_report

    _write_atomic(os.path.join(out, "results.json"),
                  json.dumps({"meta": meta, "rows": rows}, indent=1))
    plots = [os.path.basename(p) for p in write_plots(rows, meta["cpu"], out)]
    _write_atomic(os.path.join(out, "results.md"),
                  markdown_report(rows, meta, DESCRIPTIONS, plots))
    print(f"wrote {out}/results.json, results.md" + "".join(f", {p}" for p in plots))


def _write_atomic(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _format_row(row):
    return f"{row['benchmark']:12s} {row['case']:48s} {row['metric']:22s} " \
           f"{row['value']:.4g} {row['unit']}"
