"""Greedy decoding."""

import keras

from keras_ar.samplers.sampler import Sampler


@keras.saving.register_keras_serializable(package="keras_ar")
class GreedySampler(Sampler):
    """x_t = argmax p(x_t | x_<t) (temperature 0; the noise is ignored)."""

    name = "greedy"

    def __init__(self):
        super().__init__(temperature=0.0)

    def get_config(self):
        return {}
