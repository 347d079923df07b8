"""The `keras-ar` command: a thin dispatcher; each area owns its subcommands.

Subcommand modules are imported lazily, so `keras-ar serve` never imports Keras models and
`keras-ar export` never imports the pipelines.
"""

import argparse
import importlib
import os
import sys

# subcommand -> module exposing `add_arguments(parser)` and `run(args) -> int`.
COMMANDS = {
    "pipeline": ("pipelines.pipeline_cli", "Run pipelines and inspect their runs."),
    "component": ("pipelines.component_cli", "Run one pipeline component alone."),
    "export": ("export.cli", "Export a checkpoint to SavedModel, TFLite and ONNX."),
    "serve": ("serving.server_cli", "Serve models over TF Serving's REST and gRPC APIs."),
    "generate": ("serving.generate_cli", "Generate samples from an exported model."),
    "plot": ("serving.plot_cli", "Draw generated and real samples (spectrograms, sequences)."),
    "bench": ("bench.runner", "Run the benchmarks; write JSON and a markdown table."),
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    # TensorFlow's C++ info lines and Beam's info logs off unless asked for
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import logging

    verbose = bool(os.environ.get("KERAS_AR_BEAM_LOGS"))
    logging.getLogger("apache_beam").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # a failing element is logged there with its whole traceback before Beam re-raises it;
    # the runner saves that traceback under <root>/errors/ and prints one line instead
    logging.getLogger("apache_beam.runners.common").setLevel(
        logging.DEBUG if verbose else logging.CRITICAL)
    parser = argparse.ArgumentParser(prog="keras-ar", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=sorted(COMMANDS), help="subcommand")
    if argv and argv[0] == "--version":
        print(f"keras-ar {_version()}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        for name, (_, text) in sorted(COMMANDS.items()):
            print(f"  {name:10s} {text}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        parser.error(f"unknown command {command!r}; choose from {sorted(COMMANDS)}")
    module = importlib.import_module(COMMANDS[command][0])
    sub = argparse.ArgumentParser(prog=f"keras-ar {command}",
                                  description=COMMANDS[command][1])
    module.add_arguments(sub)
    return int(module.run(sub.parse_args(rest)) or 0)


def _version():
    from importlib import metadata

    try:
        return metadata.version("keras-ar")
    except metadata.PackageNotFoundError:
        return "unknown (not installed; pip install -e .)"


if __name__ == "__main__":
    sys.exit(main())
