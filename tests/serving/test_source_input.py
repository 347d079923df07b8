"""Sources on the host, TF-free: `keras_ar.contract.source_errors` / `unfolded_length` and
`serving.source_input.SourceSpec` (padding, the target length rule, text to ids)."""

import numpy as np
import pytest

from keras_ar import contract
from serving.source_input import SourceSpec

MANIFEST = {"model": {"family": "ByteNet", "config": {
    "source_vocab_size": 4, "max_source_length": 5, "a": 1.5, "b": 2}},
    "decoding": {"source_vocabulary": list("abcd")}}


def test_unfolded_length_is_the_float32_rule():
    assert contract.unfolded_length(1.5, 2, 5) == 9
    assert contract.unfolded_length(1.2, 4, 10) == 16
    np.testing.assert_array_equal(contract.unfolded_length(1.5, 2, np.array([1, 2, 3])),
                                  [3, 5, 6])


@pytest.mark.parametrize("ids, message", [
    ([[0, 1, 4]], None),
    ([1, 2], "has shape [2]"),
    ([[0.5, 1.0]], "dtype float64"),
    ([[0] * 6], "6 source positions"),
    ([[0, 5]], "holds 5 (at flat position 1); source ids (pad = 4) in [0, 4]"),
    ([[0, 1], [4, 4]], "row 1 is empty"),
    ([[0, 4, 1]], "row 0 has a token after a pad id 4"),
])
def test_source_errors(ids, message):
    errors = contract.source_errors(np.array(ids), 4, 5)
    assert errors == [] if message is None else message in errors[0], errors


def test_spec_from_manifest_pads_ragged_rows_and_applies_the_rule():
    spec = SourceSpec.from_manifest(MANIFEST)
    assert (spec.max_length, spec.vocab_size, spec.max_target_length) == (5, 4, 9)
    ids = spec.pad([[0, 1, 2, 3, 0], [2], [1, 3]])
    np.testing.assert_array_equal(ids, [[0, 1, 2, 3, 0], [2, 4, 4, 4, 4], [1, 3, 4, 4, 4]])
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(spec.pad(np.array([[1, 2]])), [[1, 2, 4, 4, 4]])
    # U = floor(1.5 |s|) + 2 = 9, 3, 5 target positions
    np.testing.assert_array_equal(spec.step_limits(ids, 0, 9), [9, 3, 5])
    np.testing.assert_array_equal(spec.step_limits(ids, 0, 4), [4, 3, 4])
    np.testing.assert_array_equal(spec.step_limits(ids, 2, 7), [7, 1, 3])
    with pytest.raises(ValueError, match=r"needs 10 target positions; .*max_length=9"):
        spec.step_limits(ids, 0, 10)
    with pytest.raises(ValueError, match=r"row 1 \(\|s\| = 1 source tokens\) 3 target "):
        spec.step_limits(ids, 3, 2)
    assert spec.encode_text("dab") == [3, 0, 1]
    with pytest.raises(ValueError, match="'e', which is not in the source vocabulary"):
        spec.encode_text("abe")


def test_spec_without_a_vocabulary_or_a_manifest():
    config = dict(MANIFEST["model"]["config"], max_length=7)
    del config["a"], config["b"]
    spec = SourceSpec.from_manifest({"model": {"family": "EncoderDecoderTransformer",
                                               "config": config}})
    assert spec.unfolding is None and spec.max_target_length == 7
    np.testing.assert_array_equal(spec.step_limits(spec.pad([[1], [2, 3]]), 1, 6), [6, 6])
    with pytest.raises(ValueError, match="records no source vocabulary"):
        spec.encode_text("ab")
    byte_spec = SourceSpec(5, 256, text="bytes")
    assert byte_spec.encode_text("hé") == [104, 195, 169]
    # from signatures only: the pad id is unknown, so rows must come padded
    bare = SourceSpec.from_signature({"local_condition": ((None, 5), np.int32)})
    assert bare.max_length == 5 and bare.vocab_size is None
    np.testing.assert_array_equal(bare.pad([[1, 2, 3, 4, 4]]), [[1, 2, 3, 4, 4]])
    with pytest.raises(ValueError, match="pad id is unknown"):
        bare.pad([[1, 2]])
    assert SourceSpec.from_signature({"local_condition": ((None, 5, 2), np.float32)}) is None
    assert SourceSpec.from_manifest({"model": {"config": {"vocab_size": 3}}}) is None
