"""What the Generator needs to drive an exported model, read without TensorFlow.

From the manifest (`generation_spec.json`, see export/manifest.py for the schema), or, for a
server that exposes only signature metadata, from the signatures plus a `start_id`.
"""

import numpy as np

from keras_ar import contract
from keras_ar.contract import read_manifest  # noqa: F401  (serving's modules import it here)
from serving.source_input import SourceSpec


class GenerationSpec:
    """Start token, value shape/dtype, noise shape, state keys, conditions, decoding.

    `image_shape` (H, W, C) is set for image models (the manifest's model config), whose
    generated values `[B, H * W, C]` (raster order) reshape to images `[B, H, W, C]`;
    `num_levels` is the number of values one position takes (classes, pixel levels or
    vocabulary size), used to scale ids for writers; None when the manifest does not say.
    `source` (`serving.source_input.SourceSpec`) is set for sequence-to-sequence models,
    whose `local_condition` is source ids."""

    def __init__(self, start_id, event_shape, x_dtype, noise_shape, state_keys,
                 whole_conditions=(), step_conditions=None, local_hop=1, decoding=None,
                 image_shape=None, num_levels=None, family=None, num_global_classes=0,
                 source=None):
        self.start_id = int(start_id)
        self.event_shape = tuple(int(d) for d in event_shape)
        self.x_dtype = np.dtype(x_dtype)
        self.noise_shape = tuple(int(d) for d in noise_shape)
        self.state_keys = tuple(sorted(state_keys))
        self.whole_conditions = dict(whole_conditions)  # name -> rank
        self.step_conditions = dict(self.whole_conditions if step_conditions is None
                                    else step_conditions)
        self.local_hop = max(1, int(local_hop or 1))
        self.decoding = dict(decoding or {})
        self.image_shape = tuple(int(d) for d in image_shape) if image_shape else None
        self.num_levels = num_levels
        self.family = family  # the model's class name (manifest), e.g. "WaveNet"
        self.num_global_classes = int(num_global_classes or 0)  # class ids in [0, this)
        #: rows end at a stop flag the model samples (sample_step's `stop`, generate's
        #: `lengths`), e.g. the continuous-sequence model
        self.samples_stop = bool(self.decoding.get("samples_stop", False))
        self.source = source
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
        decoding = manifest.get("decoding") or {}
        levels = (decoding.get("num_classes") or config.get("num_levels")
                  or config.get("vocab_size") or config.get("target_vocab_size") or None)
        return cls(manifest["x"]["start_id"], manifest["x"]["event_shape"],
                   manifest["x"]["dtype"], manifest["noise"]["per_step"],
                   manifest["state"], rank, step_rank, config.get("local_hop", 1),
                   decoding, image, levels, manifest.get("model", {}).get("family"),
                   config.get("num_global_classes", 0), SourceSpec.from_manifest(manifest))

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
                   per_step, local_hop, source=SourceSpec.from_signature(init))

    def step_conditions_at(self, conditions, index):
        """Whole conditions -> the per-step ones at state index `index` ([B] ints).

        A condition whose per-step rank is lower than its whole rank is a sequence of
        frames: `[B, F, D]` (WaveNet local features) or `[B, H, W, D]` (image models; the
        grid flattens to raster order); each row gets the frame `index // local_hop`. The
        others (global ids or vectors) pass unchanged."""
        return {name: value[:, 0] if name in self._frame_conditions() else value
                for name, value in self.chunk_conditions_at(conditions, index, 1).items()}

    def chunk_conditions_at(self, conditions, index, k):
        """Whole conditions -> `sample_chunk`'s for the k positions from state `index` [B]:
        frame sequences give `[B, k, D]` (each position's frame, as `step_conditions_at`);
        the others pass unchanged."""
        out = {}
        frames_of = self._frame_conditions()
        for name, value in conditions.items():
            if name not in self.step_conditions:
                continue
            if name in frames_of:
                extra = frames_of[name]
                flat = value.reshape(value.shape[:1] + (-1,) + value.shape[1 + extra:])
                frames = (np.asarray(index)[:, None] + np.arange(k)[None, :]) // self.local_hop
                frames = np.minimum(frames, flat.shape[1] - 1)  # `check_conditions` guards
                value = flat[np.arange(flat.shape[0])[:, None], frames]
            out[name] = value
        return out

    def _frame_conditions(self):
        """{name: extra whole rank} of the conditions given as frame sequences."""
        return {name: self.whole_conditions.get(name, 0) - rank
                for name, rank in self.step_conditions.items()
                if self.whole_conditions.get(name, 0) - rank > 0}

    def check_condition_values(self, conditions, batch):
        """Raise ValueError naming the condition, its value and what is expected: an unknown
        name, a batch other than the run's, class ids outside [0, num_global_classes),
        non-finite features (the runtimes would fail with a gather error or sample
        silently from another class)."""
        for name, value in conditions.items():
            if name not in self.whole_conditions:
                raise ValueError(f"This model takes no condition `{name}`; it takes "
                                 f"{sorted(self.whole_conditions) or 'none'}.")
            value = np.asarray(value)
            if value.ndim != self.whole_conditions[name] or value.shape[0] != batch:
                raise ValueError(f"`{name}` has shape {list(value.shape)}; a batch of {batch} "
                                 f"rows with rank {self.whole_conditions[name]} is expected "
                                 f"(one row per generated sequence).")
            if name == contract.GLOBAL_CONDITION and (self.num_global_classes
                                                      or value.dtype.kind in "iu"):
                high = self.num_global_classes or None
                if contract.range_error(name, value, 0, high, high_open=True, integral=True):
                    raise ValueError(f"`{name}` holds {value.reshape(-1).tolist()}; class ids "
                                     f"in [0, {high or 'inf'}) are expected.")
            elif np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                raise ValueError(f"`{name}` holds non-finite values (NaN or inf).")

    def check_conditions(self, conditions, last_index):
        """Raise when a frame sequence is too short for state indices up to `last_index`
        (the model's own step reads zeros past the end, so the host refuses instead)."""
        for name, value in conditions.items():
            extra = self.whole_conditions.get(name, 0) - self.step_conditions.get(name, 0)
            if name not in self.step_conditions or extra <= 0:
                continue
            frames = int(np.prod(value.shape[1:1 + extra]))
            needed = last_index // self.local_hop + 1
            if frames < needed:
                raise ValueError(
                    f"`{name}` has {frames} frames (shape {value.shape}); the prompt and "
                    f"steps reach state index {last_index}, which at local_hop="
                    f"{self.local_hop} needs at least {needed}. Pass a longer `{name}` "
                    f"or fewer steps.")

    def to_images(self, x):
        """Generated values `[B, H * W, C]` -> images `[B, H, W, C]` (None when this is not
        an image model or `x` does not hold whole images)."""
        x = np.asarray(x)
        if self.image_shape is None or int(np.prod(x.shape[1:])) != int(
                np.prod(self.image_shape)):
            return None
        return x.reshape((x.shape[0],) + self.image_shape)
