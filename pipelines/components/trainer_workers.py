"""The Trainer on `training.workers` local processes (`training.strategy: multi_worker`).

`launch` starts N processes of `python -m pipelines.components.trainer_workers ARGS.json I`,
each with a TF_CONFIG naming all N on free loopback ports (worker 0 is the chief), and each
runs the Trainer's own training (`trainer.train`) under `MultiWorkerMirroredStrategy`: every
worker reads its shard of the Examples, the chief writes the model artifact, the others write
under `<model>/_workers/`. `<model>/_workers/` also holds `args.json`, `workers.json` (pids,
addresses, logs) and `logs/worker_<i>.log`; the chief's `Trainer:` lines also go to the
runner's log. When a worker fails or is killed, the others are stopped (their collectives
would wait for it) and the Trainer fails naming it; a rerun with the same inputs and
parameters resumes every worker from the chief's last epoch backup
(`<pipeline_root>/Trainer/backup/<cache key>/worker_0`). Workers die with the process that
launched them (Linux `PR_SET_PDEATHSIG`).
"""

import dataclasses
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time

from pipelines.components.base import Artifact, ExecutionContext, read_json, write_json

CHIEF_PROPERTIES = "chief_properties.json"


def launch(inputs, outputs, params, context, workers):
    """Runs the Trainer on `workers` local processes; the model artifact's properties come
    from the chief. Raises RuntimeError naming the first worker that failed."""
    folder = outputs["model"].path / "_workers"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    args = {"params": params,
            "inputs": {n: dataclasses.asdict(a) for n, a in inputs.items()},
            "outputs": {n: dataclasses.asdict(a) for n, a in outputs.items()},
            "context": {"pipeline_root": context.pipeline_root,
                        "cache_key": context.cache_key, "run_id": context.run_id}}
    write_json(folder / "args.json", args)
    context.log(f"Trainer: {workers} worker processes on {', '.join(addresses)} "
                f"(logs in {folder / 'logs'})")
    procs, relay = [], None
    try:
        for index in range(workers):
            procs.append(_start(index, addresses, folder))
        relay = threading.Thread(target=_relay, args=(procs[0], _log_path(folder, 0),
                                                      context.log), daemon=True)
        relay.start()
        write_json(folder / "workers.json", {"workers": [
            {"index": i, "pid": p.pid, "address": a, "log": str(_log_path(folder, i))}
            for i, (p, a) in enumerate(zip(procs, addresses))]})
        _wait(procs, folder, context)
    finally:
        _stop(procs)
        if relay is not None:
            relay.join(timeout=10)
    outputs["model"].properties.update(read_json(folder / CHIEF_PROPERTIES))


def free_ports(count):
    """`count` distinct free TCP ports on 127.0.0.1."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _log_path(folder, index):
    return folder / "logs" / f"worker_{index}.log"


def _start(index, addresses, folder):
    import pipelines

    tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    repo = str(pathlib.Path(pipelines.__file__).resolve().parents[1])
    env = dict(os.environ, TF_CONFIG=json.dumps(tf_config),
               PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = [sys.executable, "-m", "pipelines.components.trainer_workers",
               str(folder / "args.json"), str(index)]
    if index == 0:  # the chief's output is relayed line by line
        stdout = subprocess.PIPE
    else:
        stdout = open(_log_path(folder, index), "w")
    try:
        return subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, cwd=repo,
                                preexec_fn=_die_with_parent)
    finally:
        if index:
            stdout.close()


def _die_with_parent():
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: workers outlive a killed launcher
        pass


def _relay(proc, path, log):
    """Copies the chief's output to its log file; its `Trainer:` lines also go to `log`."""
    with open(path, "w") as f:
        for line in proc.stdout:
            f.write(line)
            f.flush()
            if line.startswith("Trainer:"):
                log(line.rstrip("\n"))


def _wait(procs, folder, context):
    while True:
        codes = [p.poll() for p in procs]
        if any(c not in (None, 0) for c in codes):
            time.sleep(1.0)  # a killed worker's peers fail right after it: see them all
            raise RuntimeError(_failure([p.poll() for p in procs], folder, context))
        if all(c == 0 for c in codes):
            return
        time.sleep(0.2)


def _failure(codes, folder, context):
    """The message: the failed workers, those killed by a signal (the cause, as their peers
    then fail on the broken collective) first, with the end of the first one's log."""
    failed = sorted((i for i, c in enumerate(codes) if c not in (None, 0)),
                    key=lambda i: (codes[i] > 0, i))
    hows = [f"worker {i} of {len(codes)} " + (
        f"was killed by {signal.Signals(-codes[i]).name}" if codes[i] < 0
        else f"exited with status {codes[i]}") for i in failed]
    log = _log_path(folder, failed[0])
    tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.is_file() else []
    backup = pathlib.Path(context.pipeline_root) / "Trainer" / "backup" / context.cache_key
    return (f"Trainer {'; '.join(hows)}; the other workers were stopped. The log of worker "
            f"{failed[0]} ({log}) ends: {' | '.join(tail) or '(empty)'}. Rerun the pipeline "
            f"to resume every worker from the last epoch backed up under {backup}.")


def _stop(procs):
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.time() + 10
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.time(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(args_path, index):
    """One worker: the Trainer's training under the TF_CONFIG in the environment."""
    from pipelines.components import trainer

    args = read_json(args_path)
    inputs = {n: Artifact(**a) for n, a in args["inputs"].items()}
    outputs = {n: Artifact(**a) for n, a in args["outputs"].items()}
    context = ExecutionContext(**args["context"], log=lambda m: print(m, flush=True))
    trainer.train(inputs, outputs, args["params"], context)
    if index == 0:
        write_json(pathlib.Path(args_path).parent / CHIEF_PROPERTIES,
                   outputs["model"].properties)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
