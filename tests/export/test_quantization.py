"""TFLite quantisation: sizes and the NLL change on held-out data, refused above the bound."""

import keras
import numpy as np
import pytest

from export import manifest as manifest_lib
from export.tflite import MAX_NLL_INCREASE, QuantizationError, export_tflite, held_out_feeds, nll
from keras_ar import contract
from keras_ar.models import WaveNet

ONLY_LOG_PROB = (contract.LOG_PROB,)  # the check needs log_prob only: fast conversions
MODES = ("int8", "float16")


def tiny_model():
    keras.utils.set_random_seed(0)
    # channels 32: TFLite leaves tensors under 1024 elements unquantised
    return WaveNet(num_classes=16, dilations=[1, 2], residual_channels=32, skip_channels=32)


def held_out():
    rng = np.random.default_rng(3)
    return rng.integers(0, 16, size=(12, 24)).astype("int32")


@pytest.fixture(scope="module")
def unbounded(tmp_path_factory):
    """The figures with no bound (every mode kept)."""
    model = tiny_model()
    out = tmp_path_factory.mktemp("quant") / "tflite"
    manifest = export_tflite(model, out, quantize=MODES, signatures=ONLY_LOG_PROB,
                             eval_data=held_out(), max_nll_increase=float("inf"))
    return model, out, manifest


@pytest.mark.slow
def test_quantized_sizes_and_nll_changes_are_reported(unbounded):
    model, out, manifest = unbounded
    figures = manifest["quantization"]
    print({m: {k: figures[m].get(k) for k in ("bytes", "nll", "nll_change")}
           for m in ("float32",) + MODES})
    assert manifest_lib.read_manifest(out)["quantization"] == figures
    reference = float(-np.mean(model.log_prob(held_out())))
    assert figures["float32"]["nll"] == pytest.approx(reference, rel=1e-5)
    for mode in MODES:
        entry = figures[mode]
        assert (out / entry["file"]).is_file()
        assert entry["bytes"] < figures["float32"]["bytes"]
        assert entry["eval_rows"] == 12 and entry["eval_source"] == "eval_data"
        assert entry["nll_float32"] == figures["float32"]["nll"]
        feeds = held_out_feeds(model, held_out())
        assert entry["nll"] == pytest.approx(nll(out / entry["file"], feeds))
        assert entry["nll_change"] == pytest.approx(
            (entry["nll"] - entry["nll_float32"]) / entry["nll_float32"])


@pytest.mark.slow
def test_tiny_bound_refuses_with_the_figures(unbounded, tmp_path):
    """A bound just under the measured int8 change (the change itself may be ~1e-7 on a
    tiny model) refuses, names both NLLs and the bound, and writes nothing."""
    model, _, manifest = unbounded
    entry = manifest["quantization"]["int8"]
    bound = entry["nll_change"] - 1e-9
    out = tmp_path / "tflite"
    with pytest.raises(QuantizationError) as error:
        export_tflite(model, out, quantize=("int8",), signatures=ONLY_LOG_PROB,
                      eval_data=held_out(), max_nll_increase=bound)
    message = str(error.value)
    assert "int8 quantisation refused" in message
    assert f"{entry['nll_float32']:.6g} (float32)" in message
    assert f"{entry['nll']:.6g} (int8)" in message
    assert f"max_nll_increase={bound:.3%}" in message
    assert not out.exists(), "a refused export must leave no directory"


@pytest.mark.slow
def test_default_bound_decides_by_the_figures(unbounded, tmp_path):
    """Same model and data with the default bound (2%): kept iff its change is <= 2%."""
    model, _, manifest = unbounded
    changes = {mode: manifest["quantization"][mode]["nll_change"] for mode in MODES}
    for mode in MODES:
        out = tmp_path / mode
        if changes[mode] <= MAX_NLL_INCREASE:
            kept = export_tflite(model, out, quantize=(mode,), signatures=ONLY_LOG_PROB,
                                 eval_data=held_out())
            assert kept["quantization"][mode]["nll_change"] == pytest.approx(changes[mode])
        else:
            with pytest.raises(QuantizationError, match=f"{mode} quantisation refused"):
                export_tflite(model, out, quantize=(mode,), signatures=ONLY_LOG_PROB,
                              eval_data=held_out())


def test_quantize_needs_log_prob_and_known_modes(tmp_path):
    with pytest.raises(ValueError, match="log_prob"):
        export_tflite(tiny_model(), tmp_path / "a", quantize=("int8",),
                      signatures=(contract.STEP,))
    with pytest.raises(ValueError, match="Unknown quantize modes"):
        export_tflite(tiny_model(), tmp_path / "b", quantize=("int4",))
