"""A reusable test harness for models on the step protocol (imported by the test suite)."""

from keras_ar.testing.harness import (
    assert_causal,
    assert_chunk_matches_steps,
    assert_config_round_trip,
    assert_saving_round_trip,
    assert_step_consistency,
    shift_right,
    step_through,
    steps_like_chunk,
)

__all__ = ["assert_causal", "assert_chunk_matches_steps", "assert_config_round_trip",
           "assert_saving_round_trip", "assert_step_consistency", "shift_right",
           "step_through", "steps_like_chunk"]
