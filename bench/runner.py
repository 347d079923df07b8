"""`keras-ar bench`: run benchmarks, write JSON results and a markdown table.

Each benchmark module exposes `run(quick: bool) -> list[dict]`; every row has at least
`benchmark`, `case`, `metric`, `value` and `unit`. Ratios are computed inside one module run
(this machine is shared and noisy), never across runs.
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
}

HELPERS = """used by them:
  bench/common.py        best-of-N timing, the CPU model and ISA flags printed with results
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
        raise SystemExit(f"unknown benchmarks {unknown}; choose from {sorted(BENCHMARKS)}")
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        print(f"== {name}", flush=True)
        for row in module.run(quick=args.quick):
            print("  ", _format_row(row), flush=True)
            rows.append(row)
    from bench.common import cpu_info

    meta = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.machine(),
            "cpu": cpu_info(),
            "cpus": os.cpu_count(), "quick": bool(args.quick), "benchmarks": names}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(markdown_table(rows))
    print(f"wrote {args.out}/results.json and results.md")
    return 0


def _format_row(row):
    return f"{row['benchmark']:12s} {row['case']:48s} {row['metric']:22s} " \
           f"{row['value']:.4g} {row['unit']}"


def markdown_table(rows):
    lines = ["| benchmark | case | metric | value | unit |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['benchmark']} | {row['case']} | {row['metric']} | "
                     f"{row['value']:.4g} | {row['unit']} |")
    return "\n".join(lines) + "\n"
