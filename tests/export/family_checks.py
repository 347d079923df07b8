"""The model families every export test file covers, and the checks each runs on one
exported family (the test files split the families so that pytest-xdist spreads them over
the workers)."""


import json

import keras
import pytest

from export import export_all
from export import manifest as manifest_lib
from keras_ar import contract
from keras_ar.models import (
    ByteNet,
    CausalTransformer,
    ContinuousSequenceModel,
    EncoderDecoderTransformer,
    GatedPixelCNN,
    PixelCNN,
    PixelCNNPlusPlus,
)

CORE = (contract.INIT_STATE, contract.STEP, contract.SAMPLE_STEP, contract.SAMPLE_CHUNK,
        contract.GENERATE)
TARGETS = ("savedmodel", "tflite", "onnx")


def _pixel_cnn():
    return PixelCNN(image_shape=(4, 4, 1), num_levels=4, num_layers=1, filters=4,
                    first_kernel_size=3, global_condition_dim=2)  # vector-conditioned


def _gated_pixel_cnn():
    return GatedPixelCNN(image_shape=(4, 4, 1), num_levels=4, num_layers=2, filters=4,
                         num_global_classes=3)


def _pixel_cnn_plus_plus():
    return PixelCNNPlusPlus(image_shape=(4, 4, 3), num_levels=8, num_mixtures=2,
                            num_layers=1, filters=4, num_scales=2, dropout=0.0)


def _continuous():
    return ContinuousSequenceModel(feature_dim=2, num_mixtures=2, num_layers=2, hidden_dim=4,
                                   max_length=16, num_global_classes=2,
                                   local_condition_dim=2)


def _transformer(**conditions):
    return lambda: CausalTransformer(vocab_size=8, num_layers=1, num_heads=2, hidden_dim=8,
                                     max_length=16, **conditions)


def _byte_net():
    return ByteNet(source_vocab_size=5, target_vocab_size=8, max_source_length=5, a=1.5, b=2,
                   encoder_dilations=[1, 2], decoder_dilations=[1, 2], channels=4)


def _encoder_decoder_transformer():
    return EncoderDecoderTransformer(source_vocab_size=5, target_vocab_size=8,
                                     max_source_length=5, encoder_layers=1, num_layers=1,
                                     num_heads=2, hidden_dim=8, max_length=12)


# family -> (factory, ONNX signatures: None = all)
FAMILIES = {
    "pixel_cnn_vector": (_pixel_cnn, None),
    "gated_pixel_cnn_class": (_gated_pixel_cnn, None),
    "pixel_cnn_plus_plus_rgb": (_pixel_cnn_plus_plus, CORE),
    "continuous_conditioned": (_continuous, CORE),
    "causal_transformer": (_transformer(), CORE),
    "causal_transformer_class": (_transformer(num_global_classes=3), CORE),
    "byte_net": (_byte_net, CORE),
    "encoder_decoder_transformer": (_encoder_decoder_transformer, CORE),
}


def export_family(family, tmp_path_factory):
    """(family, model, export folder, export_all's report) of one tiny exported family."""
    factory, onnx_signatures = FAMILIES[family]
    keras.utils.set_random_seed(0)
    model = factory()
    out = tmp_path_factory.mktemp(family) / "export"
    report = export_all(model, out, onnx_signatures=onnx_signatures)
    return family, model, out, report


def family_tests(families):
    """(fixture `exported`: each of `families` exported once per module, and the three slow
    checks as tests) for a test file to bind at module level."""

    @pytest.fixture(scope="module", params=families)
    def exported(request, tmp_path_factory):
        return export_family(request.param, tmp_path_factory)

    @pytest.mark.slow
    def test_family_passes_parity_gate_on_every_target(exported):
        check_parity_gate_on_every_target(exported)

    @pytest.mark.slow
    def test_family_signatures_take_the_model_conditions(exported):
        check_signatures_take_the_model_conditions(exported)

    @pytest.mark.slow
    def test_exported_log_prob_scores_only_the_first_lengths_positions(exported):
        check_log_prob_scores_only_the_first_lengths_positions(exported)

    return (exported, test_family_passes_parity_gate_on_every_target,
            test_family_signatures_take_the_model_conditions,
            test_exported_log_prob_scores_only_the_first_lengths_positions)


def check_parity_gate_on_every_target(exported):
    family, model, out, report = exported
    rows = report["parity"]
    worst = {}
    for target, signature, output, diff, _ in rows:
        if output != contract.X_NEXT and "x64" not in signature:
            worst[target] = max(worst.get(target, 0.0), diff)
    print(family, json.dumps(report["targets"]), "max float diff:", worst)
    assert all(row[-1] for row in rows)
    for target in TARGETS:
        checked = {row[1] for row in rows if row[0] == target}
        held = set(manifest_lib.read_manifest(out / target)["signatures"])
        assert set(CORE) <= checked and held & set(contract.ENDPOINTS) <= checked
        if target != "onnx" or FAMILIES[family][1] is None:
            assert set(contract.ENDPOINTS) <= checked
        samples = [r for r in rows if r[0] == target and r[1] == "sample_step x64"]
        assert {r[2] for r in samples} == {contract.X_NEXT, contract.PARAMS}
        assert all(r[-1] for r in samples)


def check_signatures_take_the_model_conditions(exported):
    _, model, out, _ = exported
    whole, per_step = model.condition_specs(False), model.condition_specs(True)
    for target in TARGETS:
        signatures = manifest_lib.read_manifest(out / target)["signatures"]
        init_inputs = set(signatures[contract.INIT_STATE]["inputs"])
        assert init_inputs == (set(whole) or {contract.BATCH_TEMPLATE})
        assert set(per_step) <= set(signatures[contract.STEP]["inputs"])
        if contract.GENERATE in signatures:
            assert set(whole) <= set(signatures[contract.GENERATE]["inputs"])
        if contract.LOG_PROB in signatures:
            inputs = signatures[contract.LOG_PROB]["inputs"]
            assert inputs[contract.X]["shape"] == model.x_spec().shape.as_list()
            # sequences are scored up to their lengths on every target; images have none
            assert (contract.LENGTHS in inputs) == (len(model.x_spec().shape) != 4)


def check_log_prob_scores_only_the_first_lengths_positions(exported):
    """Padding after `lengths` is not scored: a padded row scores as the truncated row does
    in Keras, on every target that holds `log_prob`."""
    import numpy as np

    from export import verify

    _, model, out, _ = exported
    if not model.scores_lengths:
        return
    feed = verify.example_feeds(model, [contract.LOG_PROB], seed=3)[contract.LOG_PROB]
    x, lengths = feed[contract.X], np.array([6, 3], np.int32)
    conditions = {k: v for k, v in feed.items() if k not in (contract.X, contract.LENGTHS)}
    rng = np.random.default_rng(4)
    garbage = np.array(x, copy=True)
    for row, n in enumerate(lengths):  # other values in the padding: drawn from x's values
        garbage[row, n:] = rng.choice(np.unique(x), garbage[row, n:].shape)
    assert not np.array_equal(garbage, x)
    expected = [float(model.log_prob({contract.X: x[row:row + 1, :n], **{
        k: v[row:row + 1] for k, v in conditions.items()}})[0]) for row, n in enumerate(lengths)]
    for target, run in verify.runners_for(out).items():
        if contract.LOG_PROB not in manifest_lib.read_manifest(out / target)["signatures"]:
            continue
        for values in (x, garbage):
            got = run(contract.LOG_PROB, {contract.X: values, contract.LENGTHS: lengths,
                                          **conditions})[contract.LOG_PROB_OUTPUT]
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4, err_msg=target)
