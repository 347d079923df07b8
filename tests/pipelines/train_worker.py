"""Run the Trainer executor in its own process: `python -m tests.pipelines.train_worker
ARGS.json` with {"params", "examples", "out", "root", "key"} (TF_CONFIG from the env)."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(path):
    from pipelines.components import specs
    from pipelines.components.base import Artifact, ExecutionContext

    args = json.loads(open(path).read())
    inputs = {"examples": Artifact("Examples", args["examples"]),
              "schema": Artifact("Schema", args["examples"])}
    outputs = {"model": Artifact("Model", args["out"])}
    specs.TRAINER.run_executor(inputs, outputs, args["params"],
                               ExecutionContext(args["root"], args["key"], "test",
                                                log=lambda m: print(m, flush=True)))


if __name__ == "__main__":
    main(sys.argv[1])
