"""ML Metadata (`ml-metadata`) for the runner: artifacts, executions, runs and lineage.

Store: the config's `metadata` section (`open_store`): SQLite at `metadata.sqlite` (default
`<pipeline_root>/metadata.sqlite`) or a MySQL/MariaDB database (`metadata.mysql`: host, port,
database, user, and the environment variable holding the password), as TFX and Kubeflow
Pipelines use; ml-metadata creates its tables on first use. Types: one ArtifactType per
artifact type, one ExecutionType per component, ContextTypes `pipeline` and `pipeline_run`.
Every execution carries the custom properties `cache_key`, `parameters` (JSON),
`code_version`, `run_id` and is linked to its inputs and outputs by INPUT/OUTPUT events; a
cache hit is an execution in state CACHED whose OUTPUT events point at the artifacts of the
execution it reuses (the TFX convention).
"""

import json
import os
import pathlib
import socket
import time

from pipelines.components.base import Artifact
from pipelines.config import ConfigError

METADATA_FILE = "metadata.sqlite"


def _pb():
    from ml_metadata.proto import metadata_store_pb2

    return metadata_store_pb2


def sqlite_path(metadata, pipeline_root):
    """The SQLite file of a `metadata` section: `sqlite`, else `<root>/metadata.sqlite`."""
    return pathlib.Path(metadata.sqlite or pathlib.Path(pipeline_root) / METADATA_FILE)


def connection_config(metadata, pipeline_root):
    """The ML Metadata `ConnectionConfig` of a `metadata` config section: MySQL when
    `metadata.mysql.host` is set (password from the environment variable `password_env`),
    else SQLite at `sqlite_path`. A missing password variable is a `ConfigError`."""
    pb = _pb()
    config = pb.ConnectionConfig()
    mysql = metadata.mysql
    if not mysql.host:
        config.sqlite.filename_uri = str(sqlite_path(metadata, pipeline_root))
        config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        return config
    config.mysql.host, config.mysql.port = mysql.host, mysql.port
    config.mysql.database, config.mysql.user = mysql.database, mysql.user
    if mysql.password_env:
        if mysql.password_env not in os.environ:
            raise ConfigError(
                f"`metadata.mysql.password_env` = {mysql.password_env!r}: that environment "
                f"variable is not set. Export it with the MySQL password of user "
                f"{mysql.user!r} (e.g. `export {mysql.password_env}=...`), or set "
                "password_env: '' for a user without a password.")
        config.mysql.password = os.environ[mysql.password_env]
    return config


def describe(metadata, pipeline_root):
    """Where the store is, for logs and errors (never the password)."""
    mysql = metadata.mysql
    if not mysql.host:
        return f"sqlite {sqlite_path(metadata, pipeline_root)}"
    return f"mysql {mysql.user}@{mysql.host}:{mysql.port}/{mysql.database}"


def open_store(metadata, pipeline_root):
    """The `Metadata` of a `metadata` config section, connected before anything is written:
    an unreachable MySQL server or a refused login is a `ConfigError` naming the field, the
    value and the fix."""
    config = connection_config(metadata, pipeline_root)
    mysql = metadata.mysql
    if not mysql.host:
        return Metadata(sqlite_path(metadata, pipeline_root))
    try:
        socket.create_connection((mysql.host, mysql.port), timeout=10).close()
    except OSError as err:
        raise ConfigError(
            f"`metadata.mysql` host {mysql.host!r} port {mysql.port}: no MySQL server "
            f"answers there ({type(err).__name__}: {err}). Start the server, or fix "
            "metadata.mysql.host/port to where it listens.") from None
    try:
        return Metadata(connection=config)
    except Exception as err:  # ml-metadata raises RuntimeError with an empty MySQL error
        raise ConfigError(
            f"`metadata.mysql`: the server at {mysql.host}:{mysql.port} refused user "
            f"{mysql.user!r} on database {mysql.database!r} ({type(err).__name__}: {err}). "
            f"Check the password in ${mysql.password_env or '(no password_env)'}, that the "
            f"user exists for this client's host and has the rights "
            f"(GRANT ALL ON {mysql.database}.* TO '{mysql.user}'@'HOST').") from None


class Metadata:
    """The ML Metadata store of one pipeline: SQLite at `path`, or any `connection`
    (an ml-metadata `ConnectionConfig`, see `open_store`)."""

    def __init__(self, path=None, connection=None):
        from ml_metadata.metadata_store import metadata_store

        if connection is None:
            pb = _pb()
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
            connection = pb.ConnectionConfig()
            connection.sqlite.filename_uri = str(path)
            connection.sqlite.connection_mode = (
                pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
        self.store = metadata_store.MetadataStore(connection)
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
