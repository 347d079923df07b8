"""The local DAG runner: components in order, every execution recorded in ML Metadata.

For each component: resolve its inputs (outputs of this run, else the latest successful
outputs in the store), compute the cache key (code version + parameters + input
fingerprints), and either reuse a COMPLETE execution with the same key whose outputs still
exist (recorded as a CACHED execution) or run the executor into fresh output directories
`<root>/<Component>/<output>/<execution id>/` (earlier artifacts are never touched). A
failing executor is recorded as FAILED with its error (its partial outputs stay in its own
directories for inspection, e.g. the quarantine file, and are never reused), and the run
stops with a `PipelineError` naming the component.
"""

import dataclasses
import os
import pathlib
import sys
import time
import traceback

from pipelines.components import specs
from pipelines.components.base import Artifact, ExecutionContext, cache_key, fingerprint
from pipelines.metadata import METADATA_FILE, describe, open_store

__all__ = ["METADATA_FILE", "PipelineError", "run", "save_traceback"]


class PipelineError(RuntimeError):
    """A component failed; the message names it and carries the executor's error;
    `traceback_path` is the saved full traceback (None before any component ran)."""

    def __init__(self, message, traceback_path=None):
        super().__init__(message)
        self.traceback_path = traceback_path


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(config, pipeline_root, components=None, logger=log):
    """Run the pipeline (or only `components`, by name); return [(name, state, outputs)]."""
    root = pathlib.Path(pipeline_root)
    store = open_store(config.metadata, root)  # fails before anything is written
    root.mkdir(parents=True, exist_ok=True)
    run_id = f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}-{int(time.time() * 1e3) % 1000}"
    contexts = store.run_contexts(config.name, run_id)
    selected = [s for s in specs.PIPELINE if components is None or s.name in components]
    produced, report = {}, []
    logger(f"pipeline {config.name!r}: run {run_id}, root {root}, metadata "
           f"{describe(config.metadata, root)}")
    for spec in selected:
        start = time.perf_counter()
        inputs = _resolve_inputs(spec, produced, store)
        params = spec.parameters(config)
        if spec.runtime_parameters is not None:
            params = dict(params, **spec.runtime_parameters(config, inputs))
        key = cache_key(spec, params, {n: a.properties.get("fingerprint")
                                       for n, a in sorted(inputs.items())})
        props = {"cache_key": key, "parameters": params, "code_version": spec.code_version(),
                 "run_id": run_id}
        cached = store.find_cached(spec.name, key)
        execution_id = store.start_execution(spec.name, props, contexts)
        if cached is not None:
            _, outputs = cached
            store.finish_execution(execution_id, "CACHED", inputs, outputs, contexts)
            state = "CACHED"
        else:
            outputs = {name: Artifact(kind, str(root / spec.name / name / str(execution_id)))
                       for name, kind in spec.outputs.items()}
            _execute(spec, inputs, outputs, params, store, execution_id, contexts,
                     ExecutionContext(str(root), key, run_id, logger,
                                      beam=dataclasses.asdict(config.beam)), root, start)
            state = "COMPLETE"
        for name, artifact in outputs.items():
            produced[(spec.name, name)] = artifact
        seconds = time.perf_counter() - start
        logger(f"{spec.name}: {state} in {seconds:.1f} s (execution {execution_id})")
        report.append((spec.name, state, outputs))
    return report


def _execute(spec, inputs, outputs, params, store, execution_id, contexts, context, root,
             start):
    try:
        spec.run_executor(inputs, outputs, params, context)
    except BaseException as err:
        saved = save_traceback(root, spec.name, execution_id, err)
        first = "".join(traceback.format_exception_only(err)).strip().splitlines()[-1]
        store.finish_execution(execution_id, "FAILED", inputs, {}, contexts, {
            "error": first[-4000:], "traceback": str(saved),
            "seconds": round(time.perf_counter() - start, 2)})
        if isinstance(err, KeyboardInterrupt):
            raise
        raise PipelineError(f"{spec.name} failed: {type(err).__name__}: {err} (traceback: "
                            f"{saved}; `keras-ar pipeline show` lists it)", saved) from err
    for artifact in outputs.values():
        pathlib.Path(artifact.uri).mkdir(parents=True, exist_ok=True)
        artifact.properties["fingerprint"] = fingerprint(artifact.uri)
    store.finish_execution(execution_id, "COMPLETE", inputs, outputs, contexts,
                           {"seconds": round(time.perf_counter() - start, 2)})


def save_traceback(root, component, execution_id, err):
    """The failure's full traceback at `<root>/errors/<component>-<execution>.txt`
    (written atomically); returns the path."""
    folder = pathlib.Path(root) / "errors"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{component}-{execution_id}.txt"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(traceback.format_exception(err)))
    os.replace(tmp, path)
    return path


def _resolve_inputs(spec, produced, store):
    inputs = {}
    for name, source in spec.inputs.items():
        producer = (source.producer, source.output)
        artifact = produced.get(producer) or store.latest_output(*producer)
        if artifact is None:
            raise PipelineError(
                f"{spec.name} needs input {name!r} from {source.producer}, which has no "
                f"successful run in this pipeline root yet. Run `keras-ar component run "
                f"{source.producer}` (or the whole pipeline) first.")
        inputs[name] = dataclasses.replace(artifact, properties=dict(artifact.properties))
    return inputs
