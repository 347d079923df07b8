"""Export a model to several targets under one directory, then run the parity gate.

    <out>/savedmodel/   export_saved_model
    <out>/tflite/       export_tflite
    <out>/onnx/         export_onnx
    <out>/generation_spec.json   the SavedModel's manifest (also beside each artifact)
    <out>/parity.txt    the gate's table

The whole directory is written atomically: if a conversion or the gate fails, `<out>` is
left as it was (absent, or the previous export when overwriting).
"""

import pathlib
import shutil
import time

from export.atomic import atomic_directory, check_target

TARGETS = ("savedmodel", "tflite", "onnx")


def parse_targets(targets):
    """"a,b" or a sequence -> tuple of known targets (ValueError names the unknown ones)."""
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    targets = tuple(targets)
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown or not targets:
        raise ValueError(f"Unknown export targets {unknown or targets!r}; choose among "
                         f"{list(TARGETS)} (comma-separated).")
    return tuple(t for t in TARGETS if t in targets)  # savedmodel first: tflite reuses it


def export_all(model, out, targets=TARGETS, overwrite=False, quantize=(), stop_token=None,
               training=None, verify_parity=True, num_steps=64, eval_data=None,
               max_nll_increase=None, onnx_signatures=None, tflite_batch_size=None):
    """Export `model` to `targets` under `out` and gate on parity; return a report dict
    {"targets": {target: {"seconds": s, "bytes": n}}, "parity": rows}; with `quantize`,
    `eval_data`/`max_nll_increase` go to `export_tflite` and
    report["quantization"] holds its figures. `onnx_signatures`: convert only these to ONNX
    (default all; the gate checks what each target holds, as its manifest lists).
    `tflite_batch_size`: export TFLite with this fixed batch instead of a dynamic one (static
    shapes in the loop bodies: the fastest on-device `generate`, docs/benchmarks.md).

    TF-dependent modules are imported here, so `from export import export_all` (and
    `export.manifest`) stay importable without TensorFlow."""
    from export import manifest as manifest_lib
    from export import onnx as onnx_export
    from export import saved_model, tflite, verify

    targets = parse_targets(targets)
    out = pathlib.Path(out)
    check_target(out, overwrite)
    report = {"targets": {}, "parity": []}
    common = dict(stop_token=stop_token, training=training)
    with atomic_directory(out, overwrite) as tmp:
        for target in targets:
            start = time.perf_counter()
            if target == "savedmodel":
                manifest = saved_model.export_saved_model(model, tmp / target, **common)
                manifest_lib.write_manifest(manifest, tmp)
            elif target == "tflite":
                saved = tmp / "savedmodel" if "savedmodel" in targets[:targets.index(
                    target)] else None
                bound = {} if max_nll_increase is None else {
                    "max_nll_increase": max_nll_increase}
                manifest = tflite.export_tflite(model, tmp / target, quantize=quantize,
                                                saved_model_dir=saved, eval_data=eval_data,
                                                batch_size=tflite_batch_size, **bound,
                                                **common)
                report["quantization"] = manifest["quantization"]
            else:
                only = {} if onnx_signatures is None else {"signatures": onnx_signatures}
                onnx_export.export_onnx(model, tmp / target,
                                        check_atol=None if verify_parity else 1e-5,
                                        **only, **common)
            report["targets"][target] = {"seconds": round(time.perf_counter() - start, 2),
                                         "bytes": _size(tmp / target)}
        if verify_parity:
            rows = verify.verify(model, tmp, targets, num_steps=num_steps)
            report["parity"] = rows
            (tmp / "parity.txt").write_text(verify.table(rows) + "\n")
    return report


def _size(path):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


def remove(path):
    shutil.rmtree(path, ignore_errors=True)
