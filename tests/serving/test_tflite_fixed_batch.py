"""A fixed-batch TFLite export (`export_tflite(batch_size=2)`) serves other batch sizes by
splitting and padding, or refuses them with the supported sizes named."""

import numpy as np
import pytest

from keras_ar import contract
from serving.generator import Generator
from serving.saved_model_backend import SavedModelBackend
from serving.tflite_backend import TFLiteBackend

COMPILED = 2


@pytest.fixture(scope="module")
def fixed_file(wavenet_model, tmp_path_factory):
    from export.tflite import export_tflite

    path = tmp_path_factory.mktemp("tflite_fixed") / "tflite"
    manifest = export_tflite(wavenet_model, path, batch_size=COMPILED,
                             signatures=(contract.INIT_STATE, contract.SAMPLE_STEP,
                                         contract.SAMPLE_CHUNK, contract.GENERATE))
    assert manifest["batch"] == {"dynamic": False, "sizes": [COMPILED]}
    return path


@pytest.fixture(scope="module")
def reference(model_root):
    return Generator(SavedModelBackend(model_root / "wavenet" / "1"))


@pytest.mark.parametrize("batch", [1, COMPILED, 5])
@pytest.mark.parametrize("graph, chunk", [(False, 1), (False, 4), (True, 1)],
                         ids=["step_loop", "chunks_of_4_then_2", "graph_loop"])
def test_other_batches_are_split_and_padded(fixed_file, reference, batch, graph, chunk):
    """K is a run-time dimension of the fixed-batch file too (chunks of 4, then 2)."""
    backend = TFLiteBackend(fixed_file)
    assert backend.batch_sizes == [COMPILED]
    out = Generator(backend, chunk_size=chunk).generate(6, batch_size=batch, seed=4,
                                                        temperature=0.9, use_graph_loop=graph)
    expected = reference.generate(6, batch_size=batch, seed=4, temperature=0.9,
                                  use_graph_loop=graph, chunk_size=1)
    assert out["x"].shape == (batch, 6)
    np.testing.assert_array_equal(out["x"], expected["x"])


def test_error_mode_names_the_supported_batch(fixed_file):
    generator = Generator(TFLiteBackend(fixed_file, fixed_batch="error"))
    assert generator.generate(3, batch_size=COMPILED)["x"].shape == (COMPILED, 3)
    with pytest.raises(ValueError, match=r"fixed batch of \[2\] rows.*received a batch of 3"):
        generator.generate(3, batch_size=3)


def test_bad_arguments_are_refused(fixed_file):
    with pytest.raises(ValueError, match="fixed_batch must be one of"):
        TFLiteBackend(fixed_file, fixed_batch="resize")
    backend = TFLiteBackend(fixed_file)
    feeds = {"batch_template": np.zeros(3, np.int32)}
    assert backend.run("init_state", feeds)["new_state_index"].shape == (3,)
    step = Generator(backend).start(2, batch_size=3)
    ragged = {"x_prev": step.x_prev[:1], "noise": step.noise[:, 0], **step.controls,
              **{"state_" + k: v for k, v in step.state.items()}}
    with pytest.raises(ValueError, match="same leading"):
        backend.run("sample_step", ragged)
