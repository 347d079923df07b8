"""Pusher executor: publish a blessed SavedModel into the TF Serving base path.

Blessed (Evaluator wrote BLESSED) -> a new integer version, written aside and renamed
(`repository.push`); the same exported model is never pushed twice (its existing version is
reused). Each version carries TF Serving's warm-up requests
(`assets.extra/tf_serving_warmup_requests`: one Predict per signature, named
`push.model_name`), and `models.config` beside the base path lists the model under
`push.model_name` (other models' entries kept), so either server starts with

    keras-ar serve --model_config_file=<base path>/../models.config

Not blessed -> nothing in the base path changes; the PushedModel artifact records
`pushed=0` and the reasons.
"""

import pathlib

from export import repository as export_repository
from pipelines import config as config_lib
from pipelines.components import repository
from pipelines.components.base import read_json, write_json
from pipelines.components.evaluator import is_blessed
from pipelines.components.exporter import saved_model_dir


def execute(inputs, outputs, params, context):
    push = config_lib.PushConfig(**params["push"])
    out = outputs["pushed_model"]
    evaluation = read_json(inputs["evaluation"].path / "evaluation.json")
    if not is_blessed(inputs["evaluation"].uri):
        write_json(out.path / "push.json", {"pushed": False, "reasons": evaluation["reasons"]})
        out.properties.update(pushed=0)
        context.log("Pusher: model not blessed; nothing pushed ("
                    + "; ".join(evaluation["reasons"]) + ")")
        return
    if not push.serving_base_path:
        raise ValueError("push.serving_base_path is empty: set it in the config or pass "
                         "--serving-base-path.")
    model_fp = evaluation["model_fingerprint"]
    version = repository.find_version(push.serving_base_path, model_fp)
    if version is None:
        version = repository.push(
            saved_model_dir(inputs["exported_model"].uri), push.serving_base_path,
            {"model_fingerprint": model_fp, "run_id": context.run_id,
             "source": inputs["exported_model"].uri},
            prepare=lambda folder: _warmup(inputs["model"].uri, folder, push.model_name))
    base = pathlib.Path(push.serving_base_path).resolve()
    target = base / str(version)
    config_file = base.parent / "models.config"
    export_repository.add_model_to_config(config_file, push.model_name, base)
    write_json(out.path / "push.json", {"pushed": True, "version": version,
                                        "uri": str(target), "model_name": push.model_name,
                                        "model_config_file": str(config_file)})
    out.properties.update(pushed=1, version=version, pushed_uri=str(target))
    context.log(f"Pusher: {push.model_name} version {version} -> {target} ({config_file})")


def _warmup(model_uri, folder, model_name):
    """TF Serving's warm-up file in a version folder, for the signatures it holds."""
    from export import manifest as manifest_lib
    from pipelines.components.trainer import load_model

    manifest = manifest_lib.read_manifest(folder)
    export_repository.write_warmup(load_model(model_uri), manifest,
                                   folder / "assets.extra" / export_repository.WARMUP_FILE,
                                   model_name)
