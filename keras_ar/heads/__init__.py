"""Distribution heads: turn a network's raw parameters into log-probabilities and samples."""

from keras_ar.heads.categorical_head import CategoricalHead
from keras_ar.heads.discretized_logistic_mixture_head import DiscretizedLogisticMixtureHead
from keras_ar.heads.distribution_head import DistributionHead
from keras_ar.heads.mixture_density_head import MixtureDensityHead

__all__ = ["DistributionHead", "CategoricalHead", "DiscretizedLogisticMixtureHead",
           "MixtureDensityHead"]
