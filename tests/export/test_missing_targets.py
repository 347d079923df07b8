"""`export_all(allow_missing_targets=True)`: a target that fails to convert is left out and
named, the others are kept without being converted again; without it the export stops and
leaves nothing behind; the SavedModel is never optional. The targets share one trace of each
signature (saving the SavedModel does not trace again)."""

import keras
import pytest

from export import export_all, saved_model, tflite
from export.export_all import ExportTargetError
from keras_ar.models import WaveNet


def _model():
    keras.utils.set_random_seed(0)
    return WaveNet(num_classes=4, dilations=[1], residual_channels=2, skip_channels=2)


def _failing(monkeypatch, module, name):
    calls = []

    def fail(*args, **kwargs):
        calls.append(name)
        raise RuntimeError(f"{name} broke")

    monkeypatch.setattr(module, name, fail)
    return calls


def _counting(monkeypatch, module, name):
    calls, real = [], getattr(module, name)

    def count(*args, **kwargs):
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, count)
    return calls


def test_a_failed_conversion_is_left_out_and_named(tmp_path, monkeypatch):
    _failing(monkeypatch, tflite, "export_tflite")
    converted = _counting(monkeypatch, saved_model, "export_saved_model")
    out = tmp_path / "export"
    report = export_all(_model(), out, targets=("savedmodel", "tflite"), num_steps=4,
                        allow_missing_targets=True)
    assert list(report["failures"]) == ["tflite"]
    assert "tflite" in report["failures"]["tflite"] and "broke" in report["failures"]["tflite"]
    assert list(report["targets"]) == ["savedmodel"] and converted == ["export_saved_model"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["savedmodel"]
    assert report["parity"] and {row[0] for row in report["parity"]} == {"savedmodel"}
    assert all(row[-1] for row in report["parity"])


def test_without_it_a_failed_conversion_stops_the_export(tmp_path, monkeypatch):
    _failing(monkeypatch, tflite, "export_tflite")
    out = tmp_path / "export"
    with pytest.raises(ExportTargetError, match="tflite target failed.*broke"):
        export_all(_model(), out, targets=("savedmodel", "tflite"), verify_parity=False)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_when_every_target_fails_the_export_fails(tmp_path, monkeypatch):
    _failing(monkeypatch, tflite, "export_tflite")
    out = tmp_path / "export"
    with pytest.raises(ExportTargetError, match="tflite target failed.*broke"):
        export_all(_model(), out, targets=("tflite",), verify_parity=False,
                   allow_missing_targets=True)
    assert not out.exists()


def test_the_savedmodel_is_never_left_out(tmp_path, monkeypatch):
    calls = _failing(monkeypatch, saved_model, "export_saved_model")
    out = tmp_path / "export"
    with pytest.raises(ExportTargetError, match="savedmodel target failed"):
        export_all(_model(), out, targets=("savedmodel", "tflite"), verify_parity=False,
                   allow_missing_targets=True)
    assert calls == ["export_saved_model"] and not out.exists()


@pytest.mark.slow  # converts to TFLite and ONNX
def test_the_targets_share_one_trace_of_each_signature(tmp_path):
    from export import onnx, signatures

    model = _model()
    saved_model.export_saved_model(model, tmp_path / "savedmodel")
    built = signatures.build_signatures(model)
    assert built["step"] is signatures.build_signatures(model, ["step"])["step"]
    names = ("init_state", "step", "sample_chunk", "generate")  # on every target
    traced = {name: built[name].function.experimental_get_tracing_count() for name in names}
    assert all(n == 1 for n in traced.values()), traced  # saving traced each once
    tflite.export_tflite(model, tmp_path / "tflite", saved_model_dir=tmp_path / "savedmodel")
    onnx.export_onnx(model, tmp_path / "onnx", signatures=names, check_atol=None)
    assert {name: built[name].function.experimental_get_tracing_count()
            for name in names} == traced  # TFLite's manifest and ONNX reuse the traces
    fixed = signatures.build_signatures(model, ["step"], batch=1)["step"]
    assert fixed is not built["step"] and fixed.inputs[0].shape[0] == 1
