"""Reporter executor: `report.md` and its PNGs, the run at a glance.

Sections: training (train and validation bits per position per epoch, `loss_curves.png`),
evaluation (the gate's figures and verdict), export parity (every checked output per target
with its largest difference), samples. Audio: each sample's speech-likeness (median spectral
flatness of voiced-energy frames and the voiced fraction, `audio_metrics`) beside the same
measure of the test speech, and per speaker one `spectrogram_<speaker>.png` of the generated
sample (first target) left of real test speech of that speaker. Images: each target's grid
is copied in, and class-conditional samples are scored by how often their nearest
train-split class centroid is their class (`image_metrics`, beside test images and chance).
Tokens: the generated texts are quoted; pairs: each target's decoded words, one per line.
The eval figures and every sample also go to TensorBoard (`report_tensorboard`), beside the
Trainer's curves.
"""

import json
import shutil

import numpy as np

from pipelines.components import (
    audio_metrics,
    image_metrics,
    report_images,
    report_tensorboard,
    trainer,
)


def execute(inputs, outputs, params, context):
    out = outputs["report"].path
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Run report: {params['name']}", ""]
    summary = _json(inputs["model"].path / "training.json")
    evaluation = _json(inputs["evaluation"].path / "evaluation.json")
    lines += _training(summary, out)
    lines += _evaluation(evaluation)
    lines += _parity(_json(inputs["exported_model"].path / "export_report.json"))
    params = dict(params, speakers=trainer.source_metadata(inputs["examples"].path).get(
        "speakers"))
    samples = inputs["samples"].path
    report = _json(samples / "samples.json")
    rate = int(params.get("sample_rate") or 0)
    real = (_real_speech(inputs["examples"].path / "test", rate)
            if params["modality"] == "audio" else {})
    if params["modality"] == "audio":
        lines += _audio(report, samples, real, params, out)
    elif params["modality"] == "images":
        lines += _images(report, samples, out)
        lines += _class_agreement(report, samples, inputs)
    else:
        lines += _texts(report, samples, params["modality"])
    report_tensorboard.write(out / "tensorboard", summary.get("steps"), evaluation, report,
                             samples, rate, real)
    lines += ["## TensorBoard", "", "Curves (train and validation bits), the eval figures and "
              "every sample (audio, images, text): `tensorboard --logdir "
              f"{context.pipeline_root}`.", ""]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    context.log(f"Reporter: {out / 'report.md'}")


def _json(path):
    return json.loads(path.read_text()) if path.is_file() else {}


def _training(summary, out):
    series = {name: summary.get(key, []) for name, key in
              (("train", "bits_per_position"), ("validation", "val_bits_per_position"))}
    series = {name: ys for name, ys in series.items() if ys}
    lines = ["## Training", "",
             f"{summary.get('steps')} steps in {summary.get('seconds')} s "
             f"({summary.get('steps_per_s')} steps/s, {summary.get('replicas')} replica(s)).", ""]
    if series:
        report_images.line_chart(series, "bits per position", "bits").save(
            out / "loss_curves.png")
        lines += ["| curve | first epoch | last epoch |", "| --- | --- | --- |"]
        lines += [f"| {name} | {ys[0]:.4f} | {ys[-1]:.4f} |" for name, ys in series.items()]
        lines += ["", "![train and validation bits per position](loss_curves.png)", ""]
    return lines


def _evaluation(result):
    verdict = "BLESSED" if result.get("blessed") else "NOT BLESSED"
    bits = result.get("bits_per_position")
    lines = ["## Evaluation", "", f"Test split: **{bits if bits is None else round(bits, 4)}** "
             f"bits/position -> **{verdict}**.", ""]
    if result.get("unigram_bits_per_position") is not None:
        lines.append(f"Marginal baseline (train-split value frequencies; real values: "
                     f"per-dimension Gaussian): "
                     f"{result['unigram_bits_per_position']:.4f} bits/position.")
    if result.get("baseline_bits_per_position") is not None:
        lines.append(f"Pushed version {result.get('baseline_version')}: "
                     f"{result['baseline_bits_per_position']:.4f} bits/position.")
    if result.get("phoneme_error_rate") is not None:
        lines.append(f"Pairs: {result['nll_nats_per_char']:.4f} nats per target character "
                     f"(the stop counted), greedy phoneme error rate "
                     f"{result['phoneme_error_rate']:.4f} on {result['words']} test words.")
    lines += [f"- {reason}" for reason in result.get("reasons", [])]
    return lines + [""]


def _parity(export):
    rows = export.get("parity", [])
    lines = ["## Export parity", ""]
    if not rows:
        return lines + ["No parity checks recorded.", ""]
    table = {}  # (target, signature) -> [outputs, largest difference, all within tolerance]
    for target, signature, _, difference, ok in rows:
        entry = table.setdefault((target, signature), [0, 0.0, True])
        entry[0] += 1
        entry[1] = max(entry[1], float(difference))
        entry[2] = entry[2] and bool(ok)
    targets = sorted({t for t, _ in table})
    lines += ["Largest absolute difference from the Keras model over each signature's outputs "
              "(same inputs and noise).", "",
              "| signature | " + " | ".join(targets) + " |",
              "| --- |" + " --- |" * len(targets)]
    for signature in dict.fromkeys(s for _, s in table):
        cells = [table.get((t, signature)) for t in targets]
        lines.append(f"| {signature} | " + " | ".join(
            "-" if c is None else f"{c[1]:.3g}" + ("" if c[2] else " **FAILED**")
            for c in cells) + " |")
    failures = export.get("failures", {})
    lines += [f"- {target} failed: {why}" for target, why in failures.items()]
    return lines + [""]


def _audio(report, samples, real, params, out):
    rate = int(params["sample_rate"])
    lines = ["## Samples", "", "Speech-likeness: median spectral flatness of voiced-energy "
             "frames (lower is more tonal; white noise ~0.56) and the fraction of frames that "
             "carry voice energy.", "", "| sample | flatness | voiced |", "| --- | --- | --- |"]
    generated = {}  # (label, speaker id) -> audio of the first target
    speakers = len(params.get("speakers") or []) or 1
    for target, entry in report.get("targets", {}).items():
        for name in entry.get("files", []):
            audio = audio_metrics.decode_wav((samples / name).read_bytes(), rate)
            value, voiced = audio_metrics.median_flatness(audio, rate)
            shown = "silent" if np.isnan(value) else f"{value:.3f}"
            lines.append(f"| {name} | {shown} | {voiced:.0%} |")
            row, label = _row(name, target)
            generated.setdefault((label, row % speakers), audio)
    if real:
        values = [audio_metrics.median_flatness(a, rate) for a in real.values()]
        lines.append(f"| test speech (median of {len(values)} speakers) | "
                     f"{np.nanmedian([v for v, _ in values]):.3f} | "
                     f"{np.median([f for _, f in values]):.0%} |")
    lines.append("")
    for (key, speaker), audio in generated.items():
        images = [report_images.spectrogram(audio, rate)]
        if speaker in real:
            images.append(report_images.spectrogram(real[speaker][:audio.size], rate))
        file = f"spectrogram_{key}.png"
        report_images.side_by_side(images, height=200).save(out / file)
        lines += [f"Speaker {key}: generated (left)" + (", test speech (right)"
                                                        if len(images) > 1 else ""),
                  "", f"![{key}]({file})", ""]
    return lines


def _row(name, target):
    """`<target>_<row>[_<speaker>].wav` -> (row, label: the speaker, or the row)."""
    stem = name[len(target) + 1:].rsplit(".", 1)[0]
    row, _, label = stem.partition("_")
    return int(row), label or row


def _real_speech(test_dir, rate, seconds=2.0):
    """{speaker id: float audio} from the test split's first clips of each speaker."""
    import glob

    import tensorflow as tf

    from pipelines.data import records

    clips = {}
    for file in sorted(glob.glob(f"{test_dir}/*.tfrecord*")):
        for data in tf.data.TFRecordDataset(file):
            record = records.deserialize(data.numpy())
            speaker = int(record.get("speaker", 0))
            have = clips.get(speaker, np.zeros(0))
            if have.size < seconds * rate:
                clips[speaker] = np.concatenate([have, audio_metrics.decode_wav(
                    record["audio"], rate)])
    return clips


def _images(report, samples, out):
    lines = ["## Samples", ""]
    for target in [*report.get("targets", {}), *(["reference"] if report.get("references")
                                                 else [])]:
        grid = samples / f"{target}_grid.png"
        if grid.is_file():
            shutil.copy(grid, out / grid.name)
            lines += [f"{target}:", "", f"![{target}]({grid.name})", ""]
    return lines


def _class_agreement(report, samples, inputs):
    """How often each target's class-conditional samples are nearest to their class's
    train-split centroid, beside the test images' figure and chance (`image_metrics`)."""
    spec = _json(inputs["exported_model"].path / "export" / "generation_spec.json")
    names = spec.get("decoding", {}).get("class_names")
    if not names:
        return []
    levels = int(spec.get("model", {}).get("config", {}).get("num_levels") or 256)
    examples = inputs["examples"].path
    means = image_metrics.centroids(*image_metrics.read_split(examples, "train"), levels)
    test = image_metrics.class_agreement(*image_metrics.read_split(examples, "test"), means,
                                         levels)
    lines = ["Class agreement: the fraction of samples whose nearest train-split class "
             "centroid is the class they were drawn for (`image_metrics`).", "",
             "| samples | agreement |", "| --- | --- |"]
    for target, entry in report.get("targets", {}).items():
        files = [f for f in entry.get("files", []) if not f.endswith("_grid.png")]
        pairs = [(f, c) for f, c in zip(files, image_metrics.sample_classes(files, names))
                 if c is not None]
        if pairs:
            images = np.stack([image_metrics.read_png(samples / f) for f, _ in pairs])
            images = np.round(images / 255.0 * (levels - 1))  # PNGs hold 0..255
            value = image_metrics.class_agreement(images, [c for _, c in pairs], means,
                                                  levels)
            lines.append(f"| {target} ({len(pairs)}) | {value:.3f} |")
    lines += [f"| test images | {test:.3f} |", f"| chance | {1 / len(means):.3f} |", ""]
    return lines


def _texts(report, samples, modality=""):
    lines = ["## Samples", ""]
    for entry in report.get("targets", {}).values():
        for name in entry.get("files", []):
            path = samples / name
            if path.suffix == ".txt" and modality == "pairs":  # a line per word
                lines += [f"- `{name}`:", ""] + [
                    f"    {line}" for line in path.read_text(errors="replace").splitlines()]
                lines.append("")
            elif path.suffix == ".txt":
                text = path.read_text(errors="replace").strip().replace("\n", " ")
                lines.append(f"- `{name}`: {text[:300]}")
            else:
                lines.append(f"- `{name}`")
    return lines + [""]
