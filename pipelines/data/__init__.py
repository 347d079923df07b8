"""Input pipelines: bundled sources, the TFRecord layout and `make_dataset`."""


def make_dataset(config, split, input_context=None, repeat=None):
    """See `pipelines.data.dataset.make_dataset` (imported lazily: it needs TensorFlow)."""
    from pipelines.data.dataset import make_dataset as _make

    return _make(config, split, input_context, repeat)


__all__ = ["make_dataset"]
