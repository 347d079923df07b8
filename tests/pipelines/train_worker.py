"""Run the Trainer executor in its own process: `python -m tests.pipelines.train_worker
ARGS.json` with {"params", "examples", "out", "root", "key"} (TF_CONFIG from the env) and
optionally "dump_optimizer": an .npz path where the optimizer's variables (as `str(index)`,
the index of `optimizer/vars/<index>` in a weights file, plus "paths") are written when
training begins, after BackupAndRestore restored them. With EXIT_AFTER_EPOCH=N in the env
the process dies (os._exit, no cleanup, like a kill) at the end of epoch N, after the backup
of that epoch is written."""

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
    if args.get("dump_optimizer"):
        _dump_optimizer_at_train_begin(args["dump_optimizer"])
    inputs = {"examples": Artifact("Examples", args["examples"]),
              "schema": Artifact("Schema", args["examples"])}
    outputs = {"model": Artifact("Model", args["out"])}
    specs.TRAINER.run_executor(inputs, outputs, args["params"],
                               ExecutionContext(args["root"], args["key"], "test",
                                                log=lambda m: print(m, flush=True)))


def _dump_optimizer_at_train_begin(path):
    import numpy as np

    from pipelines.components import training

    original = training.ResumeRecorder.on_train_begin  # runs after the restore callback

    def on_train_begin(self, logs=None):
        original(self, logs)
        variables = self.model.optimizer.variables
        np.savez(path, paths=np.array([v.path for v in variables]),
                 **{str(i): np.asarray(v.numpy()) for i, v in enumerate(variables)})

    training.ResumeRecorder.on_train_begin = on_train_begin


if __name__ == "__main__":
    main(sys.argv[1])
