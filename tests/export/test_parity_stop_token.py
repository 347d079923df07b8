"""The parity gate compares against Keras run with the stop token the artifacts hold: rows
that end at the stop on a target end there in the reference too."""

import keras
import pytest

from export import export_all, verify
from keras_ar.models import CausalTransformer

pytestmark = pytest.mark.slow  # two exports and three gates: about 1.5 min on 2 cores


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    # two tokens: an untrained model samples the stop (0) within a few steps in every row
    model = CausalTransformer(vocab_size=2, num_layers=1, num_heads=1, hidden_dim=4,
                              max_length=16)
    out = tmp_path_factory.mktemp("stop") / "export"
    report = export_all(model, out, targets=("savedmodel", "tflite"), stop_token=0)
    return model, out, report


def test_the_gate_passes_with_the_artifacts_stop_token(exported):
    _, _, report = exported
    rows = [row for row in report["parity"] if row[1].startswith("sample_chunk")]
    assert rows and all(row[-1] for row in report["parity"])


def test_a_reference_without_the_stop_differs(exported):
    """Not by construction: the same artifacts against a reference that ignores the stop
    fail, so the stop did end rows inside the compared chunks."""
    model, out, _ = exported
    runners = verify.runners_for(out, ("savedmodel", "tflite"))
    rows = verify.chunk_parity(model, runners, stop_token=None)
    assert not all(row[-1] for row in rows)
    assert all(row[-1] for row in verify.chunk_parity(model, runners, stop_token=0))
