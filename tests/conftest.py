"""Test-wide settings: quiet TensorFlow, two logical CPU devices for MirroredStrategy."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
import tensorflow as tf

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
except RuntimeError:  # devices already initialised by another import
    pass


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    import keras

    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


def pytest_collection_modifyitems(config, items):
    """Longest files first (tests/durations.json, scripts/test_durations.py): with
    `--dist loadfile --no-loadscope-reorder` the workers start on the long files and finish
    together instead of one worker running a long file alone at the end."""
    import json
    import pathlib

    table = pathlib.Path(__file__).with_name("durations.json")
    seconds = json.loads(table.read_text()) if table.exists() else {}
    root = pathlib.Path(str(config.rootpath))

    def weight(item):
        path = pathlib.Path(str(item.path))
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        return -seconds.get(name, 0.0)

    items.sort(key=weight)  # stable: the order inside a file is kept
