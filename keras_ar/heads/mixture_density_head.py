"""Mixture density head with a stop flag, for variable-length continuous sequences.

A position holds a real vector x_t in R^d and a stop flag s_t ("the sequence ends after x_t";
Graves 2013, arXiv 1308.0850, sec. 4; Ha & Eck 2017, arXiv 1704.03477, sec. 3). With mixture
logits a, means mu_k, log-scales l_k (clamped to [-7, 7], s_k = exp(l_k)) and a stop logit b:

    p(x_t)     = sum_k softmax(a)_k prod_j f((x_tj - mu_kj) / s_kj) / s_kj
    P(s_t = 1) = sigmoid(b)

with f the standard normal density (`component="gaussian"`) or the standard logistic density
f(z) = e^-z / (1 + e^-z)^2 (`component="logistic"`). A sequence of length n scores
sum_{t<n} log p(x_t) + sum_{t<n-1} log(1 - sigmoid(b_t)) + log sigmoid(b_{n-1}).

Parameter layout per position: K mixture logits, then K*d means (component-major), K*d
log-scales, then 1 stop logit: num_params = K (1 + 2d) + 1.

Sampling from uniforms, noise layout `[u_component, value uniforms..., u_stop]`:
* the component by inverse CDF of softmax(a / T) after top-k / top-p
  (`keras_ar.ops.sample_categorical`);
* Gaussian: Box-Muller from two uniforms per dimension, z = sqrt(-2 ln(1 - u1)) cos(2 pi u2)
  (noise_size = 2 + 2d); logistic: z = ln u - ln(1 - u) (noise_size = 2 + d);
* x = mu_k + s_k sqrt(T) z: temperature T scales the variance by T and sharpens the weights;
  T <= 0 gives the most likely component's mean;
* stop: s_t = u_stop < sigmoid(b) (T <= 0: sigmoid(b) > 1/2); temperature leaves the stop
  probability as it is, so it does not bias the length distribution.
Only log, sqrt, cos, exp, sort, cumsum and equality masks are used: TFLite builtins and ONNX.
"""

import math

import keras
import tensorflow as tf

from keras_ar.heads.distribution_head import DistributionHead
from keras_ar.ops.sampling import sample_categorical, select_by_index

COMPONENTS = ("gaussian", "logistic")
_LOG_SCALE_MIN, _LOG_SCALE_MAX = -7.0, 7.0
_TINY = 1e-30


@keras.saving.register_keras_serializable(package="keras_ar")
class MixtureDensityHead(DistributionHead):
    """Mixture of `num_mixtures` diagonal Gaussians (or logistics) over `feature_dim` reals,
    plus a Bernoulli stop probability per position."""

    x_dtype = "float32"

    def __init__(self, feature_dim, num_mixtures=5, component="gaussian", **kwargs):
        super().__init__(**kwargs)
        if component not in COMPONENTS:
            raise ValueError(
                f"`component` must be one of {COMPONENTS}; received {component!r}.")
        if int(feature_dim) < 1 or int(num_mixtures) < 1:
            raise ValueError(
                f"Need feature_dim >= 1 and num_mixtures >= 1; received {feature_dim}, "
                f"{num_mixtures}.")
        self.feature_dim = int(feature_dim)
        self.num_mixtures = int(num_mixtures)
        self.component = component

    @property
    def num_params(self):
        return self.num_mixtures * (1 + 2 * self.feature_dim) + 1

    @property
    def event_shape(self):
        return (self.feature_dim,)

    @property
    def _value_noise(self):
        return (2 if self.component == "gaussian" else 1) * self.feature_dim

    @property
    def noise_size(self):
        return 2 + self._value_noise

    # ----------------------------------------------------------------- parameters
    def unpack(self, params):
        """-> logits (..., K), means (..., K, d), log_scales (..., K, d), stop_logit (...)."""
        params = tf.cast(params, tf.float32)
        k, d = self.num_mixtures, self.feature_dim
        shape = tf.concat([tf.shape(params)[:-1], [k, d]], 0)
        logits = params[..., :k]
        means = tf.reshape(params[..., k:k + k * d], shape)  # (..., K, d)
        log_scales = tf.clip_by_value(
            tf.reshape(params[..., k + k * d:k + 2 * k * d], shape),
            _LOG_SCALE_MIN, _LOG_SCALE_MAX)  # (..., K, d)
        return logits, means, log_scales, params[..., -1]

    def stop_probability(self, params):
        """P(the sequence ends after this position), float32 `params.shape[:-1]`."""
        return tf.sigmoid(self.unpack(params)[3])

    # ----------------------------------------------------------------- scoring
    def _log_density_1d(self, z):
        if self.component == "gaussian":
            return -0.5 * tf.square(z) - 0.5 * math.log(2.0 * math.pi)
        return -z - 2.0 * tf.nn.softplus(-z)

    def value_log_prob(self, params, x):
        """log p(x) of the continuous part (nats), shape `params.shape[:-1]`."""
        logits, means, log_scales, _ = self.unpack(params)
        x = tf.expand_dims(tf.cast(x, tf.float32), -2)  # (..., 1, d)
        z = (x - means) * tf.exp(-log_scales)
        per_dim = self._log_density_1d(z) - log_scales  # (..., K, d)
        per_component = tf.reduce_sum(per_dim, axis=-1) + tf.nn.log_softmax(logits, axis=-1)
        return tf.reduce_logsumexp(per_component, axis=-1)

    def stop_log_prob(self, params, stop):
        """log P(stop flag), stop in {0, 1} (bool or number), shape `params.shape[:-1]`."""
        b = self.unpack(params)[3]
        stop = tf.cast(stop, tf.float32)
        # log sigmoid(b) = -softplus(-b); log(1 - sigmoid(b)) = -softplus(b)
        return -(stop * tf.nn.softplus(-b) + (1.0 - stop) * tf.nn.softplus(b))

    def log_prob(self, params, x, stop=None):
        """log p(x) (+ log P(stop) when `stop` is given), shape `params.shape[:-1]`."""
        value = self.value_log_prob(params, x)
        if stop is None:
            return value
        return value + self.stop_log_prob(params, stop)

    # ----------------------------------------------------------------- sampling
    def _standard_sample(self, noise):
        """[B, value noise] uniforms -> [B, d] standard normal / logistic draws."""
        d = self.feature_dim
        if self.component == "gaussian":
            u1 = noise[:, :d]
            u2 = noise[:, d:2 * d]
            radius = tf.sqrt(-2.0 * tf.math.log(tf.maximum(1.0 - u1, _TINY)))
            return radius * tf.cos(2.0 * math.pi * u2)
        u = tf.clip_by_value(noise, 1e-7, 1.0 - 1e-7)
        return tf.math.log(u) - tf.math.log(1.0 - u)

    def sample(self, params, noise, temperature, top_k, top_p):
        """x [B, d] from params [B, num_params] and noise [B, noise_size] (see module doc)."""
        logits, means, log_scales, _ = self.unpack(params)  # (B, K), (B, K, d)
        noise = tf.cast(noise, tf.float32)
        temperature = tf.cast(temperature, tf.float32)
        component = sample_categorical(logits, noise[:, 0], temperature, top_k, top_p)
        standard = self._standard_sample(noise[:, 1:1 + self._value_noise])  # (B, d)
        spread = tf.sqrt(tf.maximum(temperature, 0.0))  # (B,)
        values = []
        for j in range(self.feature_dim):
            mean = select_by_index(means[:, :, j], component)
            scale = tf.exp(select_by_index(log_scales[:, :, j], component))
            values.append(mean + scale * spread * standard[:, j])
        return tf.stack(values, axis=-1)

    def sample_stop(self, params, noise, temperature):
        """[B] bool stop flags: noise[:, -1] < P(stop) (T <= 0: P(stop) > 1/2)."""
        probability = self.stop_probability(params)
        temperature = tf.cast(temperature, tf.float32)
        drawn = tf.cast(noise, tf.float32)[:, -1] < probability
        return tf.where(temperature > 0.0, drawn, probability > 0.5)

    def get_config(self):
        config = super().get_config()
        config.update(feature_dim=self.feature_dim, num_mixtures=self.num_mixtures,
                      component=self.component)
        return config
