"""keras-ar: deep autoregressive generative models with an exportable step protocol.

Submodules load lazily so that `keras_ar.contract` imports without TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "contract", "heads", "layers", "metrics", "models", "ops", "samplers", "testing",
)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_ar.{name}")
    raise AttributeError(f"module 'keras_ar' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
