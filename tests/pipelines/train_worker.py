"""Run the Trainer executor in its own process: `python -m tests.pipelines.train_worker
ARGS.json` with {"params", "examples", "out", "root", "key"} (TF_CONFIG from the env).
With EXIT_AFTER_EPOCH=N in the env the process dies (os._exit, no cleanup, like a kill)
at the end of epoch N, after the backup of that epoch is written."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _die_after_epoch(epoch):
    import keras

    from pipelines.components import trainer

    class Die(keras.callbacks.Callback):
        def on_epoch_end(self, index, logs=None):
            if index + 1 == epoch:
                print(f"train_worker: exiting after epoch {epoch}", flush=True)
                os._exit(3)

    make = trainer._callbacks
    trainer._callbacks = lambda *args, **kwargs: make(*args, **kwargs) + [Die()]


def main(path):
    if os.environ.get("EXIT_AFTER_EPOCH"):
        _die_after_epoch(int(os.environ["EXIT_AFTER_EPOCH"]))
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
