"""Input value checks that still run when training is compiled with XLA.

The value checks of `keras_ar.ops.validation` (pixel levels or token ids out of range, NaN in
conditions, lengths beyond the sequence) are `tf.debugging` asserts inside a graph. XLA drops
them ("Ignoring Assert operator"), so a model compiled with `jit_compile=True` would train on
bad data without a word: XLA's gather clamps out-of-range ids. A model compiled that way
therefore checks its data *before* Keras' compiled step (`AutoregressiveModel.fit`,
`evaluate`, `predict` and the `*_on_batch` methods call `checked_source`):

* a `tf.data.Dataset` (inputs and `validation_data`) gets `map(model.check_inputs)`: a bad
  batch raises `InvalidArgumentError` from the iterator, before the step that would read it,
  so no weight changes;
* NumPy arrays, tensors and dicts of them are checked eagerly, whole: `ValueError`;
* an already distributed dataset cannot be mapped: build it from datasets mapped with
  `model.check_inputs` (the pipelines' Trainer does). Other sources (generators,
  `PyDataset`) pass unchecked.

Without `jit_compile` nothing changes: the same checks run inside the step's graph.
"""

import numpy as np
import tensorflow as tf


def gated(check, inputs):
    """Run `check(inputs)`; in a graph, return `inputs` with every tensor gated on the ops the
    check made (its asserts), so nothing that reads them can run before the checks pass."""
    if tf.executing_eagerly():
        check(inputs)
        return inputs
    graph = tf.compat.v1.get_default_graph()
    before = len(graph.get_operations())
    check(inputs)
    made = graph.get_operations()[before:]
    with tf.control_dependencies(made):
        return tf.nest.map_structure(tf.identity, inputs)


def _check_element(model, element):
    """A dataset element is the inputs, or a tuple whose first entry is."""
    if isinstance(element, tuple):
        return (model.check_inputs(element[0]),) + element[1:]
    return model.check_inputs(element)


def _is_array_data(data):
    if isinstance(data, dict):
        return all(_is_array_data(value) for value in data.values())
    return isinstance(data, (np.ndarray, tf.Tensor))


def checked_source(model, data):
    """`data` for `fit`/`evaluate`/`predict` with `model.check_inputs` applied (see above)."""
    if isinstance(data, tf.data.Dataset):
        return data.map(lambda *element: _check_element(
            model, element if len(element) > 1 else element[0]))
    if _is_array_data(data):
        model.check_inputs(data)
    return data


def checked_metadata(metadata):
    """What decoding needs beyond the weights (sample rate, speaker or class names, a
    vocabulary...): a JSON object, saved with the model and copied into every exported
    manifest's `decoding`."""
    import json

    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValueError(f"`metadata` must be a dict of JSON values (e.g. {{'sample_rate': "
                         f"16000}}); received {type(metadata).__name__}.")
    try:
        json.dumps(metadata)
    except TypeError as error:
        raise ValueError(f"`metadata` must hold JSON values only; {error}.") from None
    return dict(metadata)
