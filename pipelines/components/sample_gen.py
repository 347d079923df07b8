"""SampleGen executor: generated samples from every export target that exists.

For each of `<exported>/export/{savedmodel,tflite,onnx}`, `serving.generator.Generator` drives
the artifact through its backend (SavedModel: the in-graph `generate` signature; TFLite and
ONNX: the host chunk loop) on the same seeded noise, so the targets' samples match. A model
that takes class ids gets at least one row per speaker/class (row i: class i % num_classes;
`generation.num_samples` rows when that is more), and each file is named by its class
(`<target>_<i>_<name>` with the manifest's speaker or class names). A model that takes local
features (a vocoder) is given, per row, the features of a test-split clip of the row's
speaker (`sample_features`), and that clip is written beside the samples as
`reference_<i>[_<speaker>].wav`. A model conditioned on the Embedder's vectors is given,
per row, the embedding of a test image (row i: the first of class i % classes), and the
images are written as `reference_<i>.png` and `reference_grid.png`. Backends, audio
decoding and the WAV/PNG writers are `serving`'s, the ones `keras-ar generate` uses.

Audio -> `<target>_<i>[_<speaker>].wav` (16-bit PCM at data.sample_rate; mu-law or linear
levels as the manifest's decoding says); tokens ->
`<target>_<i>.txt` (the bytes before the row's first stop id; with `data.vocabulary`, the
row's words before the stop id joined with spaces, `<unk>` for the OOV id);
images -> `<target>_<i>[_<class>].png` and one `<target>_grid.png` of all rows (levels scaled to
0..255,
`serving.writers`).

Pairs (a word -> its pronunciation): the rows are the first `generation.num_samples` test
words (`sample_features.test_words`), decoded at `generation.temperature` (0: greedy) up to
the manifest's `target_stop_id`; each target writes `<target>.txt`, one line per word:
`word -> decoded (reference: reference)`.
"""

import json
import pathlib
import time

import numpy as np

from pipelines.components import sample_features
from pipelines.components.base import write_json
from pipelines.components.embedder import embedder_dir
from pipelines.data import vocabulary
from serving import writers
from serving.backend import make_backend
from serving.generator import Generator

TARGETS = ("savedmodel", "tflite", "onnx")


def execute(inputs, outputs, params, context):
    gen = params["generation"]
    export_dir = inputs["exported_model"].path / "export"
    manifest = json.loads((export_dir / "generation_spec.json").read_text())
    conditions = _conditions(manifest, gen["num_samples"])
    gen = dict(gen, num_samples=_rows(conditions, gen["num_samples"]))
    out = outputs["samples"].path
    out.mkdir(parents=True, exist_ok=True)
    report = {"targets": {}, "skipped": {}}
    embedder = embedder_dir(inputs)
    words = None
    if params["modality"] == "pairs":  # rows: test words; their pronunciations as references
        words = sample_features.test_words(params["data"], inputs["examples"].uri,
                                           gen["num_samples"])
        conditions = {"local_condition": words["local_condition"]}
        gen = dict(gen, num_samples=len(words["words"]),
                   stop_token=manifest["decoding"]["target_stop_id"])
    if embedder:  # rows: test images' embeddings; the images are the references
        shown = sample_features.test_embeddings(params["data"], inputs["examples"].uri,
                                                embedder, gen["num_samples"])
        conditions = {"global_condition": shown["global_condition"]}
        images = shown["x"].reshape(len(shown["x"]), -1, shown["x"].shape[-1])
        report["references"] = _write_images(images, "reference", out, manifest, {})
    if words is None and "local_condition" in manifest["conditions"]["whole"]:  # a vocoder
        clips = sample_features.test_clips(params["data"], inputs["examples"].uri,
                                           conditions, gen)
        conditions = dict(conditions, local_condition=clips["local_condition"])
        report["references"] = _write(clips["x"], "reference", out, params, manifest,
                                      clips["lengths"], conditions)
    for target in TARGETS:
        path = export_dir / target
        if not path.is_dir():
            report["skipped"][target] = "not exported"
            continue
        start = time.perf_counter()
        x, lengths = _generate(target, path, gen, conditions)
        files = (_write_pairs(x, target, out, manifest, words) if words is not None
                 else _write(x, target, out, params, manifest, lengths, conditions))
        report["targets"][target] = {"files": files,
                                     "seconds": round(time.perf_counter() - start, 2)}
        context.log(f"SampleGen: {target}: {len(x)} rows in {len(files)} file(s) in "
                    f"{report['targets'][target]['seconds']} s -> {out}")
    write_json(out / "samples.json", report)
    outputs["samples"].properties.update(targets=",".join(report["targets"]))


def _conditions(manifest, batch):
    """Class ids for the rows: every class at least once (ids models only)."""
    spec = manifest["conditions"]["whole"].get("global_condition")
    if spec is None:
        return {}
    config = manifest["model"]["config"]
    classes = int(config.get("num_global_classes") or 0)
    if not classes:  # vector conditions: not generated here
        return {}
    batch = max(int(batch), classes)
    return {"global_condition": (np.arange(batch) % classes).astype(np.int32)}


def _rows(conditions, num_samples):
    ids = conditions.get("global_condition")
    return int(num_samples) if ids is None else len(ids)


def _label(manifest, conditions, row):
    """`_<name>` of row's class (the manifest's speakers/class_names), or ''."""
    ids = conditions.get("global_condition")
    decoding = manifest.get("decoding", {})
    names = decoding.get("speakers") or decoding.get("class_names")
    if ids is None:
        return ""
    name = names[int(ids[row])] if names and int(ids[row]) < len(names) else f"class{ids[row]}"
    return "_" + writers.file_label(name)


def _generate(target, path, gen, conditions):
    out = Generator(make_backend(target, path)).generate(
        gen["num_steps"], batch_size=gen["num_samples"], seed=gen["seed"],
        conditions=conditions, temperature=gen["temperature"],
        stop_token=gen.get("stop_token"), use_graph_loop=target == "savedmodel")
    return np.asarray(out["x"]), out.get("lengths")


def _write(x, target, out, params, manifest, lengths=None, conditions=None):
    conditions = conditions or {}
    if params["modality"] == "images":
        return _write_images(x, target, out, manifest, conditions)
    files = []
    decoding = manifest.get("decoding", {})
    words = (vocabulary.load_vocabulary(params["vocabulary"]) if params.get("vocabulary")
             else None)
    for i, row in enumerate(np.asarray(x)):
        if params["modality"] == "audio":
            audio = writers.decode_audio(row, int(decoding.get("num_classes") or 256),
                                         bool(decoding.get("mu_law", True)))
            name = out / f"{target}_{i}{_label(manifest, conditions, i)}.wav"
            writers.write_wav(name, audio, int(params["sample_rate"]))
        elif params["modality"] == "sequences":  # frames [T, dim] up to the stop, as CSV
            frames = np.asarray(row, np.float32).reshape(row.shape[0], -1)
            name = out / f"{target}_{i}.csv"
            end = len(frames) if lengths is None else int(np.asarray(lengths)[i])
            np.savetxt(name, frames[:end], delimiter=",", fmt="%.6g")
        elif words is not None:  # word ids -> the tokens before the stop, spaced
            name = out / f"{target}_{i}.txt"
            pathlib.Path(name).write_text(vocabulary.detokenize(row.ravel(), words),
                                          encoding="utf-8")
        else:
            ids = [int(v) for v in row.ravel()]
            ids = ids[:next((j for j, v in enumerate(ids) if not 0 <= v < 256), len(ids))]
            name = out / f"{target}_{i}.txt"  # the bytes before the first stop id (256)
            pathlib.Path(name).write_bytes(bytes(ids))
        files.append(name.name)
    return files


def _write_pairs(x, target, out, manifest, words):
    """`<target>.txt`: per row `word -> decoded (reference: reference)`, decoded = the target
    characters before the stop id."""
    from pipelines.data import pairs

    alphabet = manifest["decoding"]["target_alphabet"]
    lines = [f"{word} -> {pairs.decode(row, alphabet)} (reference: {reference})"
             for word, reference, row in zip(words["words"], words["references"],
                                             np.asarray(x))]
    name = f"{target}.txt"
    (out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [name]


def _write_images(x, target, out, manifest, conditions):
    """Generated pixels `[B, H * W, C]` -> one PNG per row and a grid of all rows."""
    config = manifest["model"]["config"]
    shape = tuple(int(d) for d in config["image_shape"])
    images = writers.ids_to_images(x, shape, int(config.get("num_levels") or 256))
    files = []
    for i, image in enumerate(images):
        name = f"{target}_{i}{_label(manifest, conditions, i)}.png"
        writers.write_png(out / name, image)
        files.append(name)
    writers.write_png(out / f"{target}_grid.png", writers.image_grid(images))
    return files + [f"{target}_grid.png"]
