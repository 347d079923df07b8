import pytest

from keras_ar import samplers


@pytest.mark.parametrize("name,controls", [
    ("greedy", (0.0, 0, 1.0)), ("temperature", (1.0, 0, 1.0)),
    ("top_k", (1.0, 10, 1.0)), ("top_p", (1.0, 0, 0.9))])
def test_get_by_name(name, controls):
    sampler = samplers.get(name)
    c = sampler.controls()
    assert (c["temperature"], c["top_k"], c["top_p"]) == controls


def test_serialize_round_trip():
    sampler = samplers.TopPSampler(p=0.8, temperature=0.7)
    assert samplers.get(samplers.serialize(sampler)) == sampler
    assert samplers.get(sampler) is sampler


def test_bad_identifiers():
    with pytest.raises(ValueError, match="Unknown sampler"):
        samplers.get("beam")
    with pytest.raises(ValueError, match="top_p"):
        samplers.TopPSampler(p=1.5)
    with pytest.raises(ValueError, match="k >= 1"):
        samplers.TopKSampler(k=0)


def test_generate_accepts_a_sampler():
    import numpy as np

    from keras_ar.models import WaveNet

    model = WaveNet(num_classes=8, dilations=[1, 2], residual_channels=4, skip_channels=4)
    a = model.generate(batch_size=2, num_steps=6, seed=1, sampler="greedy")["x"].numpy()
    b = model.generate(batch_size=2, num_steps=6, seed=9, temperature=0.0)["x"].numpy()
    np.testing.assert_array_equal(a, b)
