"""Autoregressive models on the step protocol."""

from keras_ar.models.autoregressive_model import AutoregressiveModel
from keras_ar.models.wavenet import WaveNet

__all__ = ["AutoregressiveModel", "WaveNet"]
from keras_ar.models.causal_transformer import CausalTransformer  # noqa: E402

__all__ += ["CausalTransformer"]
