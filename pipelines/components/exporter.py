"""Exporter executor: the trained (EMA) model -> SavedModel, TFLite, ONNX via `export/`.

The seam is `export.export_all(model, out, targets, verify_parity=...)` (one directory per
target plus the manifest and the parity table), written atomically. The parity gate is a
gate: a target that fails to convert or differs from Keras fails the Exporter, and so the
run, before anything is pushed. With `export.allow_missing_targets: true` exactly the
targets that failed are left out (`export_all(allow_missing_targets=True)`: the others'
conversions are kept), each recorded with its error in `export_report.json`; the SavedModel
is always required (the Pusher and SampleGen need it).
"""

from pipelines import config as config_lib
from pipelines.components.base import fingerprint, write_json


class ExportGateError(RuntimeError):
    """A target failed conversion or the parity gate and missing targets are not allowed."""


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
    try:
        report = _export_all(model, out / "export", targets, export, training)
    except _gate_errors() as err:
        failed = _failed_targets(err)
        raise ExportGateError(
            f"{err}\n\nThe Exporter stops the run: {', '.join(failed) or 'a target'} "
            "failed. Fix the model or the converter; or drop the target from "
            "export.targets; or set export.allow_missing_targets: true to push "
            "without it.") from err
    for target, why in report["failures"].items():
        report["failures"][target] = why.strip()[-2000:]
        context.log(f"Exporter: {target} failed ({why[:200]}); continuing without it "
                    "(export.allow_missing_targets)")
    targets = [t for t in targets if t in report["targets"]]
    report["model_fingerprint"] = fingerprint(inputs["model"].path / "model.keras")
    write_json(out / "export_report.json", report)
    outputs["exported_model"].properties.update(targets=",".join(targets))
    timings = ", ".join(f"{t} {v['seconds']} s" for t, v in report["targets"].items())
    context.log(f"Exporter: {', '.join(targets)} -> {out / 'export'} ({timings})")


def _export_all(model, out, targets, export, training):
    from export import export_all

    # a seq2seq model's target stop id (pairs data) ends `generate` rows in the artifacts and
    # is the manifest's decoding.stop_token (`keras-ar generate`'s default --stop-token)
    stop = getattr(model, "metadata", {}).get("target_stop_id")
    return export_all(model, out, targets=targets, verify_parity=export.verify_parity,
                      num_steps=export.parity_steps, training=training,
                      allow_missing_targets=export.allow_missing_targets,
                      stop_token=None if stop is None else int(stop))


def _gate_errors():
    from export.export_all import ExportTargetError
    from export.verify import ParityError

    return (ExportTargetError, ParityError)


def _failed_targets(err):
    """The targets an export error names: one failed conversion, or the gate's failures."""
    target = getattr(err, "target", None)
    return [target] if target else list(getattr(err, "failed_targets", []))


def saved_model_dir(exported_dir):
    import pathlib

    return pathlib.Path(exported_dir) / "export" / "savedmodel"
