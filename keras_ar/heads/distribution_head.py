"""Base class of the distribution heads."""

import keras


@keras.saving.register_keras_serializable(package="keras_ar")
class DistributionHead(keras.layers.Layer):
    """Maps raw parameters `params[..., num_params]` to a distribution over one position.

    A position holds `event_shape` values (`()` for one class id, `(C,)` for the channels of a
    pixel). Subclasses implement:

    * `log_prob(params, x)`: log p(x) in nats, float32, with shape `params.shape[:-1]`;
      computed in float32 and in log space whatever the layer's compute dtype.
    * `sample(params, noise, temperature, top_k, top_p)`: params `[B, num_params]`, noise
      `[B, noise_size]` uniforms in [0, 1), controls `[B]` -> x `[B, *event_shape]`. The same
      noise gives the same sample on every runtime.

    Heads hold no weights; `call` returns the params unchanged.
    """

    x_dtype = "int32"

    @property
    def num_params(self):
        raise NotImplementedError

    @property
    def event_shape(self):
        return ()

    @property
    def noise_size(self):
        """Uniforms needed to draw one position."""
        raise NotImplementedError

    @property
    def noise_spec(self):
        """Shape of the per-step noise without the batch dimension."""
        return (self.noise_size,)

    def build(self, input_shape=None):
        self.built = True

    def call(self, params):
        return params

    def log_prob(self, params, x):
        raise NotImplementedError

    def sample(self, params, noise, temperature, top_k, top_p):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        """Params pass through; a head built without a shape (`build(None)`, as models do)
        reports `(None, num_params)` (`model.summary()` asks)."""
        if input_shape is None:
            return (None, self.num_params)
        return input_shape
