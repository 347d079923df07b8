"""export/onnx.py's conversion patches give tf2onnx's result: the one-walk pruning keeps
the nodes the outputs need, and a failing optimizer pass falls back to tf2onnx's own
error-tolerant run from the untouched copy."""

import numpy as np
import onnxruntime
import tensorflow as tf
import tf2onnx
from tf2onnx import optimizer
from tf2onnx.optimizer.optimizer_base import GraphOptimizerBase

from export import onnx as onnx_export

SPEC = (tf.TensorSpec([None, 3], tf.float32, name="x"),)


@tf.function(input_signature=SPEC)
def _two_outputs(x):
    unused = tf.exp(x) * 3.0  # noqa: F841  (pruned)
    y = tf.nn.relu(x @ tf.constant(np.arange(9, dtype=np.float32).reshape(3, 3)))
    return {"y": y + 1.0, "z": tf.reduce_sum(y, axis=1)}


def _convert():
    with onnx_export.one_walk_pruning(), onnx_export.one_copy_optimizing():
        proto, _ = tf2onnx.convert.from_function(_two_outputs, input_signature=SPEC,
                                                 opset=onnx_export.OPSET)
    return proto


def _run(proto, x):
    sess = onnxruntime.InferenceSession(proto.SerializeToString(),
                                        providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x})))


class _FailsOnce(GraphOptimizerBase):
    calls = 0

    def _optimize(self, graph):
        type(self).calls += 1
        if type(self).calls == 1:
            for node in list(graph.get_nodes()):  # half-done work on the graph, then fail
                if node.type == "Relu":
                    graph.remove_node(node.name)
                    break
            raise RuntimeError("a pass that breaks")
        return graph


def test_patched_conversion_matches_tensorflow_and_keeps_only_needed_nodes():
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    got = _run(_convert(), x)
    want = _two_outputs(tf.constant(x))
    for name in ("y", "z"):
        key = next(k for k in got if name in k)
        np.testing.assert_allclose(got[key], want[name].numpy(), rtol=1e-6)
    assert not [n for n in _convert().graph.node if n.op_type == "Exp"]


def test_a_failing_pass_falls_back_to_tf2onnx_from_the_untouched_graph(monkeypatch):
    passes = dict(optimizer._get_optimizers())
    monkeypatch.setattr(optimizer, "_get_optimizers",
                        lambda: {"FailsOnce": _FailsOnce, **passes})
    _FailsOnce.calls = 0
    x = np.random.default_rng(1).normal(size=(2, 3)).astype(np.float32)
    got = _run(_convert(), x)
    assert _FailsOnce.calls >= 2  # the fast run failed; tf2onnx's own run went again
    key = next(k for k in got if "y" in k)
    np.testing.assert_allclose(got[key], _two_outputs(tf.constant(x))["y"].numpy(), rtol=1e-6)
