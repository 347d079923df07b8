"""keras-ar: deep autoregressive generative models with one exportable step protocol."""

import pathlib

from setuptools import setup

HERE = pathlib.Path(__file__).parent


def _requirements(name):
    lines = (HERE / "requirements" / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    name="keras-ar",
    version="0.1.0",
    description="Autoregressive generative models for TensorFlow/Keras with a step protocol "
                "that exports to SavedModel, TFLite and ONNX.",
    python_requires=">=3.11,<3.12",
    packages=[
        "keras_ar", "keras_ar.heads", "keras_ar.layers", "keras_ar.models", "keras_ar.ops",
        "keras_ar.samplers", "keras_ar.testing",
        "pipelines", "pipelines.data", "pipelines.data.sources", "pipelines.components",
        "export", "serving", "bench",
    ],
    package_data={"pipelines": ["configs/*.yaml"]},
    install_requires=_requirements("lock.txt"),
    extras_require={"test": _requirements("test.txt")},
    entry_points={"console_scripts": ["keras-ar=pipelines.cli:main"]},
)
