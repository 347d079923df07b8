import numpy as np

from keras_ar.ops import mu_law_decode, mu_law_encode


def test_round_trip_error_is_below_one_level():
    audio = np.linspace(-1, 1, 1001).astype("float32")
    ids = mu_law_encode(audio).numpy()
    assert ids.min() == 0 and ids.max() == 255 and ids.dtype == np.int32
    decoded = mu_law_decode(ids).numpy()
    # near zero the levels are ~1e-4 apart, at full scale ~0.04
    assert np.all(np.abs(decoded - audio) <= 0.03)
    assert np.all(np.diff(ids) >= 0)


def test_silence_maps_to_the_middle_level_and_back():
    assert int(mu_law_encode(np.float32(0.0))) in (127, 128)
    assert abs(float(mu_law_decode(mu_law_encode(np.float32(0.0))))) < 1e-2
