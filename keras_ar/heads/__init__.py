"""Distribution heads: turn a network's raw parameters into log-probabilities and samples."""

from keras_ar.heads.categorical_head import CategoricalHead
from keras_ar.heads.discretized_logistic_mixture_head import DiscretizedLogisticMixtureHead
from keras_ar.heads.distribution_head import DistributionHead

__all__ = ["DistributionHead", "CategoricalHead", "DiscretizedLogisticMixtureHead"]
from keras_ar.heads.mixture_density_head import MixtureDensityHead  # noqa: E402

__all__ += ["MixtureDensityHead"]
