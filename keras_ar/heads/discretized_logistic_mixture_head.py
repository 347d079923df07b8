"""Discretized mixture of logistics (PixelCNN++, Salimans et al. 2017, sec. 2.1-2.2).

A value x in {0, ..., L-1} is rescaled to y = 2x / (L-1) - 1 in [-1, 1]. With mixture weights
pi, means mu and scales s, the probability of a value is the logistic mass of its bin:

    P(y) = sum_i pi_i [sigma((y + 1/(L-1) - mu_i) / s_i) - sigma((y - 1/(L-1) - mu_i) / s_i)]

with the edge bins extended to -inf (y = -1) and +inf (y = 1), so the L bins sum to exactly 1.
For RGB pixels (C=3) the channel means are coupled linearly inside each component:
mu_G = mu_G' + c_0 y_R, mu_B = mu_B' + c_1 y_R + c_2 y_G, c = tanh(raw coefficients).

Parameter layout (that of the reference implementation, so results compare with it):
per position, M mixture logits, then for each channel M means, M log-scales (clamped at -7)
and, for C=3, M raw coupling coefficients: 10 M values for C=3, 3 M for C=1.

Sampling from uniforms: one for the component (inverse CDF after temperature / top-k / top-p
on the mixture weights) and one per channel for the logistic, y = mu + s * temperature *
(log u - log(1 - u)); each channel is quantised before it couples into the next, so samples
follow exactly the distribution scored by `log_prob`. Temperature <= 0 gives the component
argmax and its mean.
"""


import keras
import tensorflow as tf

from keras_ar.heads.distribution_head import DistributionHead
from keras_ar.ops.sampling import sample_categorical, select_by_index


@keras.saving.register_keras_serializable(package="keras_ar")
class DiscretizedLogisticMixtureHead(DistributionHead):
    """Mixture of `num_mixtures` discretized logistics over `num_levels` values per channel."""

    def __init__(self, num_mixtures=5, num_channels=3, num_levels=256, **kwargs):
        super().__init__(**kwargs)
        if int(num_channels) not in (1, 3):
            raise ValueError(f"`num_channels` must be 1 or 3; received {num_channels}.")
        if int(num_levels) < 2 or int(num_mixtures) < 1:
            raise ValueError(
                f"Need num_levels >= 2 and num_mixtures >= 1; received {num_levels}, "
                f"{num_mixtures}.")
        self.num_mixtures = int(num_mixtures)
        self.num_channels = int(num_channels)
        self.num_levels = int(num_levels)

    @property
    def sample_level_tolerance(self):
        """Levels by which runtimes' samples may differ (the export parity gate's bound).

        A sample is a real value rounded to one of L levels; two runtimes whose float
        results differ by ~1e-7 (normal between TFLite, ONNX Runtime and TensorFlow) round a
        value near a bin boundary differently. With L <= 256 (bins >= 0.008 wide) that is
        practically never seen, so samples must be identical; above, it happens at a rate
        proportional to L, and a one-level difference is all it can cause.
        """
        return 0 if self.num_levels <= 256 else 1

    @property
    def _per_channel(self):
        return 3 if self.num_channels == 3 else 2

    @property
    def num_params(self):
        return self.num_mixtures * (1 + self.num_channels * self._per_channel)

    @property
    def event_shape(self):
        return (self.num_channels,)

    @property
    def noise_size(self):
        return 1 + self.num_channels

    def unpack(self, params):
        """-> logits (..., M), means, log_scales, coeffs (..., C, M); coeffs None for C=1."""
        params = tf.cast(params, tf.float32)
        m, c = self.num_mixtures, self.num_channels
        logits = params[..., :m]
        rest_shape = tf.concat([tf.shape(params)[:-1], [c, self._per_channel * m]], 0)
        rest = tf.reshape(params[..., m:], rest_shape)  # (..., C, per_channel * M)
        means = rest[..., :m]
        log_scales = tf.maximum(rest[..., m:2 * m], -7.0)
        coeffs = tf.tanh(rest[..., 2 * m:3 * m]) if c == 3 else None
        return logits, means, log_scales, coeffs

    def _to_unit(self, x):
        return 2.0 * tf.cast(x, tf.float32) / (self.num_levels - 1) - 1.0

    def _coupled_means(self, means, coeffs, y):
        """Means with the RGB coupling; y (..., C) in [-1, 1]."""
        if coeffs is None:
            return means
        y = tf.expand_dims(y, -1)  # (..., C, 1)
        mean_r = means[..., 0, :]
        mean_g = means[..., 1, :] + coeffs[..., 0, :] * y[..., 0, :]
        mean_b = (means[..., 2, :] + coeffs[..., 1, :] * y[..., 0, :]
                  + coeffs[..., 2, :] * y[..., 1, :])
        return tf.stack([mean_r, mean_g, mean_b], axis=-2)

    def log_prob(self, params, x):
        params = tf.convert_to_tensor(params)
        logits, means, log_scales, coeffs = self.unpack(params)
        x = tf.convert_to_tensor(x)
        if self.num_channels == 1 and x.shape.rank == params.shape.rank - 1:
            x = tf.expand_dims(x, -1)
        y = self._to_unit(x)
        means = self._coupled_means(means, coeffs, y)
        xf = tf.expand_dims(tf.cast(x, tf.float32), -1)  # (..., C, 1)
        inv_scale = tf.exp(-log_scales)
        # Bin k spans [e(2k - 1), e(2k + 1)], e(j) = j / (L - 1) - 1: the upper edge of bin k
        # and the lower edge of bin k + 1 are the same float, so the masses telescope.
        upper = self._edge(2.0 * xf + 1.0)
        lower = self._edge(2.0 * xf - 1.0)
        plus_in = inv_scale * (upper - means)
        min_in = inv_scale * (lower - means)
        log_cdf_plus = -tf.nn.softplus(-plus_in)  # log sigma(plus_in): the lowest bin
        log_one_minus_cdf_min = -tf.nn.softplus(min_in)  # log(1 - sigma(min_in)): the highest
        # sigma(a) - sigma(b) = sigma(a) sigma(-b) (1 - exp(-(a - b))), a - b = 2 / (s (L - 1)):
        # exact in float32 for any bin width (no difference of nearly equal CDFs).
        width = inv_scale * (2.0 / (self.num_levels - 1))
        log_mid = log_cdf_plus + log_one_minus_cdf_min + _log_one_minus_exp_neg(width)
        log_probs = tf.where(xf < 0.5, log_cdf_plus,
                             tf.where(xf > self.num_levels - 1.5, log_one_minus_cdf_min,
                                      log_mid))
        per_component = tf.reduce_sum(log_probs, axis=-2) + tf.nn.log_softmax(logits, -1)
        return tf.reduce_logsumexp(per_component, axis=-1)

    def _edge(self, j):
        return j / (self.num_levels - 1) - 1.0

    def sample(self, params, noise, temperature, top_k, top_p):
        logits, means, log_scales, coeffs = self.unpack(params)  # (B, M), (B, C, M)
        temperature = tf.cast(temperature, tf.float32)
        noise = tf.cast(noise, tf.float32)
        component = sample_categorical(logits, noise[:, 0], temperature, top_k, top_p)
        scale_factor = tf.maximum(temperature, 0.0)
        levels = []
        quantised = []
        for channel in range(self.num_channels):
            mean = select_by_index(means[:, channel, :], component)
            if coeffs is not None and channel >= 1:
                mean += select_by_index(coeffs[:, channel - 1, :], component) * quantised[0]
            if coeffs is not None and channel == 2:
                mean += select_by_index(coeffs[:, 2, :], component) * quantised[1]
            scale = tf.exp(select_by_index(log_scales[:, channel, :], component))
            u = tf.clip_by_value(noise[:, 1 + channel], 1e-5, 1.0 - 1e-5)
            value = mean + scale * scale_factor * (tf.math.log(u) - tf.math.log(1.0 - u))
            level = tf.round((tf.clip_by_value(value, -1.0, 1.0) + 1.0) / 2.0
                             * (self.num_levels - 1))
            levels.append(tf.cast(level, tf.int32))
            quantised.append(self._to_unit(level))
        return tf.stack(levels, axis=1)  # (B, C); a positive axis: tf2onnx needs no rank

    def get_config(self):
        config = super().get_config()
        config.update(num_mixtures=self.num_mixtures, num_channels=self.num_channels,
                      num_levels=self.num_levels)
        return config


def _log_one_minus_exp_neg(d):
    """log(1 - exp(-d)) for d > 0, accurate in float32 for tiny d (narrow bins) and large d.

    Below 0.1 a series, log d - d/2 + d^2/24 - d^4/2880 (truncation < 1e-10); above it the
    direct form, whose 1 - exp(-d) >= 0.095 loses nothing. Elementwise ops only, so every
    export target computes it the same way (no expm1/log1p, which TFLite lacks).
    """
    d = tf.maximum(d, 1e-30)
    small = tf.minimum(d, 0.1)
    series = (tf.math.log(small) - small / 2.0 + small * small / 24.0
              - small * small * small * small / 2880.0)
    direct = tf.math.log(1.0 - tf.exp(-tf.maximum(d, 0.1)))
    return tf.where(d < 0.1, series, direct)
