"""A WaveNet whose `generate` runs the chunked loop (nested while loops: TFLite WHILE in
WHILE, ONNX Loop in Loop) converts and gives Keras' numbers and samples on every target."""

import numpy as np
import pytest

from export import verify
from export.onnx import export_onnx
from export.saved_model import export_saved_model
from export.tflite import export_tflite
from keras_ar import contract
from keras_ar.models import WaveNet

SIGNATURES = (contract.GENERATE,)


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    # chunk 2 over dilations [1, 2, 4, 1]: small, large, large, small blocks
    model = WaveNet(num_classes=16, dilations=[1, 2, 4, 1], residual_channels=4,
                    skip_channels=4, num_global_classes=3, local_condition_dim=2, local_hop=3,
                    generation_chunk=2)
    assert model._multi_step().length == 2
    out = tmp_path_factory.mktemp("chunked")
    export_saved_model(model, out / "savedmodel", signatures=SIGNATURES + (
        contract.GENERATE_SEEDED,))
    export_tflite(model, out / "tflite", signatures=SIGNATURES)
    export_onnx(model, out / "onnx", signatures=SIGNATURES)  # its own parity check too
    return model, out


@pytest.mark.slow
def test_chunked_generate_parity_on_every_target(chunked):
    model, out = chunked
    runners = verify.runners_for(out)
    assert set(runners) == {"savedmodel", "tflite", "onnx"}
    rows = verify.signature_parity(model, runners, SIGNATURES, batch=2)
    print(verify.table(rows))
    assert rows and all(row[-1] for row in rows)
    # a longer run than the gate's 8 steps: 21 steps = 10 full chunks and a partial one
    feeds = verify.example_feeds(model, SIGNATURES, batch=3, length=21, seed=4)
    reference = verify.keras_runner(model)(contract.GENERATE, feeds[contract.GENERATE])
    for target, run in runners.items():
        got = run(contract.GENERATE, feeds[contract.GENERATE])
        np.testing.assert_array_equal(got[contract.X], reference[contract.X], err_msg=target)
