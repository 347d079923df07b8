"""Layers with explicit caches for step-by-step generation."""

from keras_ar.layers.cached_attention import CachedMultiHeadAttention
from keras_ar.layers.causal_conv1d import CausalConv1D
from keras_ar.layers.context_stack import ContextStack
from keras_ar.layers.dilated_residual_block import DilatedResidualBlock
from keras_ar.layers.gated_residual_block import GatedResidualBlock
from keras_ar.layers.local_upsampler import LocalUpsampler
from keras_ar.layers.masked_conv2d import MaskedConv2D
from keras_ar.layers.shifted_conv2d import ShiftedConv2D
from keras_ar.layers.transformer_block import TransformerBlock

__all__ = ["CachedMultiHeadAttention", "CausalConv1D", "ContextStack", "DilatedResidualBlock",
           "GatedResidualBlock", "LocalUpsampler", "MaskedConv2D", "ShiftedConv2D",
           "TransformerBlock"]
