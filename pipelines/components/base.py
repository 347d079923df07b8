"""Component interfaces apart from executors (the TFX way).

A `ComponentSpec` declares a component's typed input and output artifacts, where each input
comes from (`Input`: the producing component and its output: the DAG's edges) and the
parameters it depends on (a JSON-able slice of the pipeline config); its executor (a function;
executor modules import TensorFlow inside it, never at module level) does the work:
`execute(inputs, outputs, params, context)` with `{name: Artifact}` dicts. The runner derives
the cache key from the spec alone: the parameters, the fingerprints of the input artifacts and
the code version (a hash of the executor's source modules).
"""

import dataclasses
import hashlib
import importlib.util
import json
import os
import pathlib


@dataclasses.dataclass
class Artifact:
    """A typed file-system artifact (`uri` is a directory) with JSON-able properties."""

    type_name: str
    uri: str
    properties: dict = dataclasses.field(default_factory=dict)
    id: int = 0  # ML Metadata artifact id once recorded

    @property
    def path(self):
        return pathlib.Path(self.uri)


@dataclasses.dataclass
class ExecutionContext:
    """What an executor may know beyond its artifacts: where the pipeline lives, the cache key
    (a stable id for resumable state such as the Trainer's backup), the run id, and the
    `beam:` section (the runner of Beam-based executors: it changes no output, so it is
    not in the cache key)."""

    pipeline_root: str
    cache_key: str
    run_id: str
    log: object = print
    beam: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Input:
    """An input artifact of type `type`, produced as output `output` of component `producer`."""

    type: str
    producer: str
    output: str


@dataclasses.dataclass(frozen=True)
class ComponentSpec:
    """name; inputs `{name: Input}`; outputs `{name: artifact type}`; `parameters(config) ->
    dict`; the executor function; `code`: further modules whose source is the code version."""

    name: str
    inputs: dict
    outputs: dict
    parameters: object
    executor: object
    code: tuple = ()
    runtime_parameters: object = None  # (config, inputs) -> dict of state outside the inputs

    @property
    def executor_name(self):
        """"module:function", as `component list` shows it."""
        return f"{self.executor.__module__}:{self.executor.__qualname__}"

    def run_executor(self, inputs, outputs, params, context):
        return self.executor(inputs, outputs, params, context)

    def code_version(self):
        digest = hashlib.sha256()
        for module in (self.executor.__module__,) + tuple(self.code):
            for path in sorted(_module_files(module)):
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()[:16]


def _module_files(module):
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"Cannot find the source of module {module!r} for the code version.")
    origin = pathlib.Path(spec.origin)
    if origin.name == "__init__.py":
        return list(origin.parent.rglob("*.py"))
    return [origin]


def fingerprint(path):
    """sha256 over the relative paths and contents of the files under `path` (or the file)."""
    path = pathlib.Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def cache_key(spec, params, input_fingerprints):
    """The key a cached execution must match: code version, parameters, inputs."""
    payload = json.dumps({"component": spec.name, "code": spec.code_version(), "params": params,
                          "inputs": input_fingerprints}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def write_json(path, data):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path):
    return json.loads(pathlib.Path(path).read_text())
