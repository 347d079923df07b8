"""`keras-ar pipeline show`: recent runs with their executions (state, duration, error and
the saved traceback, output metrics), and the lineage of the latest pushed model back to its
examples, read from ML Metadata: the SQLite file in the pipeline root, or the store a config's
`metadata` section names (SQLite or MySQL)."""

import sys

from pipelines.config import MetadataConfig
from pipelines.metadata import open_store, sqlite_path, state_name


def show(pipeline_root, runs=5, out=sys.stdout, metadata=None):
    """Prints the listing; `metadata` is a config's `metadata` section (default: SQLite at
    `<pipeline_root>/metadata.sqlite`). Returns the exit status."""
    metadata = metadata or MetadataConfig()
    path = sqlite_path(metadata, pipeline_root)
    if not metadata.mysql.host and not path.is_file():
        print(f"No ML Metadata store at {path}: run `keras-ar pipeline run CONFIG "
              f"--pipeline-root {pipeline_root}` first.", file=sys.stderr)
        return 2
    store = open_store(metadata, pipeline_root)
    contexts = sorted(store.store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
    for ctx in contexts[-runs:]:
        print(f"run {ctx.name}", file=out)
        for execution in sorted(store.store.get_executions_by_context(ctx.id),
                                key=lambda e: e.id):
            kind = store.store.get_execution_types_by_id([execution.type_id])[0].name
            outputs = store.outputs_of(execution.id)
            props = execution.custom_properties
            seconds = (f"{props['seconds'].double_value:7.1f} s" if "seconds" in props
                       else " " * 9)
            print(f"  {execution.id:4d} {kind:14s} {state_name(execution):9s} {seconds} "
                  + ", ".join(f"{k}={a.uri}" for k, a in outputs.items()), file=out)
            for name, artifact in outputs.items():
                metrics = _metrics(artifact.properties)
                if metrics:
                    print(f"         {name}: {metrics}", file=out)
            if "error" in props:
                print(f"         error: {props['error'].string_value}", file=out)
                print(f"         traceback: {props['traceback'].string_value}", file=out)
    pushed = latest_pushed(store)
    if pushed is not None:
        print("lineage of the latest pushed model:", file=out)
        for depth, line in lineage(store, pushed):
            print("  " * (depth + 1) + line, file=out)
    return 0


def _metrics(properties):
    """An artifact's recorded figures (counts, metrics, versions), not its bookkeeping."""
    shown = {k: v for k, v in sorted(properties.items())
             if k not in ("fingerprint", "pushed_uri") and not str(k).startswith("_")}
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in shown.items())


def latest_pushed(store):
    for execution in sorted(store.executions("Pusher"), key=lambda e: -e.id):
        artifact = store.outputs_of(execution.id).get("pushed_model")
        if artifact is not None and artifact.properties.get("pushed"):
            return artifact
    return None


def lineage(store, artifact, depth=0, seen=None):
    """[(depth, text)]: the artifact, the execution that produced it, its inputs, ..."""
    seen = set() if seen is None else seen
    uri = artifact.properties.get("pushed_uri", artifact.uri)
    lines = [(depth, f"{artifact.type_name} #{artifact.id} {uri}")]
    if artifact.id in seen:
        return lines
    seen.add(artifact.id)
    execution = store.producer_of(artifact.id)
    if execution is None:
        return lines
    kind = store.store.get_execution_types_by_id([execution.type_id])[0].name
    lines.append((depth + 1, f"<- {kind} execution {execution.id} "
                             f"({state_name(execution)})"))
    for input_artifact in store.inputs_of(execution.id).values():
        lines += lineage(store, input_artifact, depth + 2, seen)
    return lines


def lineage_types(store, artifact):
    """The artifact types on the lineage of `artifact` (tests check Examples is there)."""
    return [text.split(" ")[0] for _, text in lineage(store, artifact)
            if not text.startswith("<-")]
