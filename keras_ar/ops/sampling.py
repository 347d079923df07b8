"""Sampling from categorical distributions with caller-supplied uniform noise.

Randomness is an input: one uniform u in [0, 1) per categorical draw, turned into a class by
the inverse CDF (the smallest j with F(j) > u * F(K-1)). Every op used here (sort, cumsum,
equality masks, where) converts to TFLite builtins and to ONNX, so the same noise gives the
same sample on TensorFlow, TFLite and onnxruntime. Sampling controls are per-row tensors:

* ``temperature`` [N]: logits are divided by it; ``<= 0`` means greedy (argmax);
* ``top_k`` [N] int32: keep the k most likely classes; ``0`` keeps all;
* ``top_p`` [N]: keep the smallest set of most likely classes whose mass reaches p
  (nucleus sampling, Holtzman et al. 2019); ``>= 1`` keeps all.
"""

import tensorflow as tf

_NEG_INF = -1e9


def select_by_index(values, index):
    """values [N, K], index int [N] -> values[n, index[n]] as [N], with an equality mask."""
    depth = tf.shape(values)[-1]
    mask = tf.equal(tf.range(depth)[None, :], tf.cast(index, tf.int32)[:, None])
    return tf.reduce_sum(tf.where(mask, values, tf.zeros_like(values)), axis=-1)


def apply_top_k(logits, top_k):
    """Mask all but the `top_k` largest logits per row (top_k <= 0: keep all). [N, K]."""
    num_classes = tf.shape(logits)[-1]
    top_k = tf.cast(top_k, tf.int32)
    k = tf.where(top_k > 0, tf.minimum(top_k, num_classes), num_classes)
    sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
    kth = select_by_index(sorted_logits, k - 1)
    return tf.where(logits >= kth[:, None], logits, tf.fill(tf.shape(logits), _NEG_INF))


def apply_top_p(probs, top_p):
    """Zero all but the nucleus of mass `top_p` per row (top_p >= 1: keep all). [N, K]."""
    total = tf.reduce_sum(probs, axis=-1, keepdims=True)
    sorted_probs = tf.sort(probs, axis=-1, direction="DESCENDING")
    mass_before = (tf.cumsum(sorted_probs, axis=-1) - sorted_probs) / total
    keep_sorted = mass_before < tf.cast(top_p, probs.dtype)[:, None]
    threshold = tf.reduce_min(
        tf.where(keep_sorted, sorted_probs, tf.fill(tf.shape(probs), 2.0)), axis=-1)
    return tf.where(probs >= threshold[:, None], probs, tf.zeros_like(probs))


def inverse_cdf_sample(probs, uniform):
    """Class j with F(j-1) <= u * F(K-1) < F(j); probs [N, K] unnormalised, uniform [N]."""
    cdf = tf.cumsum(probs, axis=-1)
    target = uniform[:, None] * cdf[:, -1:]
    index = tf.reduce_sum(tf.cast(cdf <= target, tf.int32), axis=-1)
    return tf.minimum(index, tf.shape(probs)[-1] - 1)


def sample_categorical(logits, uniform, temperature, top_k, top_p):
    """Draw one class per row. logits [N, K]; uniform, temperature, top_k, top_p [N].

    Returns int32 [N]. Greedy rows (temperature <= 0) return the argmax and ignore noise.
    """
    logits = tf.cast(logits, tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    greedy = tf.cast(tf.argmax(logits, axis=-1), tf.int32)
    scaled = logits / tf.maximum(temperature, 1e-6)[:, None]
    # The sorts behind top-k / top-p run only when some row asks for them (a `tf.cond`:
    # TFLite IF, ONNX If); plain sampling skips two sorts of K values per draw.
    needs_filter = tf.logical_or(tf.reduce_any(tf.cast(top_k, tf.int32) > 0),
                                 tf.reduce_any(tf.cast(top_p, tf.float32) < 1.0))
    probs = tf.cond(needs_filter, lambda: _filtered_probs(scaled, top_k, top_p),
                    lambda: _probs(scaled))
    sampled = inverse_cdf_sample(probs, tf.cast(uniform, tf.float32))
    return tf.where(temperature > 0.0, sampled, greedy)


def _probs(scaled):
    return tf.exp(scaled - tf.reduce_max(scaled, axis=-1, keepdims=True))


def _filtered_probs(scaled, top_k, top_p):
    return apply_top_p(_probs(apply_top_k(scaled, top_k)), top_p)
