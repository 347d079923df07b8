"""`keras-ar pipeline run CONFIG.yaml [--pipeline-root DIR] [--serving-base-path P]` and
`keras-ar pipeline show [--pipeline-root DIR] [--config CONFIG.yaml]`."""

import os
import sys


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="Run a pipeline config end to end (cached components "
                                     "are skipped).")
    run.add_argument("config", help="pipeline YAML, e.g. pipelines/configs/speech_wavenet.yaml")
    add_common(run)
    show = sub.add_parser("show", help="List runs, executions and the pushed model's lineage.")
    show.add_argument("--pipeline-root", default=None,
                      help="default runs/<name> with --config, else runs/speech")
    show.add_argument("--config", default=None,
                      help="pipeline YAML whose `metadata` section names the store (SQLite or "
                           "MySQL); default: <pipeline-root>/metadata.sqlite")
    show.add_argument("--set", action="append", default=[], metavar="KEY=YAML",
                      help="override a config field, e.g. --set metadata.mysql.port=3307")
    show.add_argument("--runs", type=int, default=5, help="how many recent runs to list")


def add_common(parser):
    parser.add_argument("--debug", action="store_true",
                        help="print a failed component's full traceback (it is always saved "
                             "under <pipeline-root>/errors/)")
    parser.add_argument("--pipeline-root", default=None,
                        help="artifacts and metadata.sqlite (default runs/<name>)")
    parser.add_argument("--serving-base-path", default=None,
                        help="TF Serving model base path (overrides push.serving_base_path)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=YAML",
                        help="override a config field, e.g. --set training.steps=50")


def load_config(args):
    import yaml

    from pipelines import config as config_lib

    overrides = {}
    for item in args.set:
        if "=" not in item:
            raise config_lib.ConfigError(f"--set needs KEY=VALUE; received {item!r}.")
        key, value = item.split("=", 1)
        try:
            overrides[key] = config_lib.safe_load(value)
        except yaml.YAMLError as error:
            raise config_lib.ConfigError(f"--set {key}: the value {value!r} is not YAML "
                                         f"({error}).") from None
    if args.serving_base_path:
        overrides["push.serving_base_path"] = args.serving_base_path
    config = config_lib.load(args.config, overrides)
    root = args.pipeline_root or os.path.join("runs", config.name)
    return config, root


def run(args):
    from pipelines import config as config_lib
    from pipelines import runner

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.action == "show":
        return _show(args)
    try:
        config, root = load_config(args)
        report = runner.run(config, root)
    except (config_lib.ConfigError, runner.PipelineError) as err:
        print(f"keras-ar pipeline: {err}", file=sys.stderr)
        saved = getattr(err, "traceback_path", None)
        if args.debug and saved:
            print(open(saved).read(), file=sys.stderr)
        return 2
    except OSError as err:  # the pipeline root itself: read-only, full disk, a file in the way
        if args.debug:
            raise
        print(f"keras-ar pipeline: cannot use the pipeline root: {err.strerror or err} "
              f"({err.filename or args.pipeline_root}). Choose a writable --pipeline-root with "
              "free space (--debug shows the traceback).", file=sys.stderr)
        return 2
    summary(report)
    return 0


def _show(args):
    from pipelines import config as config_lib
    from pipelines import show

    if not args.config:
        return show.show(args.pipeline_root or "runs/speech", args.runs)
    args.serving_base_path = None
    try:
        config, root = load_config(args)
        return show.show(root, args.runs, metadata=config.metadata)
    except config_lib.ConfigError as err:
        print(f"keras-ar pipeline: {err}", file=sys.stderr)
        return 2


def summary(report):
    for name, state, outputs in report:
        uris = ", ".join(f"{k}={a.uri}" for k, a in outputs.items())
        print(f"{name:14s} {state:9s} {uris}")
