"""keras-ar: deep autoregressive generative models with one exportable step protocol.

`pip install keras-ar` installs the models (`keras_ar`) with ranges, not pins; the extras add
what each area needs: `[export]` (TFLite, ONNX), `[serving]` (the TF Serving-compatible server
and the Generator's runtimes), `[pipelines]` (Beam, ML Metadata, the bundled data readers),
`[plots]` (`keras-ar bench` and `keras-ar plot`), `[dask]` (Beam on Dask), `[test]`, `[all]`.
The one tested set of exact versions is `requirements/lock.txt` (`make venv` installs it); the
ranges below admit it.
"""

import pathlib
import re

from setuptools import setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(r'^__version__ = "([^"]+)"',
                    (HERE / "keras_ar" / "__init__.py").read_text(), re.M).group(1)

# The models: Keras 3 on TensorFlow 2.16 (tensorflow-io 0.37.1, the last release, loads only there).
CORE = ["tensorflow>=2.16,<2.17", "keras>=3.3,<4", "numpy>=1.26,<2"]
EXTRAS = {
    "export": ["tf2onnx>=1.17,<1.18", "onnx>=1.17,<1.18", "onnxruntime>=1.17",
               "ai-edge-litert>=1.0", "tensorflow-serving-api>=2.16,<2.17"],
    "serving": ["grpcio>=1.60", "tensorflow-serving-api>=2.16,<2.17", "onnxruntime>=1.17",
                "ai-edge-litert>=1.0", "tqdm>=4.60", "pillow>=10"],
    "pipelines": ["apache-beam[tfrecord]>=2.60", "ml-metadata>=1.16", "tensorflow-io==0.37.1",
                  "PyYAML>=6", "pillow>=10", "scipy>=1.11", "scikit-learn>=1.4", "pandas>=2",
                  "sktime>=1.2"],
    "plots": ["matplotlib>=3.8"],
    "dask": ["dask>=2024.4", "distributed>=2024.4"],  # Beam's DaskRunner (`beam.runner`)
    "test": [line.strip() for line in (HERE / "requirements" / "test.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")],
}
EXTRAS["all"] = sorted({req for name, reqs in EXTRAS.items() if name != "test" for req in reqs})

setup(
    name="keras-ar",
    version=VERSION,
    description="Autoregressive generative models for TensorFlow/Keras with a step protocol "
                "that exports to SavedModel, TFLite and ONNX.",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=[
        "keras_ar", "keras_ar.heads", "keras_ar.layers", "keras_ar.models", "keras_ar.ops",
        "keras_ar.samplers", "keras_ar.testing",
        "pipelines", "pipelines.data", "pipelines.data.sources", "pipelines.components",
        "export", "serving", "bench",
    ],
    package_data={"pipelines": ["configs/*.yaml"]},
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["keras-ar=pipelines.cli:main"]},
    classifiers=["Programming Language :: Python :: 3.11",
                 "License :: OSI Approved :: Apache Software License",
                 "Topic :: Scientific/Engineering :: Artificial Intelligence"],
)
