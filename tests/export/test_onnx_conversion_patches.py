"""export/onnx.py's conversion patches give tf2onnx's result: the one-walk pruning keeps
the nodes the outputs need, a failing optimizer pass falls back to tf2onnx's own
error-tolerant run from the untouched copy, and the lean optimizer passes build the same
graph as tf2onnx's own (loops that differ only in their bodies stay apart)."""

import collections
import contextlib

import numpy as np
import onnx
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


@tf.function(input_signature=SPEC)
def _two_loops(x):
    """Two loops with the same inputs whose bodies differ: merging them would be wrong."""
    n = tf.shape(x)[0]
    _, doubled = tf.while_loop(lambda i, v: i < n, lambda i, v: (i + 1, v * 2.0), (0, x))
    _, shifted = tf.while_loop(lambda i, v: i < n, lambda i, v: (i + 1, v + 1.0), (0, x))
    return {"doubled": doubled * 3.0, "shifted": shifted * 3.0}  # the loops feed other nodes


def _convert(function=_two_outputs, patched=True):
    with contextlib.ExitStack() as stack:
        if patched:
            for patch in (onnx_export.one_walk_pruning, onnx_export.one_copy_optimizing,
                          onnx_export.lean_optimizer_passes):
                stack.enter_context(patch())
        proto, _ = tf2onnx.convert.from_function(function, input_signature=SPEC,
                                                 opset=onnx_export.OPSET)
    return proto


def _op_counts(graph, counts=None):
    """{op type: count} over `graph` and every body inside it."""
    counts = collections.Counter() if counts is None else counts
    for node in graph.node:
        counts[node.op_type] += 1
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                _op_counts(attribute.g, counts)
    return counts


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


def test_lean_passes_keep_loops_with_different_bodies_apart_and_match_tf2onnx(monkeypatch):
    from tf2onnx.optimizer.merge_duplicated_nodes_optimizer import (
        MergeDuplicatedNodesOptimizer as Merge,
    )

    stale, compared, merge = [], [], Merge._optimize

    def check_bodies_then_merge(self, graph):  # the attributes it compares are current
        for node in graph.get_nodes():
            for name, body in (node.get_body_graphs() or {}).items():
                fresh = body.make_graph(f"graph for {node.name} {name}")
                compared.append(node.name)
                held = node.attr[name].g  # its nodes (types differ only in unk__N names)
                if [n.SerializeToString() for n in fresh.node] != [
                        n.SerializeToString() for n in held.node]:
                    stale.append(node.name)
        return merge(self, graph)

    monkeypatch.setattr(Merge, "_optimize", check_bodies_then_merge)
    x = np.random.default_rng(2).normal(size=(3, 3)).astype(np.float32)
    lean = _convert(_two_loops)
    assert compared and not stale, stale
    monkeypatch.setattr(Merge, "_optimize", merge)
    plain = _convert(_two_loops, patched=False)
    assert _op_counts(lean.graph)["Loop"] == 2
    assert _op_counts(lean.graph) == _op_counts(plain.graph)
    got, want = _run(lean, x), _two_loops(tf.constant(x))
    for name in ("doubled", "shifted"):
        key = next(k for k in got if name in k)
        np.testing.assert_allclose(got[key], want[name].numpy(), rtol=1e-6)
