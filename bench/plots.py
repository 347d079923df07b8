"""PNG plots of one `keras-ar bench` run, one per claim, made from the run's rows.

`write_plots(rows, cpu, out_dir)` writes, beside `results.md`:

* `runtimes.png` (benchmark `runtimes`): `sample_step` ms and the exported `generate`'s
  samples/s per runtime at batch 1 and 16;
* `wavenet_length.png` (`wavenet`): time per generated sample against the sequence length:
  cached generation is flat, the whole-prefix naive step grows with the length;
* `cached_vs_naive.png` (`wavenet`, `transformer`, `images_sampling`, whichever ran): time per
  generation step, naive recomputation against the cache, with the speed-up;
* `image_learning_curves.png` (`images_quality`): bits/dim after every training slice, per
  model and dataset;
* `seq2seq.png` (`seq2seq`): greedy decode time against the source length (the target by
  ByteNet's unfolding rule) per model and runtime, and tokens/s at each batch size.

A plot whose benchmarks are not among the rows is not written. Each title names the CPU;
files are written atomically (a temporary file renamed into place).
"""

import os

RUNTIME_NAMES = {"Keras tf.function": "Keras", "savedmodel": "SavedModel",
                 "tflite": "TFLite f32", "tflite int8": "TFLite int8",
                 "tflite float16": "TFLite f16", "onnx": "onnxruntime"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    os.replace(tmp, path)


def _title(fig, claim, cpu):
    fig.suptitle(f"{claim}\n{cpu}", fontsize=9)


def _bars(ax, groups, series, values, ylabel):
    """Grouped bars: `values[(group, name)]` for each group (x) and series name (colour)."""
    width = 0.8 / max(len(series), 1)
    for i, name in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ys = [values.get((group, name), 0.0) for group in groups]
        ax.bar(xs, ys, width, label=name)
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8)


def plot_runtimes(rows, cpu, path):
    """`sample_step` latency and exported `generate` throughput per runtime and batch."""
    step = {(RUNTIME_NAMES.get(r["runtime"], r["runtime"]), f"batch {r['batch']}"): r["value"]
            for r in rows if r["benchmark"] == "runtimes" and r["metric"] == "ms per step"}
    gen = {(RUNTIME_NAMES.get(r["runtime"], r["runtime"]), f"batch {r['batch']}"): r["value"]
           for r in rows if r["benchmark"] == "runtimes" and "runtime" in r
           and r["unit"] == "samples/s"}
    if not step and not gen:
        return False
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, values, ylabel, title in (
            (left, step, "ms per sample_step (log)", "one sample_step call"),
            (right, gen, "samples/s, all rows (log)", "the exported generate loop")):
        groups = list(dict.fromkeys(group for group, _ in values))
        series = sorted({name for _, name in values}, key=lambda b: int(b.split()[-1]))
        _bars(ax, groups, series, values, ylabel)
        ax.set_title(title, fontsize=9)
    _title(fig, "WaveNet 10 x 64 generation per runtime and batch size", cpu)
    _save(fig, path)
    return True


def plot_wavenet_length(rows, cpu, path):
    """Seconds per sample against the generated length, cached and naive, log-log."""
    lines, flat = {}, {}
    for r in rows:
        if r["benchmark"] != "wavenet" or r["metric"] != "seconds per sample":
            continue
        if "length" in r:
            lines.setdefault((r["path"], r["batch"]), []).append((r["length"], r["value"]))
        elif "path" in r:
            flat[(r["path"], r["batch"])] = r["value"]
    if not lines:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    paths = sorted({p for p, _ in lines} | {p for p, _ in flat})
    colours = {p: f"C{i}" for i, p in enumerate(paths)}
    lengths = sorted({x for points in lines.values() for x, _ in points})
    for (name, batch), points in sorted(lines.items()):
        xs, ys = zip(*sorted(points))
        ax.plot(xs, ys, marker="o", color=colours[name], linestyle="-" if batch == 1 else "--",
                label=f"{name}, batch {batch}")
    for (name, batch), value in sorted(flat.items()):
        ax.plot([lengths[0], lengths[-1]], [value, value], color=colours[name],
                linestyle=":" if batch == 1 else "-.", label=f"{name}, batch {batch}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("generated length L (samples, log)")
    ax.set_ylabel("seconds per sample (log)")
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _title(fig, "WaveNet 2 x 10 x 64: time per sample vs length (cached: mean over L samples;"
                "\nnaive whole prefix: the step at position L)", cpu)
    _save(fig, path)
    return True


def _speed_up_cases(rows):
    """[(label, naive s, cached s)] from every speed-up row that carries both times."""
    names = {"wavenet": "WaveNet", "transformer": "Transformer", "images_sampling": "images"}
    cases = []
    for r in rows:
        if r["benchmark"] in names and "naive_s" in r and "cached_s" in r:
            label = r["case"].replace("cached vs naive, ", "").replace(" vs naive", "")
            cases.append((f"{names[r['benchmark']]}: {label}", r["naive_s"], r["cached_s"]))
    return cases


def plot_cached_vs_naive(rows, cpu, path):
    """Horizontal bars per case: naive and cached seconds per step, log, with the speed-up."""
    cases = _speed_up_cases(rows)
    if not cases:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(cases) + 1.6))
    ys = range(len(cases))
    ax.barh([y + 0.2 for y in ys], [c[1] for c in cases], 0.4, label="naive recomputation")
    ax.barh([y - 0.2 for y in ys], [c[2] for c in cases], 0.4, label="cached")
    for y, (_, naive, cached) in zip(ys, cases):
        ax.annotate(f"{naive / cached:.0f}x", (naive, y + 0.2), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(list(ys), [c[0] for c in cases], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(right=3 * max(c[1] for c in cases))  # room for the speed-up labels
    ax.set_xlabel("seconds per generation step of the whole batch (log)")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _title(fig, "Cached vs naive generation (speed-up at the end of each bar pair)", cpu)
    _save(fig, path)
    return True


def plot_learning_curves(rows, cpu, path):
    """Bits/dim after every training slice: one panel per dataset, one line per model."""
    curves = {}
    for r in rows:
        if r["benchmark"] == "images_quality" and r.get("series") == "learning curve":
            dataset, _, model = r["case"].partition(": ")
            panel = curves.setdefault(dataset, {"metric": r["metric"], "models": {}})
            panel["models"].setdefault(model, []).append((r["step"], r["value"]))
    if not curves:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 4.2), squeeze=False)
    for ax, (dataset, panel) in zip(axes[0], curves.items()):
        values = [v for points in panel["models"].values() for _, v in points]
        for model, points in panel["models"].items():
            xs, ys = zip(*sorted(points))
            ax.plot(xs, ys, marker="o", markersize=3, label=model.split(" (")[0])
        if max(values) / max(min(values), 1e-12) > 10:
            ax.set_yscale("log")
        ax.set_title(dataset, fontsize=8)
        ax.set_xlabel("training steps (batch 32)")
        ax.set_ylabel(panel["metric"].replace(" after a slice", ""), fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _title(fig, "Image models' learning curves at an equal wall-clock budget", cpu)
    fig.subplots_adjust(top=0.8)  # room for the panel titles under the figure's
    _save(fig, path)
    return True


def plot_seq2seq(rows, cpu, path):
    """Left: ms per greedy decode against the source length (linear axes, the target length
    on a second axis); right: tokens/s per model and runtime at each batch (log)."""
    lines, speed, params = {}, {}, {}
    for r in rows:
        if r["benchmark"] != "seq2seq":
            continue
        if r["metric"] == "parameters":
            params[r["model"]] = r["value"]
        elif r["metric"] == "ms per decode":
            lines.setdefault((r["model"], r["runtime"]), []).append(
                (r["source_length"], r["target_length"], r["value"]))
        elif r["unit"] == "tokens/s":
            speed[(f"{r['model']}\n{r['runtime']}", f"batch {r['batch']}")] = r["value"]
    if not lines:
        return False
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    for (model, runtime), points in sorted(lines.items()):
        xs, _, ys = zip(*sorted(points))
        left.plot(xs, ys, marker="o", color=f"C{MODEL_COLOURS.get(model, 2)}",
                  linestyle="-" if runtime == "TFLite" else "--", label=f"{model}, {runtime}")
    ticks = sorted({(n, t) for points in lines.values() for n, t, _ in points})
    left.set_xticks([n for n, _ in ticks], [f"{n}\nT={t}" for n, t in ticks], fontsize=6)
    left.set_xlabel("source length |s| (target length T = floor(a|s|) + b)")
    left.set_ylabel("ms per greedy decode, batch 1")
    left.set_ylim(bottom=0)
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    left.set_title("decode time vs source length", fontsize=9)
    if speed:
        groups = list(dict.fromkeys(group for group, _ in speed))
        series = sorted({name for _, name in speed}, key=lambda b: int(b.split()[-1]))
        _bars(right, groups, series, speed, "tokens/s, all rows (log)")
        right.set_title("greedy generate throughput, source of max length", fontsize=9)
    sizes = ", ".join(f"{name} {value / 1e3:,.0f}k" for name, value in params.items())
    _title(fig, f"ByteNet vs encoder-decoder Transformer (weights: {sizes}; untrained, the "
                "exported generate, 1 thread)", cpu)
    _save(fig, path)
    return True


MODEL_COLOURS = {"ByteNet": 0, "EncoderDecoderTransformer": 1}


# file -> (the benchmarks it is drawn from, the function drawing it)
PLOTS = {"runtimes.png": (("runtimes",), plot_runtimes),
         "wavenet_length.png": (("wavenet",), plot_wavenet_length),
         "cached_vs_naive.png": (("wavenet", "transformer", "images_sampling"),
                                 plot_cached_vs_naive),
         "image_learning_curves.png": (("images_quality",), plot_learning_curves),
         "seq2seq.png": (("seq2seq",), plot_seq2seq)}


def write_plots(rows, cpu, out_dir):
    """Write every plot whose benchmarks are among the rows (and give it data) into
    `out_dir`; -> the paths written."""
    ran = {r["benchmark"] for r in rows}
    written = []
    for name, (benchmarks, plot) in PLOTS.items():
        path = os.path.join(out_dir, name)
        if ran.intersection(benchmarks) and plot(rows, cpu, path):
            written.append(path)
    return written
