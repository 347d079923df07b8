"""Export a model to several targets under one directory, then run the parity gate.

    <out>/savedmodel/   export_saved_model
    <out>/tflite/       export_tflite
    <out>/onnx/         export_onnx
    <out>/generation_spec.json   the SavedModel's manifest (also beside each artifact)
    <out>/parity.txt    the gate's table

The whole directory is written atomically: if a conversion or the gate fails, `<out>` is
left as it was (absent, or the previous export when overwriting). A failed conversion raises
`ExportTargetError` naming the target; a failed gate raises `verify.ParityError`, whose
`failed_targets` names the targets that differ.

With `allow_missing_targets=True` a target other than the SavedModel that fails to convert
or differs from Keras is left out instead (its folder removed, its gate rows dropped) and
named with its error in `report["failures"]`; the other targets' conversions are kept, so
nothing is converted twice.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from export.atomic import atomic_directory, check_target

if TYPE_CHECKING:
    import numpy as np

    from keras_ar.models import AutoregressiveModel

TARGETS = ("savedmodel", "tflite", "onnx")


class ExportTargetError(RuntimeError):
    """One target failed to convert; `target` names it, the cause is chained."""

    def __init__(self, target, cause):
        super().__init__(f"Exporting the {target} target failed: "
                         f"{type(cause).__name__}: {cause}")
        self.target = target


def parse_targets(targets: str | Sequence[str]) -> tuple[str, ...]:
    """"a,b" or a sequence -> tuple of known targets (ValueError names the unknown ones)."""
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    targets = tuple(targets)
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown or not targets:
        raise ValueError(f"Unknown export targets {unknown or targets!r}; choose among "
                         f"{list(TARGETS)} (comma-separated).")
    return tuple(t for t in TARGETS if t in targets)  # savedmodel first: tflite reuses it


def export_all(model: AutoregressiveModel, out: str | os.PathLike,
               targets: str | Sequence[str] = TARGETS, overwrite: bool = False,
               quantize: Sequence[str] = (), stop_token: int | None = None,
               training: dict[str, Any] | None = None, verify_parity: bool = True,
               num_steps: int = 64,
               eval_data: np.ndarray | dict[str, np.ndarray] | None = None,
               max_nll_increase: float | None = None,
               onnx_signatures: Sequence[str] | None = None,
               tflite_batch_size: int | None = None,
               allow_missing_targets: bool = False) -> dict[str, Any]:
    """Export `model` to `targets` under `out` and gate on parity; return a report dict
    {"targets": {target: {"seconds": s, "bytes": n}}, "parity": rows}; with `quantize`,
    `eval_data`/`max_nll_increase` go to `export_tflite` and
    report["quantization"] holds its figures. `onnx_signatures`: convert only these to ONNX
    (default all; the gate checks what each target holds, as its manifest lists).
    `tflite_batch_size`: export TFLite with this fixed batch instead of a dynamic one (static
    shapes in the loop bodies: the fastest on-device `generate`, docs/benchmarks.md).
    `allow_missing_targets`: leave out (and name in report["failures"]) a target other than
    the SavedModel that fails to convert or fails the gate, keeping the others (when every
    target fails, the export fails).

    TF-dependent modules are imported here, so `from export import export_all` (and
    `export.manifest`) stay importable without TensorFlow."""
    from export import verify

    targets = parse_targets(targets)
    out = pathlib.Path(out)
    check_target(out, overwrite)
    report = {"targets": {}, "parity": [], "failures": {}}
    options = dict(stop_token=stop_token, training=training, quantize=quantize,
                   eval_data=eval_data, max_nll_increase=max_nll_increase,
                   onnx_signatures=onnx_signatures, tflite_batch_size=tflite_batch_size,
                   verify_parity=verify_parity)
    progress = _progress(len(targets) + bool(verify_parity))
    with atomic_directory(out, overwrite) as tmp:
        for target in targets:
            start = time.perf_counter()
            _advance(progress, f"converting {target}")
            try:
                _export_target(model, tmp, target, targets, report, options)
            except Exception as err:
                failure = ExportTargetError(target, err)
                last = target == targets[-1] and not report["targets"]  # none would be left
                if not allow_missing_targets or target == "savedmodel" or last:
                    raise failure from err
                _leave_out(tmp, report, {target: str(failure)})
                continue
            report["targets"][target] = {"seconds": round(time.perf_counter() - start, 2),
                                         "bytes": _size(tmp / target)}
        if verify_parity:
            _advance(progress, f"parity gate ({num_steps} steps)")
            report["parity"] = _gate(model, tmp, report, num_steps, allow_missing_targets)
            (tmp / "parity.txt").write_text(verify.table(report["parity"]) + "\n")
    if progress is not None:
        progress.update(1)
        progress.close()
    return report


def _gate(model, tmp, report, num_steps, allow_missing_targets):
    """The gate's rows over the targets converted so far; with `allow_missing_targets` a
    target other than the SavedModel that fails is left out (its rows with it)."""
    from export import verify

    try:
        return verify.verify(model, tmp, list(report["targets"]), num_steps=num_steps)
    except verify.ParityError as err:
        failed = err.failed_targets
        if (not allow_missing_targets or not failed or "savedmodel" in failed
                or set(failed) >= set(report["targets"])):  # none would be left
            raise
        _leave_out(tmp, report, {target: "Export parity gate failed (the target differs "
                                 "from Keras):\n" + verify.table(
                                     [r for r in err.rows if r[0] == target and not r[-1]])
                                 for target in failed})
        return [row for row in err.rows if row[0] not in failed]


def _leave_out(tmp, report, failures):
    """Drop the failed targets' folders and figures; name each with its error."""
    for target, why in failures.items():
        shutil.rmtree(tmp / target, ignore_errors=True)
        report["targets"].pop(target, None)
        report["failures"][target] = why
    if "tflite" in failures:
        report.pop("quantization", None)


def _progress(total):
    """A tqdm bar over the export's stages on a TTY (stderr), else None."""
    import sys

    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="stage", desc="export", leave=False)


def _advance(progress, stage):
    if progress is None:
        return
    if progress.desc.startswith("export:"):  # the previous stage is done
        progress.update(1)
    progress.set_description(f"export: {stage}")


def _export_target(model, tmp, target, targets, report, options):
    """Convert one target into `tmp / target` (tflite reuses an earlier SavedModel)."""
    from export import manifest as manifest_lib
    from export import onnx as onnx_export
    from export import saved_model, tflite

    common = dict(stop_token=options["stop_token"], training=options["training"])
    if target == "savedmodel":
        manifest = saved_model.export_saved_model(model, tmp / target, **common)
        manifest_lib.write_manifest(manifest, tmp)
    elif target == "tflite":
        saved = tmp / "savedmodel" if "savedmodel" in targets[:targets.index(target)] else None
        bound = ({} if options["max_nll_increase"] is None
                 else {"max_nll_increase": options["max_nll_increase"]})
        manifest = tflite.export_tflite(
            model, tmp / target, quantize=options["quantize"], saved_model_dir=saved,
            eval_data=options["eval_data"], batch_size=options["tflite_batch_size"], **bound,
            **common)
        report["quantization"] = manifest["quantization"]
    else:
        signatures = options["onnx_signatures"]
        only = {} if signatures is None else {"signatures": signatures}
        onnx_export.export_onnx(model, tmp / target,
                                check_atol=None if options["verify_parity"] else 1e-5,
                                **only, **common)


def _size(path):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


def remove(path):
    shutil.rmtree(path, ignore_errors=True)
