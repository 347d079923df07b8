"""Samplers: small config objects that set the sampling controls of `generate`.

Every model samples from its head with the same three controls, passed as tensors so that
changing them never retraces or re-exports anything:

* ``temperature``: logits / T (``<= 0``: greedy);
* ``top_k``: keep the k most likely classes (``0``: all);
* ``top_p``: keep the smallest most-likely set of mass >= p (``1``: all).

A sampler is data: `controls()` returns those three values; `get_config()` round-trips.
"""

import keras

from keras_ar import contract


@keras.saving.register_keras_serializable(package="keras_ar")
class Sampler:
    """Plain ancestral sampling at `temperature` (the base of the named samplers)."""

    name = "sampler"

    def __init__(self, temperature=1.0, top_k=0, top_p=1.0):
        temperature, top_k, top_p = float(temperature), int(top_k), float(top_p)
        if top_k < 0:
            raise ValueError(f"`top_k` must be >= 0 (0 keeps all classes); received {top_k}.")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"`top_p` must be in (0, 1]; received {top_p}.")
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p

    def controls(self):
        return {contract.TEMPERATURE: self.temperature, contract.TOP_K: self.top_k,
                contract.TOP_P: self.top_p}

    def get_config(self):
        return {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
