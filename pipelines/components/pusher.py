"""Pusher executor: publish a blessed SavedModel into the TF Serving base path.

Blessed (Evaluator wrote BLESSED) -> a new integer version, written aside and renamed
(`repository.push`); the same exported model is never pushed twice (its existing version is
reused). Not blessed -> nothing in the base path changes; the PushedModel artifact records
`pushed=0` and the reasons.
"""

import pathlib

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
             "source": inputs["exported_model"].uri})
    target = pathlib.Path(push.serving_base_path).resolve() / str(version)
    write_json(out.path / "push.json", {"pushed": True, "version": version,
                                        "uri": str(target)})
    out.properties.update(pushed=1, version=version, pushed_uri=str(target))
    context.log(f"Pusher: version {version} -> {target}")
