"""Samplers resolvable by name: `samplers.get("top_k")`, `samplers.get({"class_name": ...})`."""

from keras_ar.samplers.greedy_sampler import GreedySampler
from keras_ar.samplers.sampler import Sampler
from keras_ar.samplers.temperature_sampler import TemperatureSampler
from keras_ar.samplers.top_k_sampler import TopKSampler
from keras_ar.samplers.top_p_sampler import TopPSampler

_REGISTRY = {cls.name: cls for cls in
             (Sampler, GreedySampler, TemperatureSampler, TopKSampler, TopPSampler)}


def serialize(sampler):
    return {"class_name": sampler.name, "config": sampler.get_config()}


def deserialize(config):
    name = config.get("class_name") if isinstance(config, dict) else None
    if name not in _REGISTRY:
        raise ValueError(
            f"Unknown sampler {name!r}; known: {sorted(_REGISTRY)}. Pass "
            "{'class_name': NAME, 'config': {...}}.")
    return _REGISTRY[name].from_config(config.get("config", {}))


def get(identifier):
    """A Sampler, a name ("greedy", "temperature", "top_k", "top_p") or a serialized dict."""
    if isinstance(identifier, Sampler):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _REGISTRY:
            raise ValueError(f"Unknown sampler {identifier!r}; known: {sorted(_REGISTRY)}.")
        return _REGISTRY[identifier]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(
        f"Cannot resolve a sampler from {type(identifier).__name__}: pass a Sampler, a name "
        f"among {sorted(_REGISTRY)}, or a serialized dict.")


__all__ = ["Sampler", "GreedySampler", "TemperatureSampler", "TopKSampler", "TopPSampler",
           "get", "serialize", "deserialize"]
