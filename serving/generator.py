"""One generation loop for every runtime: the step protocol driven from the host.

    state = init_state(conditions | batch_template)
    x_prev = start_id
        (a prompt: prefill([start, prompt[:-1]]); x_prev = prompt[-1])
    for t0 in range(0, num_steps, K):    (K = chunk_size)
        x[:, t0:t0+K], state = sample_chunk(x_prev, state, noise[:, t0:t0+K], controls, c)
        x_prev = x[:, t0+K-1]

One round trip per chunk of K samples: the state crosses the runtime boundary once per chunk,
and the chunk runs at the runtime's in-graph loop speed. With K = 1, or an artifact without
`sample_chunk` (older exports; the manifest lists the signatures), each step is one
`sample_step` call. Every chunk size gives the same samples.

`noise` is `np.random.default_rng(seed).random([B, num_steps, *noise_shape], float32)`, the
same array on every backend, so a seed gives identical samples on SavedModel, TFLite, ONNX
and TF Serving (and from the in-graph `generate` signature, `use_graph_loop=True`). Rows end
at a stop token or their own length; later positions hold the stop token (or `pad_value`).
Image models (the manifest's `model.config.image_shape`) generate pixels in raster order,
`x [B, H * W, C]`; results then also hold `images [B, H, W, C]`. Sequence-to-sequence models
(ByteNet, EncoderDecoderTransformer) take the source as `conditions={"local_condition": ids}`,
an int array [B, S <= max_source_length] or a list of rows of any lengths, padded here
(`serving.source_input`); the source sets the batch, and the target length rule sets each
row's end (ByteNet: floor(a |s|) + b target positions).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from keras_ar import contract
from serving.generation_run import GenerationRun
from serving.generation_spec import GenerationSpec

if TYPE_CHECKING:
    from serving.backend import Backend

#: `callback(t0, values [B, k, *event], run)`, called after every chunk.
Callback = Callable[[int, np.ndarray, GenerationRun], Any]

IMAGES = "images"
#: chunk sizes by model family (`default_chunk_size`): long audio streams amortise the round
#: trip over many samples; text and continuous sequences stop early, so smaller chunks waste
#: less work after a row's end; image models generate one row of pixels per chunk.
DEFAULT_CHUNK_SIZES = {"WaveNet": 256, "CausalTransformer": 32, "ContinuousSequenceModel": 32,
                       "ByteNet": 32, "EncoderDecoderTransformer": 32}
FALLBACK_CHUNK_SIZE = 64


class Generator:
    """Drive an exported model on `backend` (a `serving.backend.Backend`)."""

    @classmethod
    def from_preset(cls, path: str | os.PathLike, backend: str | None = None,
                    chunk_size: int | None = None,
                    manifest: str | os.PathLike | dict[str, Any] | None = None) -> Generator:
        """A Generator on an exported model: an artifact directory (SavedModel, TFLite,
        ONNX), a `.tflite` file or a TF Serving URL; `backend` is inferred from the path
        when omitted (`serving.backend.make_backend`)."""
        from serving.backend import make_backend

        return cls(make_backend(backend, path, manifest), chunk_size=chunk_size)

    def __init__(self, backend: Backend, spec: GenerationSpec | None = None,
                 start_id: int | None = None, chunk_size: int | None = None) -> None:
        self.backend = backend
        if spec is None:
            manifest = backend.manifest()
            if manifest is not None:
                spec = GenerationSpec.from_manifest(manifest)
            elif start_id is not None:
                spec = GenerationSpec.from_signatures(backend.signatures, start_id)
            else:
                raise ValueError(f"No manifest for the {backend.name} backend: pass the "
                                 f"artifact's generation_spec.json or a start_id.")
        self.spec = spec
        self.chunk_size = self._check_chunk_size(
            self.default_chunk_size() if chunk_size is None else chunk_size)

    def default_chunk_size(self) -> int:
        """One image row for image models, else `DEFAULT_CHUNK_SIZES` by family."""
        if self.spec.image_shape is not None:
            return int(self.spec.image_shape[1])
        return DEFAULT_CHUNK_SIZES.get(self.spec.family, FALLBACK_CHUNK_SIZE)

    @staticmethod
    def _check_chunk_size(chunk_size):
        if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
            raise ValueError(f"`chunk_size` must be a positive integer (samples per round "
                             f"trip; 1 = one sample_step per sample); received {chunk_size!r}.")
        return int(chunk_size)

    # ----------------------------------------------------------------- public API
    def generate(self, num_steps: int, batch_size: int = 1, seed: int = 0,
                 callback: Callback | None = None, progress: bool = False,
                 use_graph_loop: bool = False, chunk_size: int | None = None,
                 **options: Any) -> dict[str, np.ndarray]:
        """Sample up to `num_steps` values per row -> {"x": [B, T, *event], "lengths": [B]}
        (plus "images" [B, H, W, C] when an image model generates whole images).

        Options: `prompt` [B, P, *event], `conditions` {name: array}, `temperature`,
        `top_k`, `top_p` (scalars or [B]), `stop_token`, `lengths` (per-row limits [B]),
        `pad_value`. `callback(t0, values [B, k, *event], run)` is called after every chunk
        (steps t0 .. t0 + k - 1); `chunk_size` overrides the generator's."""
        if use_graph_loop:
            return self._graph_loop(num_steps, batch_size, seed, **options)
        run = self.start(num_steps, batch_size, seed, **options)
        return self.finish(run, callback=callback, progress=progress, chunk_size=chunk_size)

    def stream(self, num_steps: int, batch_size: int = 1, seed: int = 0,
               chunk_size: int | None = None,
               **options: Any) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(t0, values [B, k, *event])` after every chunk (steps t0 .. t0 + k - 1);
        values hold pads for ended rows."""
        run = self.start(num_steps, batch_size, seed, **options)
        while not run.finished:
            t0 = run.t
            yield t0, self.advance(run, chunk_size)

    def start(self, num_steps: int, batch_size: int = 1, seed: int = 0,
              prompt: ArrayLike | None = None, conditions: Mapping[str, ArrayLike] | None = None,
              temperature: ArrayLike = 1.0, top_k: ArrayLike = 0, top_p: ArrayLike = 1.0,
              stop_token: int | None = None, lengths: ArrayLike | None = None,
              pad_value: int | None = None) -> GenerationRun:
        """A fresh `GenerationRun` (state initialised and the prompt prefilled)."""
        spec = self.spec
        if prompt is not None:
            prompt = np.asarray(prompt, spec.x_dtype)
            batch_size = prompt.shape[0]
        prompt_length = 0 if prompt is None else prompt.shape[1]
        conditions, batch, limits = self._prepare(conditions, batch_size, prompt_length,
                                                  num_steps, lengths)
        _check_prompt_rows(prompt, batch)
        noise = noise_for(seed, batch, num_steps, spec.noise_shape)
        controls = _controls(temperature, top_k, top_p, batch)
        state = self._init_state(batch, conditions)
        x_prev = np.full((batch,) + spec.event_shape, spec.start_id, spec.x_dtype)
        if prompt is not None and prompt.shape[1] > 0:
            shifted = np.concatenate([x_prev[:, None], prompt[:, :-1]], axis=1)
            out = self.backend.run(contract.PREFILL, {
                contract.X: shifted, **_state_inputs(state), **self._whole(conditions,
                                                                           contract.PREFILL)})
            state = _state_outputs(out, spec.state_keys)
            x_prev = prompt[:, -1]
        pad = pad_value if pad_value is not None else (stop_token if stop_token is not None
                                                       else 0)
        x = np.full((batch, int(num_steps)) + spec.event_shape, pad, spec.x_dtype)
        return GenerationRun(state=state, x_prev=x_prev, x=x, noise=noise, controls=controls,
                             conditions=conditions, limits=limits,
                             done=limits <= 0, lengths=np.zeros(batch, np.int32),
                             stop_token=stop_token, pad_value=int(pad))

    def step(self, run: GenerationRun) -> np.ndarray:
        """One `sample_step` round trip; returns the values written at step `run.t`."""
        feeds = {contract.X_PREV: run.x_prev, contract.NOISE: run.noise[:, run.t],
                 **run.controls, **_state_inputs(run.state),
                 **self.spec.step_conditions_at(run.conditions,
                                                run.state[contract.INDEX_KEY])}
        out = self.backend.run(contract.SAMPLE_STEP, feeds)
        run.state = _state_outputs(out, self.spec.state_keys)
        return run.record(out[contract.X_NEXT], out.get(contract.STOP))

    def chunk(self, run: GenerationRun, size: int) -> np.ndarray:
        """One `sample_chunk` round trip of min(size, steps left) steps; returns the values
        written at steps [run.t, run.t + k)."""
        k = min(int(size), run.num_steps - run.t)
        spec = self.spec
        # no forced values (prompt_length 0); one column, not zero: JSON cannot carry the
        # event dims of an empty [B, 0, C] array
        empty = np.zeros((run.batch_size, 1) + spec.event_shape, spec.x_dtype)
        feeds = {contract.X_PREV: run.x_prev, contract.NOISE: run.noise[:, run.t:run.t + k],
                 **run.controls, **_state_inputs(run.state), contract.PROMPT: empty,
                 contract.PROMPT_LENGTH: np.zeros(run.batch_size, np.int32),
                 **spec.chunk_conditions_at(run.conditions, run.state[contract.INDEX_KEY], k)}
        out = self.backend.run(contract.SAMPLE_CHUNK, feeds)
        run.state = _state_outputs(out, spec.state_keys)
        if spec.samples_stop:
            return run.record_chunk(out[contract.X], out[contract.STOP], out[contract.LENGTHS])
        return run.record_chunk(out[contract.X])

    def advance(self, run: GenerationRun, chunk_size: int | None = None,
                max_steps: int | None = None) -> np.ndarray:
        """One round trip: a chunk (`chunk_size`, default the generator's; at most
        `max_steps`) or, where chunks cannot serve the run, one `sample_step`."""
        size = self.chunk_size if chunk_size is None else self._check_chunk_size(chunk_size)
        if max_steps is not None:
            size = min(size, int(max_steps))
        if size > 1 and self._chunks_serve(run):
            return self.chunk(run, size)
        return self.step(run)[:, None]

    def _chunks_serve(self, run):
        """The artifact has `sample_chunk` and its baked stop token is the run's (a chunk
        ends rows at the exported token; the host applies any other)."""
        baked = self.spec.decoding.get("stop_token")
        return self.backend.has(contract.SAMPLE_CHUNK) and baked in (None, run.stop_token)

    def finish(self, run: GenerationRun, callback: Callback | None = None,
               progress: bool = False, max_steps: int | None = None,
               chunk_size: int | None = None) -> dict[str, np.ndarray]:
        """Run `run` chunk by chunk until it ends (or `max_steps` more steps: pause at that
        step, whatever the chunk size; `run.save` it)."""
        bar = _progress(run, progress)
        taken = 0
        while not run.finished and (max_steps is None or taken < max_steps):
            t0 = run.t
            values = self.advance(run, chunk_size,
                                  None if max_steps is None else max_steps - taken)
            taken += run.t - t0
            if bar is not None:
                bar.update(run.t - t0)
            if callback is not None:
                callback(t0, values, run)
        if bar is not None:
            bar.close()
        return self._result(run.x, run.lengths)

    def resume(self, path: str | os.PathLike, **kwargs: Any) -> dict[str, np.ndarray]:
        """Load a run saved with `GenerationRun.save` and finish it."""
        return self.finish(GenerationRun.load(path), **kwargs)

    # ----------------------------------------------------------------- helpers
    def _prepare(self, conditions, batch_size, prompt_length, num_steps, lengths):
        """-> (checked conditions as arrays, batch, per-row step limits [B]). A source is
        padded and checked (`serving.source_input`) and sets the batch; the limits are
        `lengths` (default num_steps) capped by the target length rule."""
        spec, conditions = self.spec, dict(conditions or {})
        source = spec.source
        if source is not None:
            if contract.LOCAL_CONDITION not in conditions:
                raise ValueError(f"This {source.family} generates from a source: pass "
                                 f"conditions={{'{contract.LOCAL_CONDITION}': ids}} "
                                 f"({contract.SOURCE_LAYOUT}, or a list of id rows).")
            ids = source.pad(conditions[contract.LOCAL_CONDITION])
            if int(batch_size) not in (1, len(ids)):
                raise ValueError(f"batch_size={batch_size}, but the source has {len(ids)} "
                                 f"rows; one row is generated per source (drop batch_size).")
            conditions[contract.LOCAL_CONDITION], batch_size = ids, len(ids)
        conditions = {k: np.asarray(v) for k, v in conditions.items()}
        batch = int(batch_size)
        spec.check_condition_values(conditions, batch)
        spec.check_conditions(conditions, prompt_length + int(num_steps) - 1)
        limits = (np.full(batch, num_steps, np.int32) if lengths is None
                  else np.minimum(np.asarray(lengths, np.int32).reshape(batch), num_steps))
        if source is not None:
            limits = np.minimum(limits, source.step_limits(
                conditions[contract.LOCAL_CONDITION], prompt_length, num_steps))
        return conditions, batch, limits.astype(np.int32)

    def _init_state(self, batch, conditions):
        feeds = self._whole(conditions, contract.INIT_STATE)
        if contract.BATCH_TEMPLATE in self.backend.signatures[contract.INIT_STATE]["inputs"]:
            feeds[contract.BATCH_TEMPLATE] = np.zeros(batch, np.int32)
        return _state_outputs(self.backend.run(contract.INIT_STATE, feeds),
                              self.spec.state_keys)

    def _whole(self, conditions, signature):
        wanted = self.backend.signatures[signature]["inputs"]
        return {k: v for k, v in conditions.items() if k in wanted}

    def _graph_loop(self, num_steps, batch_size, seed, conditions=None, temperature=1.0,
                    top_k=0, top_p=1.0, stop_token=None, lengths=None, pad_value=None,
                    prompt=None):
        """The in-graph `generate` signature on the same noise; stops and per-row lengths
        are applied on the host, so results equal the step loop's. A prompt [B, P] is sent
        as the signature's teacher-forced `prompt` (P + num_steps positions, prompt_length
        P) with the noise shifted by P, and the P prompt positions are cut off again."""
        spec = self.spec
        prompt = (np.zeros((int(batch_size), 0) + spec.event_shape, spec.x_dtype)
                  if prompt is None else np.asarray(prompt, spec.x_dtype))
        length = prompt.shape[1]
        conditions, batch, limits = self._prepare(conditions, prompt.shape[0], length,
                                                  num_steps, lengths)
        if lengths is not None or spec.source is not None:
            lengths = limits
        if length == 0:  # no prompt: the source may have set the batch
            prompt = np.zeros((batch, 0) + spec.event_shape, spec.x_dtype)
        _check_prompt_rows(prompt, batch)
        noise = noise_for(seed, batch, num_steps, spec.noise_shape)
        noise = np.concatenate([np.zeros((batch, length) + noise.shape[2:], np.float32),
                                noise], 1)
        feeds = {contract.NOISE: noise,
                 contract.PROMPT: np.concatenate(
                     [prompt, np.zeros((batch, int(num_steps)) + spec.event_shape,
                                       spec.x_dtype)], 1),
                 contract.PROMPT_LENGTH: np.full(batch, length, np.int32),
                 **_controls(temperature, top_k, top_p, batch),
                 **self._whole(conditions, contract.GENERATE)}
        generated = self.backend.run(contract.GENERATE, feeds)
        x = generated[contract.X][:, length:]
        if self.spec.samples_stop:  # rows ended at their sampled stop flag in the graph
            ends = np.asarray(generated[contract.LENGTHS]) - length
            lengths = ends if lengths is None else np.minimum(ends, np.asarray(lengths))
        out = truncate(x, stop_token, lengths, pad_value)
        return self._result(out[contract.X], out[contract.LENGTHS])

    def _result(self, x, lengths):
        out = {contract.X: x, contract.LENGTHS: lengths}
        images = self.spec.to_images(x)
        if images is not None:
            out[IMAGES] = images
        return out


def truncate(x: ArrayLike, stop_token: int | None = None, lengths: ArrayLike | None = None,
             pad_value: int | None = None) -> dict[str, np.ndarray]:
    """Apply stop tokens and per-row limits to whole sequences x [B, T, *event]."""
    x = np.array(x)
    batch, steps = x.shape[:2]
    flat = x.reshape(batch, steps, -1)
    ends = np.full(batch, steps, np.int64)
    if stop_token is not None:
        hits = np.any(flat == stop_token, axis=2)
        ends = np.where(hits.any(axis=1), hits.argmax(axis=1), steps)
    if lengths is not None:
        ends = np.minimum(ends, np.asarray(lengths).reshape(batch))
    pad = pad_value if pad_value is not None else (stop_token if stop_token is not None else 0)
    keep = np.arange(steps)[None, :] < ends[:, None]
    x[~keep] = pad
    return {contract.X: x, contract.LENGTHS: ends.astype(np.int32)}


def noise_for(seed: int, batch: int, num_steps: int,
              noise_shape: Sequence[int]) -> np.ndarray:
    """The uniforms every backend consumes for `seed`: [B, num_steps, *noise_shape]."""
    rng = np.random.default_rng(int(seed))
    return rng.random((int(batch), int(num_steps)) + tuple(noise_shape), dtype=np.float32)


def _batch(name, value, dtype, batch):
    """A scalar (one value for every row) or exactly one value per row -> [batch]; a
    batch-1 array beside B rows is refused, not broadcast."""
    array = np.asarray(value)
    if array.ndim > 1 or (array.ndim == 1 and array.shape[0] != batch):
        raise ValueError(f"`{name}` has shape {list(array.shape)}; a scalar or one value per "
                         f"row ([{batch}]) is expected.")
    if np.dtype(dtype).kind in "iu" and array.size and (
            array.dtype.kind not in "iub" and not np.all(array == np.round(array))):
        raise ValueError(f"`{name}` holds {array.reshape(-1).tolist()}; integers are "
                         f"expected.")
    return np.broadcast_to(array.astype(dtype), (batch,)).copy()


def _check_prompt_rows(prompt, batch):
    if prompt is not None and prompt.shape[0] != batch:
        raise ValueError(f"`prompt` has {prompt.shape[0]} rows; the source has {batch}: give "
                         "one prompt row per source.")


def _controls(temperature, top_k, top_p, batch):
    """The sampling controls as [batch] arrays, checked as the server checks them
    (`keras_ar.contract.feed_value_errors`: temperature >= 0, top_k >= 0, top_p in (0, 1])."""
    controls = {contract.TEMPERATURE: _batch(contract.TEMPERATURE, temperature, np.float32,
                                             batch),
                contract.TOP_K: _batch(contract.TOP_K, top_k, np.int32, batch),
                contract.TOP_P: _batch(contract.TOP_P, top_p, np.float32, batch)}
    errors = contract.feed_value_errors(controls)
    if errors:
        raise ValueError(" ".join(errors))
    return controls


def _state_inputs(state):
    return {contract.state_input_name(k): v for k, v in state.items()}


def _state_outputs(outputs, keys):
    return {k: outputs[contract.state_output_name(k)] for k in keys}


def _progress(run, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=run.num_steps, initial=run.t, unit="step", leave=False)
