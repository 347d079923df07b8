"""ML Metadata (`ml-metadata`) for the runner: artifacts, executions, runs and lineage.

Store: SQLite at `<pipeline_root>/metadata.sqlite` (MySQL in production is a different
`ConnectionConfig`). Types: one ArtifactType per artifact type, one ExecutionType per
component, ContextTypes `pipeline` and `pipeline_run`. Every execution carries the custom
properties `cache_key`, `parameters` (JSON), `code_version`, `run_id` and is linked to its
inputs and outputs by INPUT/OUTPUT events; a cache hit is an execution in state CACHED whose
OUTPUT events point at the artifacts of the execution it reuses (the TFX convention).
"""

import json
import pathlib
import time

from pipelines.components.base import Artifact


def _pb():
    from ml_metadata.proto import metadata_store_pb2

    return metadata_store_pb2


class Metadata:
    def __init__(self, path):
        from ml_metadata.metadata_store import metadata_store

        pb = _pb()
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        config = pb.ConnectionConfig()
        config.sqlite.filename_uri = str(path)
        config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.store = metadata_store.MetadataStore(config)
        self._types = {}

    # ----------------------------------------------------------------- types
    def _type_id(self, kind, name):
        key = (kind, name)
        if key not in self._types:
            pb = _pb()
            cls, put = {"artifact": (pb.ArtifactType, self.store.put_artifact_type),
                        "execution": (pb.ExecutionType, self.store.put_execution_type),
                        "context": (pb.ContextType, self.store.put_context_type)}[kind]
            self._types[key] = put(cls(name=name))
        return self._types[key]

    # ----------------------------------------------------------------- contexts
    def run_contexts(self, pipeline_name, run_id):
        pb = _pb()
        contexts = []
        for type_name, name in (("pipeline", pipeline_name), ("pipeline_run", run_id)):
            existing = self.store.get_context_by_type_and_name(type_name, name) \
                if self._has_type("context", type_name) else None
            if existing is None:
                ctx = pb.Context(type_id=self._type_id("context", type_name), name=name)
                ctx.custom_properties["created"].string_value = time.strftime(
                    "%Y-%m-%d %H:%M:%S")
                [cid] = self.store.put_contexts([ctx])
                existing = self.store.get_contexts_by_id([cid])[0]
            contexts.append(existing)
        return contexts

    def _has_type(self, kind, name):
        getter = {"artifact": self.store.get_artifact_type,
                  "execution": self.store.get_execution_type,
                  "context": self.store.get_context_type}[kind]
        try:
            getter(name)
            return True
        except Exception:
            return False

    # ----------------------------------------------------------------- executions
    def start_execution(self, component, props, contexts):
        pb = _pb()
        execution = pb.Execution(type_id=self._type_id("execution", component),
                                 last_known_state=pb.Execution.RUNNING)
        _set(execution.custom_properties, props)
        execution_id, _, _ = self.store.put_execution(execution, [], contexts)
        return execution_id

    def finish_execution(self, execution_id, state, inputs, outputs, contexts, extra=None):
        """Record the final state with INPUT/OUTPUT events; new output artifacts get ids."""
        pb = _pb()
        [execution] = self.store.get_executions_by_id([execution_id])
        execution.last_known_state = getattr(pb.Execution, state)
        _set(execution.custom_properties, extra or {})
        pairs = []
        for kind, artifacts in ((pb.Event.INPUT, inputs), (pb.Event.OUTPUT, outputs)):
            for name, artifact in artifacts.items():
                event = pb.Event(type=kind)
                event.path.steps.add().key = name
                pairs.append((self._artifact_proto(artifact), event))
        _, artifact_ids, _ = self.store.put_execution(execution, pairs, contexts)
        for (_, artifact), aid in zip(list(inputs.items()) + list(outputs.items()),
                                         artifact_ids):
            artifact.id = aid

    def _artifact_proto(self, artifact):
        pb = _pb()
        if artifact.id:
            return self.store.get_artifacts_by_id([artifact.id])[0]
        proto = pb.Artifact(type_id=self._type_id("artifact", artifact.type_name),
                            uri=artifact.uri, state=pb.Artifact.LIVE)
        _set(proto.custom_properties, artifact.properties)
        return proto

    def executions(self, component=None):
        if component is None:
            return self.store.get_executions()
        if not self._has_type("execution", component):
            return []
        return self.store.get_executions_by_type(component)

    def outputs_of(self, execution_id):
        """{output name: Artifact} of an execution."""
        pb = _pb()
        events = [e for e in self.store.get_events_by_execution_ids([execution_id])
                  if e.type == pb.Event.OUTPUT]
        return self._named(events)

    def inputs_of(self, execution_id):
        pb = _pb()
        events = [e for e in self.store.get_events_by_execution_ids([execution_id])
                  if e.type == pb.Event.INPUT]
        return self._named(events)

    def _named(self, events):
        by_id = {a.id: a for a in self.store.get_artifacts_by_id(
            [e.artifact_id for e in events])}
        return {e.path.steps[0].key: to_artifact(by_id[e.artifact_id], self.store)
                for e in events if e.artifact_id in by_id}

    def producer_of(self, artifact_id):
        pb = _pb()
        for event in self.store.get_events_by_artifact_ids([artifact_id]):
            if event.type == pb.Event.OUTPUT:
                return self.store.get_executions_by_id([event.execution_id])[0]
        return None

    def find_cached(self, component, key):
        """Outputs of the latest COMPLETE execution with `cache_key` == key, if they still
        exist on disk; else None."""
        pb = _pb()
        for execution in sorted(self.executions(component), key=lambda e: -e.id):
            if (execution.last_known_state == pb.Execution.COMPLETE and
                    execution.custom_properties["cache_key"].string_value == key):
                outputs = self.outputs_of(execution.id)
                if outputs and all(_exists(a) for a in outputs.values()):
                    return execution, outputs
        return None

    def latest_output(self, component, name):
        """The output `name` of the latest successful (COMPLETE/CACHED) `component` run."""
        pb = _pb()
        for execution in sorted(self.executions(component), key=lambda e: -e.id):
            if execution.last_known_state in (pb.Execution.COMPLETE, pb.Execution.CACHED):
                outputs = self.outputs_of(execution.id)
                if name in outputs:
                    return outputs[name]
        return None


def to_artifact(proto, store):
    type_name = store.get_artifact_types_by_id([proto.type_id])[0].name
    props = {k: _value(v) for k, v in proto.custom_properties.items()}
    return Artifact(type_name, proto.uri, props, proto.id)


def state_name(execution):
    return _pb().Execution.State.Name(execution.last_known_state)


def _exists(artifact):
    extra = artifact.properties.get("pushed_uri")
    return pathlib.Path(artifact.uri).exists() and (not extra or pathlib.Path(extra).exists())


def _value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def _set(target, values):
    for key, value in values.items():
        if isinstance(value, bool):
            target[key].int_value = int(value)
        elif isinstance(value, int):
            target[key].int_value = value
        elif isinstance(value, float):
            target[key].double_value = value
        elif isinstance(value, str):
            target[key].string_value = value
        else:
            target[key].string_value = json.dumps(value, sort_keys=True, default=str)
