"""`keras-ar component run NAME --config CONFIG.yaml --pipeline-root DIR`: one component alone
(inputs: the latest successful outputs of its upstream components in the same pipeline root),
recorded in ML Metadata like a pipeline run, so Airflow/Argo/Kubeflow can orchestrate the
steps one by one."""

import os
import sys

from pipelines.components.specs import BY_NAME


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="Run one component.")
    run.add_argument("name", choices=list(BY_NAME), help="component name")
    run.add_argument("--config", required=True, help="pipeline YAML")
    from pipelines.pipeline_cli import add_common

    add_common(run)
    sub.add_parser("list", help="List the components, their inputs, outputs and parameters.")


def run(args):
    from pipelines import config as config_lib
    from pipelines import runner
    from pipelines.pipeline_cli import load_config, summary

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.action == "list":
        for spec in BY_NAME.values():
            inputs = {name: f"{i.type} <- {i.producer}.{i.output}"
                      for name, i in spec.inputs.items()}
            print(f"{spec.name}: inputs {inputs} outputs {spec.outputs} "
                  f"executor {spec.executor_name}")
        return 0
    args.config = args.config
    try:
        config, root = load_config(args)
        report = runner.run(config, root, components=[args.name])
    except (config_lib.ConfigError, runner.PipelineError) as err:
        print(f"keras-ar component: {err}", file=sys.stderr)
        saved = getattr(err, "traceback_path", None)
        if getattr(args, "debug", False) and saved:
            print(open(saved).read(), file=sys.stderr)
        return 2
    summary(report)
    return 0
