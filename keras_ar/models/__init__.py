"""Autoregressive models on the step protocol."""

from keras_ar.models.autoregressive_model import AutoregressiveModel
from keras_ar.models.byte_net import ByteNet
from keras_ar.models.causal_transformer import CausalTransformer
from keras_ar.models.continuous_sequence_model import ContinuousSequenceModel
from keras_ar.models.encoder_decoder_transformer import EncoderDecoderTransformer
from keras_ar.models.gated_pixel_cnn import GatedPixelCNN
from keras_ar.models.image_model import ImageAutoregressiveModel
from keras_ar.models.pixel_cnn import PixelCNN
from keras_ar.models.pixel_cnn_plus_plus import PixelCNNPlusPlus
from keras_ar.models.wavenet import WaveNet

__all__ = ["AutoregressiveModel", "ByteNet", "CausalTransformer", "ContinuousSequenceModel",
           "EncoderDecoderTransformer", "GatedPixelCNN", "ImageAutoregressiveModel", "PixelCNN",
           "PixelCNNPlusPlus", "WaveNet"]
