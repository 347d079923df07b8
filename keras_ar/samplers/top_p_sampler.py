"""Nucleus (top-p) sampling (Holtzman et al. 2019)."""

import keras

from keras_ar.samplers.sampler import Sampler


@keras.saving.register_keras_serializable(package="keras_ar")
class TopPSampler(Sampler):
    """Sample from the smallest set of most likely classes whose mass reaches `p`."""

    name = "top_p"

    def __init__(self, p=0.9, temperature=1.0, k=0):
        super().__init__(temperature=temperature, top_k=k, top_p=p)

    def get_config(self):
        return {"p": self.top_p, "temperature": self.temperature, "k": self.top_k}
