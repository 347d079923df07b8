"""Conditioning reaches the output, per family and per kind of condition.

For every family and every kind it supports (class ids, float vectors, local sequences or
maps), a tiny model's params, teacher-forced (`call`) and step by step (`init_state` +
`step`), must change when that one condition changes and be identical when it does not.
Kinds a family does not take are refused (at construction, or when passed). WaveNet's local
condition is causal in its frames: frames after position t's frame leave params <= t alone.
"""

import keras
import numpy as np
import pytest

from keras_ar import contract
from keras_ar.models import (
    CausalTransformer,
    ContinuousSequenceModel,
    GatedPixelCNN,
    PixelCNN,
    PixelCNNPlusPlus,
    WaveNet,
)

BATCH, LENGTH = 2, 8
IMAGE = (3, 3, 1)  # one channel: `step` is exact (no lagged colour channels)

FAMILIES = {
    "wavenet": (WaveNet, dict(num_classes=16, dilations=[1, 2], residual_channels=4,
                              skip_channels=4)),
    "transformer": (CausalTransformer, dict(vocab_size=11, num_layers=1, num_heads=2,
                                            hidden_dim=8, max_length=16)),
    "continuous": (ContinuousSequenceModel, dict(feature_dim=2, num_mixtures=2, num_layers=2,
                                                 hidden_dim=8, max_length=16)),
    "pixel_cnn": (PixelCNN, dict(image_shape=IMAGE, num_levels=4, num_layers=1, filters=4,
                                 first_kernel_size=3)),
    "gated_pixel_cnn": (GatedPixelCNN, dict(image_shape=IMAGE, num_levels=4, num_layers=1,
                                            filters=4, first_kernel_size=3)),
    "pixel_cnn_plus_plus": (PixelCNNPlusPlus, dict(image_shape=(4, 4, 1), num_levels=8,
                                                   num_mixtures=2, num_layers=1, filters=4,
                                                   num_scales=2, dropout=0.0)),
}
GLOBAL_IDS, GLOBAL_VECTOR = dict(num_global_classes=3), dict(global_condition_dim=2)
LOCAL = {"wavenet": dict(local_condition_dim=2, local_hop=2),
         "transformer": dict(memory_dim=3, memory_length=4),  # cross-attended memory
         "continuous": dict(local_condition_dim=2),
         "gated_pixel_cnn": dict(local_condition_dim=2)}
CASES = [(family, kind, kwargs) for family in FAMILIES
         for kind, kwargs in (("class_ids", GLOBAL_IDS), ("vector", GLOBAL_VECTOR),
                              ("local", LOCAL.get(family)))
         if kwargs is not None]


def build(family, **conditioning):
    cls, kwargs = FAMILIES[family]
    keras.utils.set_random_seed(0)
    model = cls(**kwargs, **conditioning)
    rng = np.random.default_rng(1)
    for weight in model.weights:  # zero-initialised biases/projections: make them count
        value = np.asarray(weight.numpy())  # (positive: ReLUs stay alive in tiny models)
        if weight.trainable and value.size and not np.any(value):
            weight.assign(np.abs(rng.normal(scale=0.3, size=value.shape)).astype(value.dtype))
    return model


def _levels(model):
    for name in ("num_levels", "num_classes", "vocab_size"):
        if getattr(model, name, None):
            return int(getattr(model, name))
    return None


def example_x(model, rng):
    spec = model.x_spec()
    shape = [BATCH] + [LENGTH if d is None else d for d in spec.shape.as_list()[1:]]
    if spec.dtype.is_floating:
        return rng.normal(size=shape).astype("float32")
    return rng.integers(0, _levels(model), size=shape).astype("int32")


def example_conditions(model, rng):
    """Whole conditions with distinct values per row (ids 0 and 1 for class ids)."""
    out = {}
    for name, spec in model.condition_specs(False).items():
        shape = [BATCH] + [_local_size(model, i, d) for i, d in
                           enumerate(spec.shape.as_list()[1:])]
        if spec.dtype.is_integer:
            out[name] = np.arange(BATCH, dtype="int32") % model.num_global_classes
        else:
            out[name] = rng.normal(size=shape).astype("float32")
    return out


def _local_size(model, axis, dim):
    if dim is not None:
        return dim
    hop = getattr(model, "local_hop", 1)
    return -(-LENGTH // hop) if axis == 0 else dim


def changed(conditions, name, model):
    """A copy of `conditions` with `name` changed in every row."""
    out = dict(conditions)
    value = conditions[name]
    if value.dtype.kind == "i":
        out[name] = (value + 1) % model.num_global_classes
    else:
        out[name] = value + np.float32(1.5)
    return out


def teacher_forced(model, x, conditions):
    params = model({contract.X: x, **conditions})
    return np.asarray(model.params_to_sequence(params))


def stepped(model, x, conditions, steps=None):
    """Params of `step` over the first `steps` positions, fed the true previous values."""
    seq = np.asarray(model.to_sequence(x))
    steps = steps or seq.shape[1]
    start = np.full((BATCH,) + tuple(model.event_shape), model.start_id, seq.dtype)
    state = model.init_state(BATCH, conditions or None)
    out = []
    for t in range(steps):
        x_prev = start if t == 0 else seq[:, t - 1]
        per_step = model.step_conditions(conditions, state) if conditions else None
        params, state = model.step(x_prev, state, per_step)
        out.append(np.asarray(params))
    return np.stack(out, 1)


def _differs(a, b):
    return float(np.max(np.abs(a - b)))


@pytest.mark.parametrize("family,kind,kwargs", CASES, ids=[f"{f}-{k}" for f, k, _ in CASES])
def test_changing_the_condition_changes_call_and_step_params(family, kind, kwargs):
    model = build(family, **kwargs)
    rng = np.random.default_rng(2)
    x = example_x(model, rng)
    conditions = example_conditions(model, rng)
    name = contract.LOCAL_CONDITION if kind == "local" else contract.GLOBAL_CONDITION
    assert name in conditions, sorted(conditions)
    other = changed(conditions, name, model)

    base_call = teacher_forced(model, x, conditions)
    assert _differs(base_call[:, -1], teacher_forced(model, x[::-1], conditions)[:, -1]) > 0
    np.testing.assert_array_equal(base_call, teacher_forced(model, x, dict(conditions)))
    other_call = teacher_forced(model, x, other)
    for row in range(BATCH):  # every row moves with its own condition
        assert _differs(base_call[row], other_call[row]) > 1e-4, (family, kind, row)

    base_step = stepped(model, x, conditions)
    np.testing.assert_array_equal(base_step, stepped(model, x, dict(conditions)))
    # step is conditioned as the parallel pass is
    np.testing.assert_allclose(base_step, base_call, atol=1e-4, rtol=1e-4)
    other_step = stepped(model, x, other)
    for row in range(BATCH):
        assert _differs(base_step[row], other_step[row]) > 1e-4, (family, kind, row)
    np.testing.assert_allclose(other_step, other_call, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_class_ids_select_different_outputs_within_one_batch(family):
    """Rows with the same input but different class ids get different params; rows with the
    same id get identical ones."""
    model = build(family, **GLOBAL_IDS)
    x = example_x(model, np.random.default_rng(3))
    x = np.stack([x[0]] * 3)
    params = teacher_forced(model, x, {contract.GLOBAL_CONDITION: np.array([1, 2, 1], "int32")})
    np.testing.assert_array_equal(params[0], params[2])
    assert _differs(params[0], params[1]) > 1e-4


@pytest.mark.parametrize("family", ["pixel_cnn", "pixel_cnn_plus_plus"])
def test_families_without_local_conditioning_refuse_it(family):
    cls, kwargs = FAMILIES[family]
    with pytest.raises(ValueError, match="does not take local conditioning"):
        cls(**kwargs, local_condition_dim=2)


def test_transformer_takes_its_local_condition_as_a_memory_only():
    cls, kwargs = FAMILIES["transformer"]
    with pytest.raises((ValueError, TypeError), match="local_condition_dim"):
        cls(**kwargs, local_condition_dim=2)
    with pytest.raises(ValueError, match="memory_dim"):
        cls(**kwargs, memory_dim=3)  # a memory needs its length


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_both_global_kinds_at_once_are_refused(family):
    cls, kwargs = FAMILIES[family]
    with pytest.raises(ValueError, match="either `num_global_classes`"):
        cls(**kwargs, **GLOBAL_IDS, **GLOBAL_VECTOR)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_unconfigured_conditions_are_refused_when_passed(family):
    model = build(family)
    rng = np.random.default_rng(4)
    x = example_x(model, rng)
    for name, value in ((contract.GLOBAL_CONDITION, np.zeros([BATCH], "int32")),
                        (contract.LOCAL_CONDITION, np.zeros([BATCH, LENGTH, 2], "float32"))):
        with pytest.raises(ValueError, match=name):
            model({contract.X: x, name: value})
        with pytest.raises(ValueError, match=name):
            model.init_state(BATCH, {name: value})


@pytest.mark.parametrize("upsample", ["transposed", "repeat"])
def test_wavenet_local_frames_after_position_t_leave_params_up_to_t_alone(upsample):
    hop = 2
    model = build("wavenet", local_condition_dim=2, local_hop=hop, local_upsample=upsample)
    rng = np.random.default_rng(5)
    x = example_x(model, rng)
    conditions = example_conditions(model, rng)
    frames = conditions[contract.LOCAL_CONDITION].shape[1]
    base = teacher_forced(model, x, conditions)
    base_step = stepped(model, x, conditions)
    for frame in range(frames - 1):
        later = dict(conditions)
        local = conditions[contract.LOCAL_CONDITION].copy()
        local[:, frame + 1:] += 1.5
        later[contract.LOCAL_CONDITION] = local
        edge = (frame + 1) * hop  # first position whose frame changed
        for how, got, want in (("call", teacher_forced(model, x, later), base),
                               ("step", stepped(model, x, later), base_step)):
            np.testing.assert_array_equal(got[:, :edge], want[:, :edge],
                                          err_msg=f"{how}: frames > {frame} reached position "
                                                  f"< {edge}")
            assert _differs(got[:, edge:], want[:, edge:]) > 1e-4
    np.testing.assert_allclose(base_step, base, atol=1e-4, rtol=1e-4)
