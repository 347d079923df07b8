"""Stateless numeric helpers (TensorFlow)."""

from keras_ar.ops.linear_pcm import linear_decode, linear_encode
from keras_ar.ops.mu_law import mu_law_decode, mu_law_encode
from keras_ar.ops.sampling import (
    apply_top_k,
    apply_top_p,
    inverse_cdf_sample,
    sample_categorical,
    select_by_index,
)
from keras_ar.ops.validation import runtime_checks, runtime_checks_enabled

__all__ = [
    "linear_encode", "linear_decode", "mu_law_encode", "mu_law_decode", "apply_top_k",
    "apply_top_p", "inverse_cdf_sample",
    "sample_categorical", "select_by_index", "runtime_checks", "runtime_checks_enabled",
]
