"""Export to ONNX: one `<signature>.onnx` per signature (tf2onnx, opset 17).

    <path>/<signature>.onnx        init_state, prefill, step, sample_step, log_prob, generate
    <path>/generation_spec.json    the manifest, also in each file's metadata_props
                                   ["generation_spec"]

tf2onnx writes a broken file and exits 0 when it meets an op it cannot convert, so every file
is checked before the export counts: `onnx.checker.check_model(full_check=True)`, an
onnxruntime session, and a numeric comparison of its outputs with the TensorFlow function on
example inputs (`check_atol`). The batch dimension (tf2onnx's `unk__N`) is renamed `batch`.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from export import manifest as manifest_lib
from export import signatures as signatures_lib
from export.atomic import atomic_directory
from keras_ar import contract

if TYPE_CHECKING:
    from keras_ar.models import AutoregressiveModel

OPSET = 17
ONNX_SIGNATURES = contract.ENDPOINTS


def export_onnx(model: AutoregressiveModel, path: str | os.PathLike,
                signatures: Sequence[str] = ONNX_SIGNATURES, stop_token: int | None = None,
                training: dict[str, Any] | None = None, overwrite: bool = False,
                check_atol: float | None = 1e-5,
                example_feeds: dict[str, dict[str, np.ndarray]] | None = None
                ) -> dict[str, Any]:
    """Write the ONNX directory `path` (atomically); return the manifest dict.

    `example_feeds`: {signature: {input: array}} used for the post-conversion numeric check
    (default: `export.verify.example_feeds(model)`); `check_atol=None` skips it (only the
    checker and an onnxruntime session), for callers that run the parity gate next.
    """
    import tf2onnx

    bad = sorted(set(signatures) - set(ONNX_SIGNATURES))
    if bad:
        raise ValueError(f"Signatures {bad} cannot be exported to ONNX; choose from "
                         f"{list(ONNX_SIGNATURES)}.")
    built = signatures_lib.build_signatures(model, signatures, stop_token=stop_token)
    files = {name: f"{name}.onnx" for name in built}
    manifest = manifest_lib.build_manifest(model, built, "onnx", files=files,
                                           stop_token=stop_token, training=training)
    if example_feeds is None and check_atol is not None:
        from export import verify

        example_feeds = verify.example_feeds(model, names=list(built))
    text = manifest_lib.dumps(manifest)
    with atomic_directory(path, overwrite) as tmp:
        for name, signature in built.items():
            with branch_shapes(), one_walk_pruning(), one_copy_optimizing(), \
                    lean_optimizer_passes():
                proto, _ = tf2onnx.convert.from_function(
                    signature.function, input_signature=signature.inputs, opset=OPSET)
            rename_batch_dim(proto)
            scalar_loop_counters(proto.graph)
            entry = proto.metadata_props.add()
            entry.key, entry.value = manifest_lib.EMBEDDED_KEY, text
            file = tmp / files[name]
            onnx.save(proto, str(file))
            check(file, signature, (example_feeds or {}).get(name), check_atol)
        manifest_lib.write_manifest(manifest, tmp)
    return manifest


@contextlib.contextmanager
def branch_shapes():
    """Give tf2onnx the right input shapes for control-flow bodies (`tf.cond` branches and
    `tf.while_loop` bodies, nested ones included).

    Loop bodies get the `While` op's shape invariants: grappler specialises a body that holds
    an `If` (PixelCNN++'s row pass) and records its arguments' shapes as unknown, and
    tf2onnx then emits transposes and concatenations without ranks (wrong `perm`, missing
    `axis`).

    tf2onnx 1.17 (`tf_loader.resolve_functions`) records a called function's input shapes as
    those of *all* the caller's inputs: for `If`/`StatelessIf` that includes the predicate,
    so each branch argument gets its neighbour's shape. It also resolves functions in
    library order, so a loop inside a branch is built before the branch has given its inputs
    shapes. A convolution in such a body then fails to convert (`kernel rank must be
    spatial+2`, and the checker reports `Attribute dilations has incorrect size`). This
    replaces `resolve_functions` for the conversion with one that drops the predicate and
    resolves callers before callees, passing the shapes down.
    """
    from tf2onnx import tfonnx

    original = tfonnx.resolve_functions
    tfonnx.resolve_functions = _resolve_functions
    try:
        yield
    finally:
        tfonnx.resolve_functions = original


@contextlib.contextmanager
def one_walk_pruning():
    """Let tf2onnx find the nodes its outputs depend on in one walk of the graph.

    tf2onnx 1.17 (`Graph.extract_sub_graph_nodes`, called by `delete_unused_nodes` after
    every rewrite and optimizer pass) walks the graph once per output without remembering
    the nodes it has seen, so a model with many state outputs walked it dozens of times per
    pass (a fifth of PixelCNN++'s `sample_step` conversion). The set of nodes kept is the
    same, so the ONNX graph is too."""
    from tf2onnx.graph import Graph

    original = Graph.extract_sub_graph_nodes

    def extract(graph, outputs_name, input_checker=None, remove_unused_inputs=True):
        if input_checker is not None:  # a custom boundary: tf2onnx's own walk
            return original(graph, outputs_name, input_checker, remove_unused_inputs)
        return _sub_graph_nodes(graph, outputs_name, remove_unused_inputs)

    Graph.extract_sub_graph_nodes = extract
    try:
        yield
    finally:
        Graph.extract_sub_graph_nodes = original


@contextlib.contextmanager
def one_copy_optimizing():
    """Let tf2onnx's optimizer passes work on the graph itself, with one copy to fall back on.

    tf2onnx 1.17 (`optimizer.optimize_graph` with `catch_errors`) deep-copies the whole graph
    before each of its ~24 optimizer passes so that a failing pass can be skipped (a quarter
    of PixelCNN++'s `sample_step` conversion). Here the passes run without the copies; if one
    fails, tf2onnx's own careful run starts again from the one copy taken before, so the
    result is tf2onnx's in either case."""
    from tf2onnx import optimizer

    original = optimizer.optimize_graph

    def optimize_graph(graph, catch_errors=True, optimizers=None):
        if not catch_errors:
            return original(graph, False, optimizers=optimizers)
        backup = copy.deepcopy(graph)
        try:
            return original(graph, False, optimizers=optimizers)
        except Exception:  # a pass failed: skip it as tf2onnx does, from the untouched graph
            return original(backup, True, optimizers=optimizers)

    optimizer.optimize_graph = optimize_graph
    try:
        yield
    finally:
        optimizer.optimize_graph = original


@contextlib.contextmanager
def lean_optimizer_passes():
    """Let each tf2onnx optimizer pass skip the protobuf rebuild that no later pass reads.

    tf2onnx 1.17 (`GraphOptimizerBase.optimize`) rebuilds every node's protobuf after each
    pass (`update_proto`, which serialises every loop and branch body again) and counts the
    graph's ops twice for a debug log line: about a quarter of each conversion, a third of
    PixelCNN++'s. Between passes the graph lives in tf2onnx's node objects; the one pass that
    reads the protobufs is `MergeDuplicatedNodesOptimizer`, which compares whole attribute
    sets (bodies included, so two loops that differ only in their bodies are not merged):
    they are rebuilt before that pass, and the final model is built from a fresh rebuild as
    before. The result is tf2onnx's graph up to which of two identical nodes feeds which
    output (tests/export/test_onnx_conversion_patches.py). A pass that leaves a body the
    protobuf rebuild rejects is found at the next rebuild instead of in that pass: before a
    merge pass (the conversion then falls back to tf2onnx's own run, `one_copy_optimizing`)
    or when the final model is built (the conversion fails with tf2onnx's error)."""
    from tf2onnx.optimizer import optimizer_base
    from tf2onnx.optimizer.merge_duplicated_nodes_optimizer import (
        MergeDuplicatedNodesOptimizer,
    )

    original = optimizer_base.GraphOptimizerBase.optimize

    def optimize(self, graph, iteration):
        self.opt_iteration = iteration
        if isinstance(self, MergeDuplicatedNodesOptimizer):
            graph.update_proto()  # it compares attributes: body protobufs must be current
        graph = self._optimize(graph)
        graph.delete_unused_nodes(graph.outputs)
        return graph

    optimizer_base.GraphOptimizerBase.optimize = optimize
    try:
        yield
    finally:
        optimizer_base.GraphOptimizerBase.optimize = original


def _sub_graph_nodes(graph, outputs_name, remove_unused_inputs=True):
    """The nodes of `graph` the outputs `outputs_name` depend on (and, unless
    `remove_unused_inputs`, its placeholders), found with one set of visited nodes."""
    outputs = list(outputs_name)
    if not remove_unused_inputs:  # placeholders stay, connected to an output or not
        outputs += [value.output[0] for value in graph.inputs]
    found = set()
    pending = [graph.get_node_by_output(name, search_in_parent_graphs=False)
               for name in outputs]
    while pending:
        node = pending.pop()
        if not node or node in found:
            continue
        found.add(node)
        for name in node.input + list(node.get_implicit_inputs()):
            pending.append(graph.get_node_by_output(name, search_in_parent_graphs=False))
    return list(found)


def _called_shapes(graph, branches=None):
    """{function name: [input shapes]} for the functions the ops of `graph` call (a loop's
    body and condition: its shape invariants); the names of `If` branches and loop bodies,
    whose shapes come from the caller, are added to the set `branches`."""
    import tensorflow as tf
    from tf2onnx import tf_loader

    shapes = tf_loader.tflist_to_onnx(graph, {})[-1]
    for op in graph.get_operations():
        if op.type in ("While", "StatelessWhile"):  # the loop's shape invariants
            for attr in ("body", "cond"):
                name = op.get_attr(attr).name
                shapes[name] = [tf.TensorShape(shape) for shape in op.get_attr("output_shapes")]
                if branches is not None:
                    branches.add(name)
        if op.type in ("If", "StatelessIf"):
            for attr in ("then_branch", "else_branch"):
                name = op.get_attr(attr).name
                shapes[name] = [t.get_shape() for t in op.inputs[1:]]
                if branches is not None:
                    branches.add(name)
    return shapes


def _resolve_functions(tf_graph):
    """tf2onnx's `resolve_functions`, resolving callers first (see `branch_shapes`);
    returns the function graphs, callees before callers."""
    from tensorflow.python.framework.function_def_to_graph import function_def_to_graph
    from tf2onnx import tf_loader

    library = {name: f.definition for name, f in tf_graph._functions.items()}
    branches = set()
    shapes, graphs, callees = _called_shapes(tf_graph, branches), {}, {}
    pending = list(shapes) + list(library)  # reachable ones first, then any others
    while pending:
        name = pending.pop(0)
        if name in graphs or name not in library:
            continue
        fdef, input_shapes = library[name], shapes.get(name)
        if input_shapes and len(fdef.signature.input_arg) < len(input_shapes):
            input_shapes = input_shapes[:len(fdef.signature.input_arg)]
        try:
            # If branches and loop bodies take the caller's shapes (for a loop: its invariants;
            # grappler's specialised bodies record their arguments' shapes as unknown)
            shaped = _caller_shapes_win(fdef, input_shapes) if name in branches else fdef
            graph = function_def_to_graph(shaped, input_shapes=input_shapes)
        except Exception:  # caller and function disagree: the function's own shapes
            graph = function_def_to_graph(fdef)
        graphs[name] = graph
        tf_loader.set_function(name, graph)
        inner = _called_shapes(graph, branches)
        callees[name] = set(inner)
        shapes.update(inner)
        pending = list(inner) + pending
    order = []

    def visit(name, seen):
        if name in seen or name not in graphs:
            return
        seen.add(name)
        for callee in sorted(callees.get(name, ())):
            visit(callee, seen)
        order.append(name)

    seen = set()
    for name in graphs:
        visit(name, seen)
    return [graphs[name] for name in order]


def scalar_loop_counters(graph):
    """Declare every `Loop` body's iteration number and condition scalars.

    tf2onnx leaves the body's counter input (`while_loop_counter`) without a shape when the
    loop body holds an `If` (GatedPixelCNN's row update); onnxruntime then refuses to run the
    loop (`Loop subgraph input 0 has unknown shape`). ONNX defines both as scalars."""
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type != onnx.AttributeProto.GRAPH:
                continue
            if node.op_type == "Loop":
                for value in attribute.g.input[:2]:
                    if not value.type.tensor_type.HasField("shape"):
                        value.type.tensor_type.shape.SetInParent()  # rank 0
            scalar_loop_counters(attribute.g)


def _caller_shapes_win(fdef, input_shapes):
    """A copy of `fdef` without the `_output_shapes` argument attributes where the caller
    knows the shape: `function_def_to_graph` lets them override `input_shapes`, and grappler's
    specialised branches (GatedPixelCNN's parallel prefill) record them as unknown, which
    leaves the branch's convolution kernels shapeless (tf2onnx cannot convert them)."""
    if not input_shapes:
        return fdef
    copy = type(fdef)()
    copy.CopyFrom(fdef)
    for i, shape in enumerate(input_shapes):
        if shape is not None and shape.rank is not None and i in copy.arg_attr:
            copy.arg_attr[i].attr.pop("_output_shapes", None)
    return copy


def rename_batch_dim(proto, name="batch"):
    """Name the leading (batch) dim_param of every graph input and output `name`."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = name


def session(file):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])


def check(file, signature, feeds, atol):
    """Checker, onnxruntime session and (with `feeds`) a numeric comparison with TF."""
    try:
        onnx.checker.check_model(onnx.load(str(file)), full_check=True)
        sess = session(file)
    except Exception as error:
        raise RuntimeError(
            f"ONNX export of signature {signature.name!r} is broken ({file.name}): tf2onnx "
            f"wrote a graph that fails the checker or onnxruntime.\n{error}") from error
    if feeds is None:
        return
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    want = {k: np.asarray(v) for k, v in signature.function(
        *[feeds[s.name] for s in signature.inputs]).items()}
    for key, expected in want.items():
        if key not in got:
            raise RuntimeError(f"ONNX {signature.name!r} lacks output {key!r}; has "
                               f"{sorted(got)}.")
        diff = _max_diff(expected, got[key])
        if diff > atol:
            raise RuntimeError(f"ONNX {signature.name!r} output {key!r} differs from "
                               f"TensorFlow by {diff:.3g} (> {atol}).")


def _max_diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
