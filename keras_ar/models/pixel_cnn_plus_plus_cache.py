"""Row caches for `PixelCNNPlusPlus.step` (the layout is documented on the model class).

The network is described once as a plan of nodes (one per cached activation), in the order
of the parallel pass. A node at scale s lives on the grid H_s x W_s = H / 2^s x W / 2^s and
keeps `<name>_cur` (the current row of that grid, `[B, W_s, C]`) and, when a convolution
reads the row above, `<name>_prev` (the row before). Ops:

* `init_u` / `init_ul`: the first shifted convolutions of the image rows;
* `c1`: conv1(concat_elu(src)) [+ nin(concat_elu(aux))] of a gated resnet;
* `c2`: src + a * sigmoid(b), [a, b] = conv2(concat_elu(c1)) + W h;
* `down`: the stride-2 shifted convolution from scale s - 1; `up`: the stride-2 transposed
  one from scale s + 1.

Reads of another column or row go through the caches with one-hot matmuls (equality masks,
no gather_nd / scatter), writes are `tf.where` blends; no `tf.cond`, so the step converts to
TFLite builtins and ONNX inside a generation loop.
"""

import dataclasses

import numpy as np
import tensorflow as tf


def concat_elu(x):
    return tf.nn.elu(tf.concat([x, -x], axis=-1))


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
    reach: int = 0  # columns right of the current one (own grid) computed each step
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
    plan = list(nodes.values())
    _set_reach(plan, nodes)
    return plan, ul


def _set_reach(plan, nodes):
    """Backward over the u stream: how many columns right of the current one each node must
    have computed this step so that every later read finds its value (see class doc)."""
    for node in reversed(plan):
        if node.stream != "u":
            continue
        m = node.reach
        src = nodes.get(node.src)
        if node.op in ("c1", "c2"):
            src.reach = max(src.reach, m + 1)  # a 2 x 3 convolution reads column + 1
            for name in node.aux:
                nodes[name].reach = max(nodes[name].reach, m)
        elif node.op == "down":
            src.reach = max(src.reach, 2 * m + 1)  # coarse col j reads fine cols <= 2j + 1
        elif node.op == "up":
            src.reach = max(src.reach, (m + 2) // 2)  # fine col b reads coarse <= (b+1)//2


def window(model, node):
    """Columns computed per step for `node`: reach + 1, at most the width of its grid."""
    if node.stream == "ul":
        return 1
    return min(node.reach + 1, model.width >> node.scale)


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
def _onehot(cols, width):
    """cols [B, n] -> [B, n, width] float; all-zero rows for columns outside [0, width)."""
    grid = tf.constant(np.arange(width, dtype=np.int32).reshape(1, 1, width))
    return tf.cast(tf.equal(tf.expand_dims(cols, 2), grid), tf.float32)


class _Memo(dict):
    """Per-step memo of index tensors shared by nodes with the same grid and window (keeps
    the step graph small); keys hold the tensors' ids, values keep those tensors alive."""

    def get_or(self, key, make):
        if key not in self:
            self[key] = make()
        return self[key][-1]


def _read(cache, cols, memo=None):
    """cache [B, W, C] at cols [B, n] -> [B, n, C], zeros outside the image (padding)."""
    width = cache.shape[1]
    make = lambda: (cols, _onehot(cols, width))  # noqa: E731
    onehot = memo.get_or(("read", id(cols), width), make) if memo is not None else make()[1]
    return tf.matmul(onehot, cache)


def _write(cache, cols, values, write, memo=None):
    """cache [B, W, C] with `values` [B, n, C] at cols [B, n] where `write` [B]."""
    width = cache.shape[1]

    def make():
        onehot = _onehot(cols, width)  # (B, n, W)
        hit = tf.logical_and(tf.reduce_max(onehot, axis=1) > 0, tf.expand_dims(write, 1))
        return cols, write, (onehot, tf.expand_dims(hit, 2))

    key = ("write", id(cols), id(write), width)
    onehot, hit = memo.get_or(key, make) if memo is not None else make()[-1]
    scattered = tf.matmul(onehot, values, transpose_a=True)  # (B, W, C)
    return tf.where(hit, scattered, cache)


def _matmul(x, kernel, bias=None):
    """x [B, n, K] @ kernel [K, F] (+ bias) as one 2-D matmul."""
    n, units = x.shape[1], kernel.shape[-1]
    y = tf.reshape(tf.matmul(tf.reshape(x, [-1, x.shape[2]]), kernel), [-1, n, units])
    return y if bias is None else y + bias


def _tap_columns(cols, offsets, num_rows, width):
    """[B, n * taps] columns of the stacked rows read by each (row p, offset q) tap, -1
    outside the image."""
    n = cols.shape[1]
    d_row = tf.constant([p * width for p in range(num_rows) for _ in offsets], tf.int32)
    d_col = tf.constant([q for _ in range(num_rows) for q in offsets], tf.int32)
    at = tf.expand_dims(cols, 2) + tf.reshape(d_col, [1, 1, -1])  # (B, n, taps)
    inside = tf.logical_and(at >= 0, at < width)
    at = tf.where(inside, at + tf.reshape(d_row, [1, 1, -1]), tf.constant(-1))
    return tf.reshape(at, [-1, n * len(offsets) * num_rows])


def _conv(rows, cols, offsets, kernel, bias, act=None, memo=None):
    """sum over kernel rows/cols of act(rows[p] at cols + offsets[q]) @ kernel[p, q] + bias.

    rows: one cache `[B, W, C]` per kernel row; kernel `[kh, kw, C', F]`. All taps are read
    with one one-hot matmul over the stacked rows; taps outside the image read zeros."""
    width, n, taps = rows[0].shape[1], cols.shape[1], len(rows) * len(offsets)
    make = lambda: (cols, _tap_columns(cols, offsets, len(rows), width))  # noqa: E731
    key = ("taps", id(cols), tuple(offsets), len(rows), width)
    at = memo.get_or(key, make) if memo is not None else make()[1]
    stacked = rows[0] if len(rows) == 1 else tf.concat(rows, axis=1)  # (B, kh * W, C)
    values = tf.reshape(_read(stacked, at, memo), [-1, n, taps, stacked.shape[2]])
    if act is not None:
        values = act(values)
    flat = tf.reshape(values, [-1, n, taps * values.shape[3]])  # kernel (p, q, C') order
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
    for node in model._plan:  # the row of grid s changes at fine (r, 0) with r % 2^s == 0
        if node.prev:
            state[f"{node.name}_prev"] = tf.where(scales[node.scale]["shift"],
                                                  state[f"{node.name}_cur"],
                                                  state[f"{node.name}_prev"])
    memo = _Memo()
    for node in model._plan:
        at, width = scales[node.scale], window(model, node)
        cols = memo.get_or(("cols", node.scale, width), lambda: (at["col"] + tf.constant(
            np.arange(width, dtype=np.int32).reshape(1, width)),))  # (B, n)
        value = _evaluate(model, node, state, cols, at["row"], h, memo)
        write = at["ul"] if node.stream == "ul" else at["u"]
        state[f"{node.name}_cur"] = _write(state[f"{node.name}_cur"], cols, value, write,
                                           memo)
    ul = _read(state[f"{model._final}_cur"], tf.expand_dims(col, 1))  # (B, 1, F)
    params = model.output_params(tf.nn.elu(tf.reshape(ul, [-1, model.filters])))
    state.pop("index")
    return params, state


def _scale(row, col, size):
    """Grid position and write masks of one scale at fine (row, col) [B]."""
    new_row = tf.equal(row % size, 0)  # this fine row computes a row of the grid
    return {"row": row // size, "col": tf.expand_dims(col // size, 1), "u": new_row,
            "ul": tf.logical_and(new_row, tf.equal(col % size, 0)),
            "shift": tf.reshape(tf.logical_and(new_row, tf.equal(col, 0)), [-1, 1, 1])}


def _push_pixel(model, x_prev, state, index, col):
    """Write y = [x_prev, 1] at raster position index - 1 into `y_row`; at a row start move
    the finished row into `y_rows` (the two rows above the current one)."""
    y = tf.concat([x_prev, tf.ones_like(x_prev[:, :1])], axis=-1)  # (B, C + 1)
    state["y_row"] = _write(state["y_row"], tf.expand_dims((index - 1) % model.width, 1),
                            tf.expand_dims(y, 1), index > 0)
    new_row = tf.logical_and(tf.equal(col, 0), index > 0)
    rows = tf.stack([state["y_rows"][:, 1], state["y_row"]], axis=1)  # (B, 2, W, C + 1)
    state["y_rows"] = tf.where(tf.reshape(new_row, [-1, 1, 1, 1]), rows, state["y_rows"])
    state["y_row"] = tf.where(tf.reshape(new_row, [-1, 1, 1]),
                              tf.zeros_like(state["y_row"]), state["y_row"])
    return state


def _evaluate(model, node, state, cols, row, h, memo):
    """The node's values `[B, n, F]` at grid row `row` [B], columns `cols` [B, n]."""
    cur = lambda name: state[f"{name}_cur"]  # noqa: E731
    rows = lambda name: [state[f"{name}_prev"], state[f"{name}_cur"]]  # noqa: E731
    above = lambda: tf.reshape(tf.cast(row > 0, tf.float32), [-1, 1, 1])  # noqa: E731
    if node.op == "init_u":  # down_shift(conv_2x3(y)): y rows r-2, r-1
        layer = model.init_u
        y_rows = [state["y_rows"][:, 0], state["y_rows"][:, 1]]
        return above() * _conv(y_rows, cols, _offsets(layer), layer.kernel, layer.bias,
                               memo=memo)
    if node.op == "init_ul":  # down_shift(conv_1x3(y)) + right_shift(conv_2x1(y))
        down, right = model.init_ul_down, model.init_ul_right
        left = tf.reshape(tf.cast(cols > 0, tf.float32), [-1, 1, 1])
        return (above() * _conv([state["y_rows"][:, 1]], cols, [-1, 0, 1], down.kernel,
                              down.bias)
                + left * _conv([state["y_rows"][:, 1], state["y_row"]], cols - 1, [0],
                               right.kernel, right.bias))
    if node.op == "c1":
        conv = node.layer.conv1
        y = _conv(rows(node.src), cols, _offsets(conv), conv.kernel, conv.bias, concat_elu,
                  memo)
        if node.aux:
            aux = _read(tf.concat([cur(name) for name in node.aux], axis=-1), cols, memo)
            y = y + _matmul(concat_elu(aux), node.layer.nin.kernel, node.layer.nin.bias)
        return y
    if node.op == "c2":
        block = node.layer
        c2 = _conv(rows(node.src), cols, _offsets(block.conv2), block.conv2.kernel,
                   block.conv2.bias, concat_elu, memo)
        if block.condition is not None:
            c2 = c2 + tf.expand_dims(block.condition(h), 1)
        a, b = tf.split(c2, 2, axis=-1)
        return _read(cur(node.aux[0]), cols, memo) + a * tf.sigmoid(b)
    if node.op == "down":  # coarse (i, j) <- fine rows 2i-1, 2i, cols 2j-1 .. 2j+kw-2
        layer = node.layer
        offsets = list(range(-1, layer.kernel_size[1] - 1))
        return _conv(rows(node.src), 2 * cols, offsets, layer.kernel, layer.bias)
    return _upsample(node.layer, cur(node.src), cols, row)


def _upsample(layer, coarse, cols, row):
    """Stride-2 transposed shifted conv at fine row `row`, cols: fine (a, b) <- coarse
    (a // 2, j) with kernel tap (a % 2, q), 2 j + q = b + left (the crop of the layer)."""
    kh, kw = layer.kernel_size
    left = (kw - 1) // 2 if layer.shift == "down" else 0
    taps = []
    for q in range(kw):
        num = cols + left - q
        value = _read(coarse, num // 2)
        taps.append(tf.where(tf.expand_dims(tf.equal(num % 2, 0), 2), value,
                             tf.zeros_like(value)))
    flat = tf.concat(taps, axis=-1)  # (B, n, kw * C_in)
    outs = []
    for p in range(kh):  # kernel [kh, kw, out, in] -> [kw * in, out] for row tap p
        kernel = tf.reshape(tf.transpose(layer.kernel[p], [0, 2, 1]), [-1, layer.filters])
        outs.append(_matmul(flat, kernel, layer.bias))
    odd = tf.reshape(tf.equal(row % 2, 1), [-1, 1, 1])
    return tf.where(odd, outs[1], outs[0])
