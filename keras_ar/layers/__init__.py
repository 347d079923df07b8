"""Layers with explicit caches for step-by-step generation."""

from keras_ar.layers.causal_conv1d import CausalConv1D
from keras_ar.layers.gated_residual_block import GatedResidualBlock

__all__ = ["CausalConv1D", "GatedResidualBlock"]
from keras_ar.layers.context_stack import ContextStack  # noqa: E402
from keras_ar.layers.local_upsampler import LocalUpsampler  # noqa: E402

__all__ += ["ContextStack", "LocalUpsampler"]
from keras_ar.layers.cached_attention import CachedMultiHeadAttention  # noqa: E402
from keras_ar.layers.transformer_block import TransformerBlock  # noqa: E402

__all__ += ["CachedMultiHeadAttention", "TransformerBlock"]
