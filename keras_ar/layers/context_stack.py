"""A coarse dilated stack over a downsampled history (long time scales for WaveNet)."""

import keras
import tensorflow as tf

from keras_ar.layers.gated_residual_block import GatedResidualBlock


@keras.saving.register_keras_serializable(package="keras_ar")
class ContextStack(keras.layers.Layer):
    """Context features for the main stack, computed at one step per `hop` samples.

    The input stream u_t (the embedded x_{t-1}) is average-pooled over blocks of `hop`
    samples, P_b = mean(u_{b hop}, ..., u_{b hop + hop - 1}); a causal dilated gated stack
    runs over the P_b; sample t in block b = t // hop receives the stack's output for block
    b - 1 (zeros for b = 0), which depends on u_{< b hop} only, so causality holds.

    Step state: `acc` (sum of the current block's u), the stack's FIFO buffers and `feature`
    (the output in use). When a block completes (index mod hop = hop - 1) the stack takes one
    step on acc / hop and its output becomes the feature of the next block.
    """

    def __init__(self, hop, dilations, input_channels, channels=32, output_channels=32,
                 kernel_size=2, **kwargs):
        super().__init__(**kwargs)
        self.hop = int(hop)
        self.dilations = [int(d) for d in dilations]
        self.input_channels = int(input_channels)
        self.channels = int(channels)
        self.output_channels = int(output_channels)
        self.kernel_size = int(kernel_size)
        if self.hop < 2 or not self.dilations:
            raise ValueError(
                f"A context stack needs context_hop >= 2 and at least one dilation; received "
                f"hop={hop}, dilations={dilations}.")
        self.input_proj = keras.layers.Dense(self.channels, name="input_proj")
        self.blocks = [
            GatedResidualBlock(self.channels, self.channels, self.kernel_size, d,
                               use_residual=i < len(self.dilations) - 1,
                               name=f"context_block_{i}")
            for i, d in enumerate(self.dilations)]
        self.output_proj = keras.layers.Dense(self.output_channels, name="output_proj")

    def build(self, input_shape=None):
        self.input_proj.build((None, None, self.input_channels))
        for block in self.blocks:
            block.build((None, None, self.channels))
        self.output_proj.build((None, None, self.channels))

    def state_spec(self, batch_size):
        spec = {"context_acc": tf.TensorSpec([batch_size, self.input_channels], tf.float32),
                "context_feature": tf.TensorSpec([batch_size, self.output_channels],
                                                 tf.float32)}
        for i, block in enumerate(self.blocks):
            spec[f"context_buffer_{i}"] = tf.TensorSpec(
                [batch_size, block.buffer_length, self.channels], tf.float32)
        return spec

    def _run(self, pooled, buffers=None):
        h = self.input_proj(pooled)
        skips = 0.0
        for i, block in enumerate(self.blocks):
            if buffers is None:
                h, skip, _ = block(h)
            else:
                h, skip, buffers[i] = block.step(h, None, buffers[i])
            skips = skips + skip
        return self.output_proj(tf.nn.relu(skips))

    def call(self, u):
        """u [B, T, input_channels] -> features [B, T, output_channels]."""
        batch, length = tf.shape(u)[0], tf.shape(u)[1]
        num_blocks = (length + self.hop - 1) // self.hop
        padded = tf.pad(u, [[0, 0], [0, num_blocks * self.hop - length], [0, 0]])
        pooled = tf.reduce_mean(
            tf.reshape(padded, [batch, num_blocks, self.hop, self.input_channels]), axis=2)
        out = self._run(pooled)  # (B, NB, C_out)
        shifted = tf.concat([tf.zeros_like(out[:, :1]), out[:, :-1]], axis=1)
        tiled = tf.tile(tf.expand_dims(shifted, 2), [1, 1, self.hop, 1])  # (B, F, hop, C)
        features = tf.reshape(tiled, [batch, num_blocks * self.hop, self.output_channels])
        return features[:, :length]

    def step(self, u_t, state, index):
        """u_t [B, input_channels], state dict, index [B] -> (feature_t, new_state)."""
        feature = tf.cast(state["context_feature"], u_t.dtype)
        acc = tf.cast(state["context_acc"], u_t.dtype) + u_t
        buffers = [state[f"context_buffer_{i}"] for i in range(len(self.blocks))]
        new_buffers = list(buffers)
        out = self._run(acc / float(self.hop), new_buffers)
        complete = tf.equal(tf.math.floormod(index, self.hop), self.hop - 1)

        def pick(new, old):
            mask = tf.reshape(complete, [-1] + [1] * (new.shape.rank - 1))
            return tf.where(mask, tf.cast(new, tf.float32), tf.cast(old, tf.float32))

        new_state = {"context_acc": pick(tf.zeros_like(acc), acc),
                     "context_feature": pick(out, feature)}
        for i in range(len(self.blocks)):
            new_state[f"context_buffer_{i}"] = pick(new_buffers[i], buffers[i])
        return feature, new_state

    def get_config(self):
        config = super().get_config()
        config.update(hop=self.hop, dilations=self.dilations,
                      input_channels=self.input_channels, channels=self.channels,
                      output_channels=self.output_channels, kernel_size=self.kernel_size)
        return config
