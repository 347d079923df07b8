"""Top-k sampling (Fan et al. 2018)."""

import keras

from keras_ar.samplers.sampler import Sampler


@keras.saving.register_keras_serializable(package="keras_ar")
class TopKSampler(Sampler):
    """Sample among the `k` most likely classes, renormalised, at `temperature`."""

    name = "top_k"

    def __init__(self, k=10, temperature=1.0):
        if int(k) < 1:
            raise ValueError(f"TopKSampler needs k >= 1; received {k}.")
        super().__init__(temperature=temperature, top_k=k)

    def get_config(self):
        return {"k": self.top_k, "temperature": self.temperature}
