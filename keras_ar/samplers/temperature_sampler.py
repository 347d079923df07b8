"""Temperature sampling."""

import keras

from keras_ar.samplers.sampler import Sampler


@keras.saving.register_keras_serializable(package="keras_ar")
class TemperatureSampler(Sampler):
    """x_t ~ softmax(logits / temperature); temperature < 1 sharpens, > 1 flattens."""

    name = "temperature"

    def __init__(self, temperature=1.0):
        super().__init__(temperature=temperature)

    def get_config(self):
        return {"temperature": self.temperature}
