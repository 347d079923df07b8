"""The exported signatures, built generically from any `AutoregressiveModel`.

Each signature is a `tf.function` over named `tf.TensorSpec`s (every input batch-major) that
returns a dict of named outputs. The specs come from the model only: `state_spec`,
`noise_spec`, `event_shape`/`x_dtype`/`x_spec` and `condition_specs(per_step)`, so a new model
family needs no change here.

    init_state(conditions | batch_template)           -> new_state_*
    prefill(x, state_*, conditions)                   -> params, new_state_*
    step(x_prev, state_*, step conditions)            -> params, new_state_*
    sample_step(x_prev, state_*, noise, temperature, top_k, top_p, step conditions)
                                                      -> x_next, params, new_state_*
    sample_chunk(x_prev, state_*, noise [B, K, ...], temperature, top_k, top_p, prompt,
                 prompt_length, chunk conditions)     -> x [B, K, ...], lengths, stop,
                                                         new_state_*
    log_prob(x, lengths, conditions)                  -> log_prob  (lengths: families with
                                                         `scores_lengths`; not images)
    generate(noise, prompt, prompt_length, temperature, top_k, top_p, conditions)
                                                      -> decoded, x, lengths
    generate_seeded(seed, num_steps, prompt, prompt_length, temperature, top_k, top_p,
                    conditions)                       -> decoded, x, lengths  (SavedModel only)

`prefill`'s `x` is the `x_prev` stream (the start token, then the prefix without its last
value), exactly as `model.prefill` takes it. `generate`'s `prompt` [B, P, *event] is laid out like
its output `x`: row i's first `prompt_length[i]` positions are teacher-forced from it (0: no
prompt; P may be 0), the rest sampled (`model.generate_from_noise(..., prompt_length=)`).
`generate_seeded` row i uses the noise
`stateless_uniform([num_steps, *noise_spec], seed=[seed_i, 0])`, so a row's samples do not
depend on the batch it is served in. Everything is traced with `runtime_checks(False)`: no
`Assert` op reaches an exported graph.
"""

import dataclasses

import tensorflow as tf

from keras_ar import contract
from keras_ar.ops import validation

DECODED = "decoded"
NUM_STEPS = "num_steps"
SAVED_MODEL_ONLY = (contract.GENERATE_SEEDED,)
ALL_SIGNATURES = contract.ENDPOINTS + (contract.GENERATE_SEEDED,)


@dataclasses.dataclass
class Signature:
    """One endpoint: its name, ordered input specs and the traced `tf.function`."""

    name: str
    inputs: list
    function: object

    def concrete(self):
        return self.function.get_concrete_function(*self.inputs)

    def output_specs(self):
        outputs = self.concrete().structured_outputs
        return {k: tf.TensorSpec(v.shape, v.dtype, k) for k, v in sorted(outputs.items())}


def _named(spec, name, batch=None):
    shape = spec.shape.as_list()
    if batch is not None:
        shape[0] = batch
    return tf.TensorSpec(shape, spec.dtype, name)


def _state_specs(model, batch):
    spec = model.state_spec(None)
    return [_named(spec[key], contract.state_input_name(key), batch) for key in sorted(spec)]


def _condition_specs(model, per_step, batch):
    specs = model.condition_specs(per_step=per_step)
    return [_named(specs[key], key, batch) for key in sorted(specs)]


def _controls(batch):
    return [tf.TensorSpec([batch], tf.float32, contract.TEMPERATURE),
            tf.TensorSpec([batch], tf.int32, contract.TOP_K),
            tf.TensorSpec([batch], tf.float32, contract.TOP_P)]


def _split(feeds):
    """feeds -> (state dict, conditions dict) by tensor name."""
    state = {contract.state_key_from_name(k): v for k, v in feeds.items()
             if k.startswith(contract.STATE_INPUT_PREFIX)}
    conditions = {k: v for k, v in feeds.items() if k in contract.CONDITION_KEYS}
    return state, conditions


def _state_outputs(state):
    return {contract.state_output_name(k): v for k, v in state.items()}


def _bodies(model, stop_token):
    def init_state(feeds):
        _, conditions = _split(feeds)
        first = feeds[contract.BATCH_TEMPLATE] if contract.BATCH_TEMPLATE in feeds else next(
            iter(conditions.values()))
        return _state_outputs(model.init_state(tf.shape(first)[0], conditions or None))

    def prefill(feeds):
        state, conditions = _split(feeds)
        params, new_state = model.prefill(feeds[contract.X], state, conditions or None)
        return {contract.PARAMS: params, **_state_outputs(new_state)}

    def step(feeds):
        state, conditions = _split(feeds)
        params, new_state = model.step(feeds[contract.X_PREV], state, conditions or None)
        return {contract.PARAMS: params, **_state_outputs(new_state)}

    def sample_step(feeds):
        state, conditions = _split(feeds)
        x_next, params, new_state = model.sample_step(
            feeds[contract.X_PREV], state, feeds[contract.NOISE], feeds[contract.TEMPERATURE],
            feeds[contract.TOP_K], feeds[contract.TOP_P], conditions or None)
        out = {contract.X_NEXT: x_next, contract.PARAMS: params, **_state_outputs(new_state)}
        if model.samples_stop:
            out[contract.STOP] = tf.cast(model.stop_flags(
                x_next, params, feeds[contract.NOISE], feeds[contract.TEMPERATURE]), tf.int32)
        return out

    def sample_chunk(feeds):
        state, conditions = _split(feeds)
        out, new_state = model.sample_chunk(
            feeds[contract.X_PREV], state, feeds[contract.NOISE], feeds[contract.TEMPERATURE],
            feeds[contract.TOP_K], feeds[contract.TOP_P], conditions or None,
            prompt=feeds[contract.PROMPT], prompt_length=feeds[contract.PROMPT_LENGTH],
            stop_token=stop_token)
        return {**out, **_state_outputs(new_state)}

    def log_prob(feeds):
        _, conditions = _split(feeds)
        scored = {contract.X: feeds[contract.X], **conditions}
        if contract.LENGTHS in feeds:
            scored[contract.LENGTHS] = feeds[contract.LENGTHS]
        return {contract.LOG_PROB_OUTPUT: model.log_prob(scored)}

    def generate(feeds):
        _, conditions = _split(feeds)
        return _generated(model, feeds[contract.NOISE], feeds, conditions, stop_token)

    def generate_seeded(feeds):
        _, conditions = _split(feeds)
        steps = tf.reduce_max(feeds[NUM_STEPS])
        noise_shape = tf.concat([[steps], tf.constant(model.noise_spec, tf.int32)], 0)
        noise = tf.map_fn(
            lambda s: tf.random.stateless_uniform(noise_shape, tf.stack([s, 0])),
            feeds[contract.SEED], fn_output_signature=tf.float32)
        return _generated(model, noise, feeds, conditions, stop_token)

    return dict(init_state=init_state, prefill=prefill, step=step, sample_step=sample_step,
                sample_chunk=sample_chunk, log_prob=log_prob, generate=generate,
                generate_seeded=generate_seeded)


def _generated(model, noise, feeds, conditions, stop_token):
    out = model.generate_from_noise(
        noise, prompt=feeds[contract.PROMPT], prompt_length=feeds[contract.PROMPT_LENGTH],
        conditions=conditions or None, temperature=feeds[contract.TEMPERATURE],
        top_k=feeds[contract.TOP_K], top_p=feeds[contract.TOP_P], stop_token=stop_token)
    return {DECODED: model.decode(out[contract.X]), contract.X: out[contract.X],
            contract.LENGTHS: out[contract.LENGTHS]}


def input_specs(model, batch=None):
    """`{signature: [tf.TensorSpec, ...]}` in argument order; `batch` fixes the batch dim."""
    x_seq = tf.TensorSpec([batch, None, *model.event_shape], model.x_dtype, contract.X)
    x_prev = tf.TensorSpec([batch, *model.event_shape], model.x_dtype, contract.X_PREV)
    noise = tf.TensorSpec([batch, *model.noise_spec], tf.float32, contract.NOISE)
    noise_seq = tf.TensorSpec([batch, None, *model.noise_spec], tf.float32, contract.NOISE)
    prompt = [tf.TensorSpec([batch, None, *model.event_shape], model.x_dtype, contract.PROMPT),
              tf.TensorSpec([batch], tf.int32, contract.PROMPT_LENGTH)]
    state = _state_specs(model, batch)
    whole = _condition_specs(model, False, batch)
    per_step = _condition_specs(model, True, batch)
    chunk = [_named(spec, name, batch)
             for name, spec in sorted(model.chunk_condition_specs().items())]
    template = whole or [tf.TensorSpec([batch], tf.int32, contract.BATCH_TEMPLATE)]
    return {
        contract.INIT_STATE: template,
        contract.PREFILL: [x_seq] + state + whole,
        contract.STEP: [x_prev] + state + per_step,
        contract.SAMPLE_STEP: [x_prev] + state + [noise] + _controls(batch) + per_step,
        contract.SAMPLE_CHUNK: [x_prev] + state + [noise_seq] + _controls(batch) + prompt
                               + chunk,
        contract.LOG_PROB: [_named(model.x_spec(), contract.X, batch)]
                           + _lengths_spec(model, batch) + whole,
        contract.GENERATE: [noise_seq] + prompt + _controls(batch) + whole,
        contract.GENERATE_SEEDED: [tf.TensorSpec([batch], tf.int32, contract.SEED),
                                   tf.TensorSpec([batch], tf.int32, NUM_STEPS)]
                                  + prompt + _controls(batch) + whole,
    }


def _lengths_spec(model, batch):
    """`log_prob`'s `lengths` int32 [B] (valid positions per row) where sequences have one."""
    if not getattr(model, "scores_lengths", False):
        return []
    return [tf.TensorSpec([batch], tf.int32, contract.LENGTHS)]


def build_signatures(model, names=ALL_SIGNATURES, batch=None, stop_token=None):
    """`{name: Signature}` for `names`; outputs are identities named after their keys.

    A model's signatures are built once per (`batch`, `stop_token`) and shared by every later
    call (kept on the model): each `tf.function` traces once, and the SavedModel, TFLite and
    ONNX exports and the parity gate of one model reuse that trace instead of tracing the
    whole model again. Variables are captured by reference, so new weights are exported."""
    unknown = sorted(set(names) - set(ALL_SIGNATURES))
    if unknown:
        raise ValueError(f"Unknown signatures {unknown}; choose from {list(ALL_SIGNATURES)}.")
    # the model's __dict__ directly: Keras would track (and save) an attribute set on it
    cache = model.__dict__.setdefault(_CACHE, {}).setdefault((batch, stop_token), {})
    if not cache:
        cache.update(bodies=_bodies(model, stop_token), specs=input_specs(model, batch),
                     built={})
    for name in names:
        if name not in cache["built"]:
            specs = cache["specs"][name]
            cache["built"][name] = Signature(name, specs, _function(cache["bodies"][name],
                                                                    specs))
    return {name: cache["built"][name] for name in names}


_CACHE = "_keras_ar_export_signatures"


def _function(body, specs):
    names = [spec.name for spec in specs]

    def endpoint(*args):
        with validation.runtime_checks(False):
            outputs = body(dict(zip(names, args)))
        return {key: tf.identity(value, name=key) for key, value in outputs.items()}

    return tf.function(endpoint, input_signature=specs, autograph=False)
