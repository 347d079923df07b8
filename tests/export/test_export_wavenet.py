"""Export of WaveNet to SavedModel, TFLite and ONNX: conversion, parity gate, reloads.

Two tiny models cover the four variants: `conditioned` (global ids + local features + context
stack, categorical head, every signature on every target through `export_all`) and `mixture`
(unconditioned, discretized logistic mixture head, the step signatures). Artifacts are built
once per module.
"""

import json
import os
import pathlib
import site
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from export import export_all, verify
from export import manifest as manifest_lib
from export.export_all import parse_targets
from export.onnx import export_onnx
from export.saved_model import export_saved_model
from export.tflite import export_tflite, read_metadata
from keras_ar import contract
from keras_ar.models import WaveNet

SMALL = dict(num_classes=16, dilations=[1, 2], residual_channels=4, skip_channels=4)
STEP_SIGNATURES = (contract.INIT_STATE, contract.STEP, contract.SAMPLE_STEP, contract.LOG_PROB)
# ONNX for the mixture model: what its tests run (log_prob on ONNX is covered by `conditioned`)
MIXTURE_ONNX = (contract.INIT_STATE, contract.STEP, contract.SAMPLE_STEP)


def conditioned_model():
    return WaveNet(num_global_classes=3, local_condition_dim=2, local_hop=3, context_hop=2,
                   context_dilations=[1], context_channels=4, **SMALL)


def mixture_model():
    return WaveNet(head="logistic_mixture", num_mixtures=2, **SMALL)


@pytest.fixture(scope="module")
def conditioned(tmp_path_factory):
    model = conditioned_model()
    out = tmp_path_factory.mktemp("conditioned") / "export"
    report = export_all(model, out, quantize=("int8",))
    return model, out, report


@pytest.fixture(scope="module")
def mixture(tmp_path_factory):
    model = mixture_model()
    out = tmp_path_factory.mktemp("mixture")
    export_saved_model(model, out / "savedmodel", signatures=STEP_SIGNATURES)
    export_tflite(model, out / "tflite", signatures=STEP_SIGNATURES)
    export_onnx(model, out / "onnx", signatures=MIXTURE_ONNX, check_atol=None)  # gate below
    return model, out


def _print_report(report):
    print(json.dumps(report["targets"]))
    worst = {}
    for target, _, output, diff, _ in report["parity"]:
        if output not in (contract.X_NEXT,):
            worst[target] = max(worst.get(target, 0.0), diff)
    print("max float diff per target:", worst)


@pytest.mark.slow
def test_export_all_conditioned_passes_gate(conditioned):
    model, out, report = conditioned
    _print_report(report)
    rows = report["parity"]
    signatures = {row[1] for row in rows}
    assert set(contract.ENDPOINTS) <= signatures
    assert {row[0] for row in rows} == {"savedmodel", "tflite", "onnx"}
    assert all(row[-1] for row in rows)
    assert (out / "parity.txt").is_file()
    for target in ("savedmodel", "tflite", "onnx"):
        manifest = manifest_lib.read_manifest(out / target)
        assert manifest["artifact"] == target
        assert manifest["model"]["family"] == "WaveNet"
        assert manifest["state"][contract.INDEX_KEY] == {"shape": [None], "dtype": "int32"}


@pytest.mark.slow
def test_signature_tensor_names_follow_contract(conditioned):
    model, out, _ = conditioned
    manifest = manifest_lib.read_manifest(out / "savedmodel")
    step = manifest["signatures"][contract.STEP]
    state_keys = sorted(model.state_spec())
    assert sorted(step["inputs"]) == sorted(
        [contract.X_PREV, contract.GLOBAL_CONDITION, contract.LOCAL_CONDITION]
        + [contract.state_input_name(k) for k in state_keys])
    assert sorted(step["outputs"]) == sorted(
        [contract.PARAMS] + [contract.state_output_name(k) for k in state_keys])
    # step takes the frame of the current step, prefill/generate the whole sequence
    assert step["inputs"][contract.LOCAL_CONDITION]["shape"] == [None, 2]
    generate = manifest["signatures"][contract.GENERATE]["inputs"]
    assert generate[contract.LOCAL_CONDITION]["shape"] == [None, None, 2]
    for spec in manifest["signatures"].values():
        assert all(s["shape"] and s["shape"][0] is None for s in spec["inputs"].values())
    assert manifest["serving_default"] == contract.GENERATE_SEEDED
    assert manifest["decoding"]["mu_law"] is True and manifest["decoding"]["bit_depth"] == 4


@pytest.mark.slow
def test_manifest_embedded_in_every_artifact(conditioned):
    _, out, _ = conditioned
    import onnx

    assert json.loads((out / "savedmodel/assets/generation_spec.json").read_text())
    tflite = json.loads(read_metadata(out / "tflite/model.tflite"))
    assert tflite["artifact"] == "tflite" and "model_int8.tflite" in tflite["files"].values()
    # The int8 file holds every signature of the float32 one, conditions included. (These
    # 4-channel weights are under TFLite's 1024-element threshold, so nothing is quantised
    # here: sizes, int8 weights and the quantised step signatures' errors are checked on a
    # model TFLite really quantises, in test_quantized_steps.py.)
    from ai_edge_litert import interpreter as litert

    lists = [litert.Interpreter(model_path=str(out / "tflite" / name)).get_signature_list()
             for name in ("model.tflite", "model_int8.tflite")]
    assert lists[0] == lists[1] and contract.SAMPLE_STEP in lists[1], lists
    proto = onnx.load(str(out / "onnx/step.onnx"))
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props[manifest_lib.EMBEDDED_KEY])["artifact"] == "onnx"
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == "batch"


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 3])
def test_reload_at_other_batch_sizes(conditioned, batch):
    model, out, _ = conditioned
    runners = verify.runners_for(out)
    names = [contract.INIT_STATE, contract.STEP, contract.SAMPLE_STEP, contract.LOG_PROB]
    rows = verify.signature_parity(model, runners, names, batch=batch, seed=batch)
    assert rows and all(row[-1] for row in rows), verify.table(rows)


@pytest.mark.slow
def test_generate_seeded_is_row_independent(conditioned):
    model, out, _ = conditioned
    run = verify.saved_model_runner(out / "savedmodel")
    conditions = verify.example_conditions(model, 2, 6)
    feeds = {contract.SEED: np.array([5, 7], "int32"), "num_steps": np.full([2], 6, "int32"),
             contract.PROMPT: np.array([[1, 2, 3, 0, 0, 0], [4, 5, 0, 0, 0, 0]], "int32"),
             contract.PROMPT_LENGTH: np.array([3, 2], "int32"),
             contract.TEMPERATURE: np.ones([2], "float32"),
             contract.TOP_K: np.zeros([2], "int32"), contract.TOP_P: np.ones([2], "float32"),
             **conditions}
    both = run("serving_default", feeds)
    one = run(contract.GENERATE_SEEDED, {k: v[1:] for k, v in feeds.items()})
    np.testing.assert_array_equal(both[contract.X][1:], one[contract.X])
    np.testing.assert_array_equal(both[contract.X][0, :3], [1, 2, 3])  # the prompt stays
    np.testing.assert_array_equal(both[contract.X][1, :2], [4, 5])
    assert both["decoded"].dtype == np.float32 and np.abs(both["decoded"]).max() <= 1.0


@pytest.mark.slow
def test_mixture_head_parity_on_all_targets(mixture):
    model, out = mixture
    rows = verify.verify(model, out, num_steps=64)
    print(verify.table([r for r in rows if "x64" in r[1]]))
    assert {r[0] for r in rows} == {"savedmodel", "tflite", "onnx"}


@pytest.mark.slow
def test_saved_model_loads_without_keras_ar(mixture):
    """As TF Serving would: a process that cannot import keras_ar runs `step` by name."""
    _, out = mixture
    packages = [p for p in site.getsitepackages() if p.endswith("site-packages")]
    script = f"""
import sys
sys.path[:] = [p for p in sys.path if 'work/main' not in p] + {packages!r}
try:
    import keras_ar
    raise SystemExit('keras_ar importable')
except ImportError:
    pass
import numpy as np, tensorflow as tf
m = tf.saved_model.load({str(out / 'savedmodel')!r})
state = m.signatures['init_state'](batch_template=tf.zeros([2], tf.int32))
feeds = {{'state_' + k[len('new_state_'):]: v for k, v in state.items()}}
out = m.signatures['step'](x_prev=tf.constant([16, 16]), **feeds)
assert out['params'].shape[0] == 2 and int(out['new_state_index'][0]) == 1
print('ok', sorted(m.signatures))
"""
    env = {"PATH": os.environ.get("PATH", ""), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-I", "-S", "-c", script], env=env,
                          capture_output=True, text=True, cwd="/", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ok" in done.stdout
    cli = pathlib.Path(sys.executable).parent / "saved_model_cli"
    shown = subprocess.run([str(cli), "show", "--dir", str(out / "savedmodel"), "--all"],
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "signature_def['step']" in shown.stdout and "state_index" in shown.stdout


@pytest.mark.slow
def test_wrong_shape_at_run_time_is_a_clear_error(mixture):
    model, out = mixture
    manifest = manifest_lib.read_manifest(out / "savedmodel")
    feeds = verify.example_feeds(model, [contract.STEP])[contract.STEP]
    bad = dict(feeds, state_buffer_0=feeds["state_buffer_0"][:, :, :2])
    with pytest.raises(ValueError, match=r"state_buffer_0.*must have shape \[B, 1, 4\]"):
        manifest_lib.check_feeds(manifest, contract.STEP, bad)
    run = verify.saved_model_runner(out / "savedmodel")
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        run(contract.STEP, bad)
    onnx_run = verify.onnx_runner(out / "onnx")
    with pytest.raises(Exception, match="state_buffer_0|dimension|Got invalid"):
        onnx_run(contract.STEP, bad)


def test_unknown_target_is_refused():
    with pytest.raises(ValueError, match=r"Unknown export targets \['coreml'\]"):
        parse_targets("savedmodel,coreml")
    assert parse_targets("onnx,savedmodel") == ("savedmodel", "onnx")


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    with pytest.raises(FileExistsError, match="overwrite"):
        export_all(mixture_model(), out, targets="savedmodel")


def test_cli_errors_for_missing_and_foreign_checkpoints(tmp_path, capsys):
    from pipelines import cli

    rc = cli.main(["export", "--checkpoint", str(tmp_path / "none.keras"), "--out",
                   str(tmp_path / "o")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    import keras

    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.save(tmp_path / "dense.keras")
    rc = cli.main(["export", "--checkpoint", str(tmp_path / "dense.keras"), "--out",
                   str(tmp_path / "o")])
    assert rc == 2 and "not a keras_ar AutoregressiveModel" in capsys.readouterr().err
    rc = cli.main(["export", "--checkpoint", str(tmp_path / "dense.keras"), "--targets",
                   "tflite,x", "--out", str(tmp_path / "o")])
    assert rc == 2 and "Unknown export targets" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cli_exports_a_fixed_batch_tflite_that_passes_the_gate(tmp_path, capsys):
    """`--tflite-batch-size 1` (the fastest on-device `generate`) writes a TFLite model with
    a static batch, names the size in its manifest and passes the parity gate."""
    from pipelines import cli

    model = WaveNet(**SMALL)
    model.save(tmp_path / "model.keras")
    rc = cli.main(["export", "--checkpoint", str(tmp_path / "model.keras"), "--targets",
                   "tflite", "--tflite-batch-size", "1", "--num-steps", "8", "--out",
                   str(tmp_path / "o")])
    assert rc == 0, capsys.readouterr().err
    manifest = manifest_lib.read_manifest(tmp_path / "o" / "tflite")
    assert manifest["batch"] == {"dynamic": False, "sizes": [1]}
    assert "tflite" in (tmp_path / "o" / "parity.txt").read_text()
    inputs = manifest["signatures"][contract.GENERATE]["inputs"]
    shapes = [spec["shape"] for spec in inputs.values()]
    assert all(shape[0] == 1 for shape in shapes), shapes
    # the README's `keras-ar export verify --out DIR`: the export kept its Keras reference
    assert (tmp_path / "o" / "model.keras").is_file()
    capsys.readouterr()
    assert cli.main(["export", "verify", "--out", str(tmp_path / "o"), "--num-steps", "8"]) == 0
    assert "sample_chunk" in capsys.readouterr().out
    assert cli.main(["export", "verify", "--out", str(tmp_path / "elsewhere")]) == 2
    assert "needs --checkpoint" in capsys.readouterr().err


def test_read_manifest_needs_no_tensorflow(tmp_path):
    (tmp_path / contract.MANIFEST_FILENAME).write_text(json.dumps(
        {"schema_version": contract.MANIFEST_SCHEMA_VERSION, "signatures": {}}))
    script = ("import sys; from export.manifest import read_manifest; "
              f"read_manifest({str(tmp_path)!r}); "
              "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=str(pathlib.Path(__file__).parents[2]), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    (tmp_path / contract.MANIFEST_FILENAME).write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(ValueError, match="schema_version 99"):
        manifest_lib.read_manifest(tmp_path)
