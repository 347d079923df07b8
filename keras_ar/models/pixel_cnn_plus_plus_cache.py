"""Row caches for `PixelCNNPlusPlus.step` (the layout is documented on the model class).

The network is described once as a plan of nodes (one per cached activation), in the order
of the parallel pass. A node at scale s lives on the grid H_s x W_s = H / 2^s x W / 2^s and
keeps `<name>_cur` (the current row of that grid, `[B, W_s, C]`) and, when a convolution
reads the row above, `<name>_prev` (the row before). The u stream (rows above only) is
computed a whole row at a time, inside one `tf.cond` at the first pixel of a row; the ul
stream one location per step. Ops:

* `init_u` / `init_ul`: the first shifted convolutions of the image rows;
* `c1`: conv1(concat_elu(src)) [+ nin(concat_elu(aux))] of a gated resnet;
* `c2`: src + a * sigmoid(b), [a, b] = conv2(concat_elu(c1)) + W h;
* `down`: the stride-2 shifted convolution from scale s - 1; `up`: the stride-2 transposed
  one from scale s + 1.

Row convolutions are pads, (strided) slices and one matmul (`ShiftedConv2D.row_step` at
stride 1); the ul stream reads columns of the caches with batched gathers (clipped, zeros
outside the image) and writes them with a select against a column mask (no scatter). The one
`tf.cond` converts to TFLite's builtin
IF and ONNX's If, also inside a generation loop.
"""

import dataclasses

import numpy as np
import tensorflow as tf


def concat_elu(x):
    """elu([x, -x]) on the last axis, named by its positive index (tf2onnx cannot place a
    negative axis on a tensor whose rank it lost inside an If in a Loop)."""
    return tf.nn.elu(tf.concat([x, -x], axis=len(x.shape) - 1))


@dataclasses.dataclass
class Node:
    name: str
    stream: str  # "u" (rows above: computed on a window of columns) or "ul" (one pixel)
    scale: int
    op: str
    channels: int
    layer: object = None
    src: str = None
    aux: tuple = ()
    prev: bool = False  # a convolution reads the row above: keep `<name>_prev`


def build_plan(model):
    """Nodes of `model` in the order of its parallel pass (`PixelCNNPlusPlus._forward`)."""
    f, nodes = model.filters, {}

    def add(name, stream, scale, op, layer=None, src=None, aux=(), prev_src=False):
        nodes[name] = Node(name, stream, scale, op, f, layer, src, tuple(aux))
        if prev_src:
            nodes[src].prev = True
        return name

    def resnet(name, stream, scale, block, src, aux):
        c1 = add(f"{name}_c1", stream, scale, "c1", block, src, aux, prev_src=True)
        return add(name, stream, scale, "c2", block, c1, (src,), prev_src=True)

    u = add("u_init", "u", 0, "init_u")
    ul = add("ul_init", "ul", 0, "init_ul")
    u_skips, ul_skips = [u], [ul]
    for s, (u_blocks, ul_blocks) in enumerate(model.up_blocks):
        for k, (u_block, ul_block) in enumerate(zip(u_blocks, ul_blocks)):
            u = resnet(f"up{s}_u{k}", "u", s, u_block, u, ())
            ul = resnet(f"up{s}_ul{k}", "ul", s, ul_block, ul, (u,))
            u_skips.append(u)
            ul_skips.append(ul)
        if s + 1 < model.num_scales:
            u = add(f"down{s}_u", "u", s + 1, "down", model.downsample[s][0], u, prev_src=True)
            ul = add(f"down{s}_ul", "ul", s + 1, "down", model.downsample[s][1], ul,
                     prev_src=True)
            u_skips.append(u)
            ul_skips.append(ul)
    u, ul = u_skips.pop(), ul_skips.pop()
    for t, (u_blocks, ul_blocks) in enumerate(model.down_blocks):
        s = model.num_scales - 1 - t
        if t > 0:
            u = add(f"up{t - 1}_u", "u", s, "up", model.upsample[t - 1][0], u)
            ul = add(f"up{t - 1}_ul", "ul", s, "up", model.upsample[t - 1][1], ul)
        for k, (u_block, ul_block) in enumerate(zip(u_blocks, ul_blocks)):
            u = resnet(f"dn{t}_u{k}", "u", s, u_block, u, (u_skips.pop(),))
            ul = resnet(f"dn{t}_ul{k}", "ul", s, ul_block, ul, (u, ul_skips.pop()))
    return list(nodes.values()), ul


def state_spec(model, batch_size):
    spec = {"y_rows": tf.TensorSpec([batch_size, 2, model.width, model.channels + 1],
                                    tf.float32),
            "y_row": tf.TensorSpec([batch_size, model.width, model.channels + 1], tf.float32)}
    for node in model._plan:
        shape = [batch_size, model.width >> node.scale, node.channels]
        spec[f"{node.name}_cur"] = tf.TensorSpec(shape, tf.float32)
        if node.prev:
            spec[f"{node.name}_prev"] = tf.TensorSpec(shape, tf.float32)
    return spec


# --------------------------------------------------------------------- cache reads/writes
def _read(cache, cols):
    """cache [B, W, C] at cols [B, n] -> [B, n, C], zeros outside the image (padding). A
    batched gather: O(n C), whatever W."""
    width = cache.shape[1]
    values = tf.gather(cache, tf.clip_by_value(cols, 0, width - 1), axis=1, batch_dims=1)
    inside = tf.logical_and(cols >= 0, cols < width)
    return tf.where(tf.expand_dims(inside, 2), values, tf.zeros_like(values))


def _write(cache, col, value, write):
    """cache [B, W, C] with `value` [B, 1, C] at column col [B, 1] where `write` [B]: one
    select against a column mask (no scatter)."""
    grid = tf.constant(np.arange(cache.shape[1], dtype=np.int32).reshape(1, -1))
    hit = tf.logical_and(tf.equal(col, grid), tf.expand_dims(write, 1))  # (B, W)
    return tf.where(tf.expand_dims(hit, 2), value, cache)


def _matmul(x, kernel, bias=None):
    """x [B, n, K] @ kernel [K, F] (+ bias) as one 2-D matmul."""
    n, units = x.shape[1], kernel.shape[-1]
    y = tf.reshape(tf.matmul(tf.reshape(x, [-1, x.shape[2]]), kernel), [-1, n, units])
    return y if bias is None else y + bias


def _conv(rows, cols, offsets, kernel, bias, act=None):
    """sum over kernel rows/cols of act(rows[p] at cols + offsets[q]) @ kernel[p, q] + bias.

    rows: one cache `[B, W, C]` per kernel row; kernel `[kh, kw, C', F]`. Each row's taps
    are one gather; taps outside the image read zeros."""
    n, kw = cols.shape[1], len(offsets)
    at = tf.reshape(tf.expand_dims(cols, 2) + tf.constant(offsets, tf.int32), [-1, n * kw])
    values = tf.stack([tf.reshape(_read(row, at), [-1, n, kw, row.shape[2]]) for row in rows],
                      axis=2)  # (B, n, kh, kw, C)
    if act is not None:
        values = act(values)
    flat = tf.reshape(values, [-1, n, len(rows) * kw * values.shape[4]])  # (p, q, C') order
    return _matmul(flat, tf.reshape(kernel, [-1, kernel.shape[-1]]), bias)


def _offsets(layer):
    """Column offsets of a stride-1 shifted kernel's taps: down -1..1, down-right -1..0."""
    kw = layer.kernel_size[1]
    left = (kw - 1) // 2 if layer.shift == "down" else kw - 1
    return [q - left for q in range(kw)]


# --------------------------------------------------------------------- one step
def step(model, x_prev, state, h):
    """x_prev `[B, C]` features of pixel index - 1; h `[B, G]` or None. -> (params, state)."""
    index = state["index"]
    row, col = index // model.width, index % model.width
    state = _push_pixel(model, x_prev, dict(state), index, col)
    scales = [_scale(row, col, 2 ** s) for s in range(model.num_scales)]
    keys = ([f"{node.name}_prev" for node in model._plan if node.prev]
            + [f"{node.name}_cur" for node in model._plan if node.stream == "u"])
    weights = {id(v): tf.identity(v) for v in model.weights}  # read outside the branch
    new_rows = tf.cond(tf.reduce_any(tf.equal(col, 0)),
                       lambda: _row_start(model, state, scales, h, keys, weights),
                       lambda: [tf.identity(state[key]) for key in keys])
    state.update(zip(keys, new_rows))
    for node in model._plan:
        if node.stream != "ul":
            continue
        at = scales[node.scale]
        value = _evaluate(model, node, state, at["col"], at["row"], h)
        state[f"{node.name}_cur"] = _write(state[f"{node.name}_cur"], at["col"], value,
                                           at["ul"])
    ul = _read(state[f"{model._final}_cur"], tf.expand_dims(col, 1))  # (B, 1, F)
    params = model.output_params(tf.nn.elu(tf.reshape(ul, [-1, model.filters])))
    state.pop("index")
    return params, state


def _row_start(model, state, scales, h, keys, weights):
    """At a fine row start (r, 0), for every scale s with r % 2^s == 0: move each node's
    `_cur` row into `_prev`, then compute the u nodes' whole new rows r_s (rows above only:
    all of it is computable now). -> the new values of `keys`, in order. `weights`:
    id(variable) -> its value, read outside the `tf.cond` (ONNX converters cannot convert a
    kernel read inside an If)."""
    w = lambda variable: weights[id(variable)]
    state = dict(state)
    for node in model._plan:
        if node.prev:
            state[f"{node.name}_prev"] = tf.where(scales[node.scale]["shift"],
                                                  state[f"{node.name}_cur"],
                                                  state[f"{node.name}_prev"])
    for node in model._plan:
        if node.stream == "u":
            at = scales[node.scale]
            value = _evaluate_row(model, node, state, at["row"], h, w)
            key = f"{node.name}_cur"
            state[key] = tf.where(at["shift"], value, state[key])
    return [state[key] for key in keys]


def _scale(row, col, size):
    """Grid position and write masks of one scale at fine (row, col) [B]."""
    new_row = tf.equal(row % size, 0)  # this fine row computes a row of the grid
    return {"row": row // size, "col": tf.expand_dims(col // size, 1), "u": new_row,
            "ul": tf.logical_and(new_row, tf.equal(col % size, 0)),
            "shift": tf.reshape(tf.logical_and(new_row, tf.equal(col, 0)), [-1, 1, 1])}


def _push_pixel(model, x_prev, state, index, col):
    """Write y = [x_prev, 1] at raster position index - 1 into `y_row`; at a row start move
    the finished row into `y_rows` (the two rows above the current one)."""
    y = tf.concat([x_prev, tf.ones_like(x_prev[:, :1])], axis=1)  # (B, C + 1)
    state["y_row"] = _write(state["y_row"], tf.expand_dims((index - 1) % model.width, 1),
                            tf.expand_dims(y, 1), index > 0)
    new_row = tf.logical_and(tf.equal(col, 0), index > 0)
    rows = tf.stack([state["y_rows"][:, 1], state["y_row"]], axis=1)  # (B, 2, W, C + 1)
    state["y_rows"] = tf.where(tf.reshape(new_row, [-1, 1, 1, 1]), rows, state["y_rows"])
    state["y_row"] = tf.where(tf.reshape(new_row, [-1, 1, 1]),
                              tf.zeros_like(state["y_row"]), state["y_row"])
    return state


def _evaluate(model, node, state, cols, row, h):
    """The node's values `[B, n, F]` at grid row `row` [B], columns `cols` [B, n]."""
    cur = lambda name: state[f"{name}_cur"]
    rows = lambda name: [state[f"{name}_prev"], state[f"{name}_cur"]]
    above = lambda: tf.reshape(tf.cast(row > 0, tf.float32), [-1, 1, 1])
    if node.op == "init_ul":  # down_shift(conv_1x3(y)) + right_shift(conv_2x1(y))
        down, right = model.init_ul_down, model.init_ul_right
        left = tf.reshape(tf.cast(cols > 0, tf.float32), [-1, 1, 1])
        return (above() * _conv([state["y_rows"][:, 1]], cols, [-1, 0, 1], down.kernel,
                              down.bias)
                + left * _conv([state["y_rows"][:, 1], state["y_row"]], cols - 1, [0],
                               right.kernel, right.bias))
    if node.op == "c1":
        conv = node.layer.conv1
        y = _conv(rows(node.src), cols, _offsets(conv), conv.kernel, conv.bias, concat_elu)
        if node.aux:
            aux = tf.concat([_read(cur(name), cols) for name in node.aux], axis=2)
            y = y + _matmul(concat_elu(aux), node.layer.nin.kernel, node.layer.nin.bias)
        return y
    if node.op == "c2":
        block = node.layer
        c2 = _conv(rows(node.src), cols, _offsets(block.conv2), block.conv2.kernel,
                   block.conv2.bias, concat_elu)
        if block.condition is not None:
            c2 = c2 + tf.expand_dims(block.condition(h), 1)
        a, b = tf.split(c2, 2, axis=2)
        return _read(cur(node.aux[0]), cols) + a * tf.sigmoid(b)
    if node.op == "down":  # coarse (i, j) <- fine rows 2i-1, 2i, cols 2j-1 .. 2j+kw-2
        layer = node.layer
        offsets = list(range(-1, layer.kernel_size[1] - 1))
        return _conv(rows(node.src), 2 * cols, offsets, layer.kernel, layer.bias)
    return _upsample(node.layer, cur(node.src), cols, row)


def _upsample(layer, coarse, cols, row):
    """Stride-2 transposed shifted conv at fine row `row`, cols: fine (a, b) <- coarse
    (a // 2, j) with kernel tap (a % 2, q), 2 j + q = b + left (the crop of the layer)."""
    kw = layer.kernel_size[1]
    left = (kw - 1) // 2 if layer.shift == "down" else 0
    taps = []
    for q in range(kw):
        num = cols + left - q
        value = _read(coarse, num // 2)
        taps.append(tf.where(tf.expand_dims(tf.equal(num % 2, 0), 2), value,
                             tf.zeros_like(value)))
    flat = tf.concat(taps, axis=2)  # (B, n, kw * C_in)
    return _transposed_output(layer, flat, row, lambda variable: variable)


def _transposed_output(layer, flat, row, w):
    """The stride-2 transposed conv's fine row `row` from its taps `flat` [B, n, kw * C_in]:
    kernel row tap 0 on even rows, 1 on odd ones."""
    outs = []
    for p in range(layer.kernel_size[0]):  # kernel [kh, kw, out, in] -> [kw * in, out]
        kernel = tf.reshape(tf.transpose(w(layer.kernel)[p], [0, 2, 1]), [-1, layer.filters])
        outs.append(_matmul(flat, kernel, w(layer.bias)))
    odd = tf.reshape(tf.equal(row % 2, 1), [-1, 1, 1])
    return tf.where(odd, outs[1], outs[0])


# --------------------------------------------------------------------- whole rows (u stream)
def _row_taps(rows, offsets, stride=1, act=None):
    """[B, W_out, taps * C]: for each row and column offset q (row-major, the kernel's
    (p, q, C) order), the row's values at stride * j + q, zeros outside the row."""
    width = rows[0].shape[1]
    n = width // stride
    lo, hi = max(0, -min(offsets)), max(0, max(offsets) + stride * (n - 1) - (width - 1))
    taps = []
    for values in rows:
        values = act(values) if act is not None else values  # act(0) = 0: pad after it
        padded = tf.pad(values, [[0, 0], [lo, hi], [0, 0]])
        taps += [padded[:, lo + q:lo + q + stride * (n - 1) + 1:stride] for q in offsets]
    return tf.concat(taps, axis=2)


def _row_step(layer, rows, w, act=None):
    """A stride-1 shifted convolution's output row from its input rows (above first):
    `ShiftedConv2D.row_step` with the weights read outside the branch."""
    rows = [act(values) for values in rows] if act is not None else rows
    return layer.row_step(tf.stack(rows, axis=1), (w(layer.kernel), w(layer.bias)))


def _evaluate_row(model, node, state, row, h, w):
    """The u node's values `[B, W_s, F]` on the whole grid row `row` [B]."""
    cur = lambda name: state[f"{name}_cur"]
    rows = lambda name: [state[f"{name}_prev"], state[f"{name}_cur"]]
    if node.op == "init_u":  # down_shift(conv_2x3(y)): y rows r-2, r-1
        layer = model.init_u
        above = tf.reshape(tf.cast(row > 0, tf.float32), [-1, 1, 1])
        y_rows = [state["y_rows"][:, 0], state["y_rows"][:, 1]]
        return above * _row_step(layer, y_rows, w)
    if node.op == "c1":
        conv = node.layer.conv1
        y = _row_step(conv, rows(node.src), w, concat_elu)
        if node.aux:
            aux = tf.concat([cur(name) for name in node.aux], axis=2)
            nin = node.layer.nin
            y = y + _matmul(concat_elu(aux), w(nin.kernel), w(nin.bias))
        return y
    if node.op == "c2":
        block = node.layer
        c2 = _row_step(block.conv2, rows(node.src), w, concat_elu)
        if block.condition is not None:
            c2 = c2 + tf.expand_dims(tf.matmul(h, w(block.condition.kernel)), 1)
        a, b = tf.split(c2, 2, axis=2)
        return cur(node.aux[0]) + a * tf.sigmoid(b)
    if node.op == "down":  # coarse (i, j) <- fine rows 2i-1, 2i, cols 2j-1 .. 2j+kw-2
        layer = node.layer
        taps = _row_taps(rows(node.src), list(range(-1, layer.kernel_size[1] - 1)), stride=2)
        return _matmul(taps, tf.reshape(w(layer.kernel), [-1, layer.filters]), w(layer.bias))
    return _upsample_row(node.layer, cur(node.src), row, w)


def _upsample_row(layer, coarse, row, w):
    """`_upsample` on the whole fine row: with z the coarse row interleaved with zeros
    (z[2j] = coarse[j], z[2j + 1] = 0), tap q at fine column b reads z[b + left - q]."""
    kw = layer.kernel_size[1]
    left = (kw - 1) // 2 if layer.shift == "down" else 0
    channels = coarse.shape[2]
    z = tf.reshape(tf.stack([coarse, tf.zeros_like(coarse)], axis=2),
                   [-1, 2 * coarse.shape[1], channels])  # (B, W, C)
    flat = _row_taps([z], [left - q for q in range(kw)])  # (B, W, kw * C)
    return _transposed_output(layer, flat, row, w)
