"""Exporter executor: the trained (EMA) model -> SavedModel, TFLite, ONNX via `export/`.

The seam is `export.export_all.export_all(model, out, targets, verify_parity=...)` (one
directory per target plus the manifest and the parity table). If a target fails to convert,
the error is recorded in `export_report.json` and the export is redone without it (the
SavedModel is required); the samples step then covers the targets that exist.
"""

import traceback

from pipelines import config as config_lib
from pipelines.components.base import fingerprint, write_json


def execute(inputs, outputs, params, context):
    from pipelines.components.trainer import load_model

    export = config_lib.ExportConfig(**params["export"])
    model = load_model(inputs["model"].uri)
    out = outputs["exported_model"].path
    training = {"data_fingerprint": inputs["model"].properties.get("fingerprint", ""),
                "metrics": {"steps": inputs["model"].properties.get("steps", 0)}}
    targets = list(export.targets)
    if "savedmodel" not in targets:
        targets.insert(0, "savedmodel")  # Pusher and the samples need it
    failures = {}
    while True:
        try:
            report = _export_all()(
                model, out / "export", targets=targets, verify_parity=export.verify_parity,
                num_steps=export.parity_steps, training=training)
            break
        except Exception as err:  # noqa: BLE001 - find the failing target, retry without it
            failed = _failing_target(err, targets)
            if failed is None or failed == "savedmodel":
                raise
            failures[failed] = "".join(traceback.format_exception_only(err)).strip()[-2000:]
            context.log(f"Exporter: {failed} export failed ({failures[failed][:200]}); "
                        "continuing without it")
            targets.remove(failed)
    report["failures"] = failures
    report["model_fingerprint"] = fingerprint(inputs["model"].path / "model.keras")
    write_json(out / "export_report.json", report)
    outputs["exported_model"].properties.update(targets=",".join(targets))
    timings = ", ".join(f"{t} {v['seconds']} s" for t, v in report["targets"].items())
    context.log(f"Exporter: {', '.join(targets)} -> {out / 'export'} ({timings})")


def _export_all():
    """`export.export_all` (the package re-exports the function; older trees: the module)."""
    import export

    found = getattr(export, "export_all", None)
    if found is None or not callable(found):
        from export.export_all import export_all as found
    return found


def _failing_target(err, targets):
    text = "".join(traceback.format_exception(err)).lower()
    for target, marks in (("onnx", ("onnx", "tf2onnx")), ("tflite", ("tflite", "lite"))):
        if target in targets and any(m in text for m in marks):
            return target
    return None


def saved_model_dir(exported_dir):
    import pathlib

    return pathlib.Path(exported_dir) / "export" / "savedmodel"
