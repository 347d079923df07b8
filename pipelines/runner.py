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
import pathlib
import sys
import time
import traceback

from pipelines.components import specs
from pipelines.components.base import Artifact, ExecutionContext, cache_key, fingerprint
from pipelines.metadata import Metadata

METADATA_FILE = "metadata.sqlite"


class PipelineError(RuntimeError):
    """A component failed; the message names it and carries the executor's error."""


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(config, pipeline_root, components=None, logger=log):
    """Run the pipeline (or only `components`, by name); return [(name, state, outputs)]."""
    root = pathlib.Path(pipeline_root)
    root.mkdir(parents=True, exist_ok=True)
    store = Metadata(root / METADATA_FILE)
    run_id = f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}-{int(time.time() * 1e3) % 1000}"
    contexts = store.run_contexts(config.name, run_id)
    selected = [s for s in specs.PIPELINE if components is None or s.name in components]
    produced, report = {}, []
    logger(f"pipeline {config.name!r}: run {run_id}, root {root}")
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
                     ExecutionContext(str(root), key, run_id, logger))
            state = "COMPLETE"
        for name, artifact in outputs.items():
            produced[(spec.name, name)] = artifact
        seconds = time.perf_counter() - start
        logger(f"{spec.name}: {state} in {seconds:.1f} s (execution {execution_id})")
        report.append((spec.name, state, outputs))
    return report


def _execute(spec, inputs, outputs, params, store, execution_id, contexts, context):
    try:
        spec.run_executor(inputs, outputs, params, context)
    except BaseException as err:
        store.finish_execution(execution_id, "FAILED", inputs, {}, contexts,
                               {"error": "".join(traceback.format_exception_only(err))[-4000:]})
        if isinstance(err, KeyboardInterrupt):
            raise
        raise PipelineError(f"{spec.name} failed: {type(err).__name__}: {err}") from err
    for artifact in outputs.values():
        pathlib.Path(artifact.uri).mkdir(parents=True, exist_ok=True)
        artifact.properties["fingerprint"] = fingerprint(artifact.uri)
    store.finish_execution(execution_id, "COMPLETE", inputs, outputs, contexts)


def _resolve_inputs(spec, produced, store):
    inputs = {}
    for name in spec.inputs:
        producer = specs.PRODUCERS[(spec.name, name)]
        artifact = produced.get(producer) or store.latest_output(*producer)
        if artifact is None:
            raise PipelineError(
                f"{spec.name} needs input {name!r} from {producer[0]}, which has no successful "
                f"run in this pipeline root yet. Run `keras-ar component run {producer[0]}` "
                "(or the whole pipeline) first.")
        inputs[name] = dataclasses.replace(artifact, properties=dict(artifact.properties))
    return inputs
