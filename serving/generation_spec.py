"""What the Generator needs to drive an exported model, read without TensorFlow.

From the manifest (`generation_spec.json`, see export/manifest.py for the schema), or, for a
server that exposes only signature metadata, from the signatures plus a `start_id`.
"""

import json
import pathlib

import numpy as np

from keras_ar import contract


def read_manifest(path):
    """The manifest beside / inside an artifact: a .json file, an artifact directory
    (SavedModel, TFLite, ONNX, TF Serving version dir) or a file inside one."""
    path = pathlib.Path(path)
    candidates = [path] if path.suffix == ".json" else []
    base = path if path.is_dir() else path.parent
    candidates += [base / contract.MANIFEST_FILENAME,
                   base / "assets" / contract.MANIFEST_FILENAME]
    for candidate in candidates:
        if candidate.is_file():
            manifest = json.loads(candidate.read_text())
            if manifest.get("schema_version") != contract.MANIFEST_SCHEMA_VERSION:
                raise ValueError(f"{candidate}: manifest schema_version "
                                 f"{manifest.get('schema_version')!r} is not "
                                 f"{contract.MANIFEST_SCHEMA_VERSION}; re-export the model.")
            return manifest
    raise FileNotFoundError(f"No {contract.MANIFEST_FILENAME} for {str(path)!r} (looked at "
                            f"{[str(c) for c in candidates]}).")


class GenerationSpec:
    """Start token, value shape/dtype, noise shape, state keys, conditions, decoding."""

    def __init__(self, start_id, event_shape, x_dtype, noise_shape, state_keys,
                 whole_conditions=(), step_conditions=None, local_hop=1, decoding=None,
                 image_shape=None):
        self.start_id = int(start_id)
        self.event_shape = tuple(int(d) for d in event_shape)
        self.x_dtype = np.dtype(x_dtype)
        self.noise_shape = tuple(int(d) for d in noise_shape)
        self.state_keys = tuple(sorted(state_keys))
        self.whole_conditions = dict(whole_conditions)  # name -> rank
        self.step_conditions = dict(step_conditions or self.whole_conditions)
        self.local_hop = max(1, int(local_hop or 1))
        self.decoding = dict(decoding or {})
        self.image_shape = tuple(image_shape) if image_shape else None
        if contract.INDEX_KEY not in self.state_keys:
            raise ValueError(f"The state must hold `{contract.INDEX_KEY}`; got "
                             f"{list(self.state_keys)}.")

    @classmethod
    def from_manifest(cls, manifest):
        config = manifest.get("model", {}).get("config", {}) or {}
        conditions = manifest.get("conditions", {})
        rank = {k: len(v["shape"]) for k, v in conditions.get("whole", {}).items()}
        step_rank = {k: len(v["shape"]) for k, v in conditions.get("per_step", {}).items()}
        image = config.get("image_shape") or None
        return cls(manifest["x"]["start_id"], manifest["x"]["event_shape"],
                   manifest["x"]["dtype"], manifest["noise"]["per_step"],
                   manifest["state"], rank, step_rank, config.get("local_hop", 1),
                   manifest.get("decoding"), image)

    @classmethod
    def from_signatures(cls, signatures, start_id, local_hop=1):
        """From `{signature: {"inputs": {name: (shape, dtype)}}}` (server metadata)."""
        step = signatures[contract.SAMPLE_STEP]["inputs"]
        x_shape, x_dtype = step[contract.X_PREV]
        keys = [contract.state_key_from_name(n) for n in step
                if n.startswith(contract.STATE_INPUT_PREFIX)]
        init = signatures[contract.INIT_STATE]["inputs"]
        whole = {k: len(init[k][0]) for k in contract.CONDITION_KEYS if k in init}
        per_step = {k: len(step[k][0]) for k in contract.CONDITION_KEYS if k in step}
        return cls(start_id, x_shape[1:], x_dtype, step[contract.NOISE][0][1:], keys, whole,
                   per_step, local_hop)

    def step_conditions_at(self, conditions, index):
        """Whole conditions -> the per-step ones at state index `index` ([B] ints): a local
        condition `[B, F, D]` gives the frame `index // local_hop` of each row."""
        out = {}
        for name, value in conditions.items():
            if name not in self.step_conditions:
                continue
            if self.step_conditions[name] == self.whole_conditions.get(name, 0) - 1:
                frames = np.minimum(np.asarray(index) // self.local_hop, value.shape[1] - 1)
                value = value[np.arange(value.shape[0]), frames]
            out[name] = value
        return out
