"""Example feeds for every signature of the tiny WaveNet, and the in-process reference."""

import numpy as np

from keras_ar import contract

B = 2


def controls(batch=B):
    return {"temperature": np.full(batch, 0.9, np.float32),
            "top_k": np.zeros(batch, np.int32), "top_p": np.ones(batch, np.float32)}


def example_feeds(reference, batch=B):
    """{signature: feeds}; the state comes from `reference` (an in-process backend)."""
    rng = np.random.default_rng(0)
    init = {"batch_template": np.zeros(batch, np.int32)}
    out = reference.run(contract.INIT_STATE, init)
    state = {"state_" + k[len("new_state_"):]: v for k, v in out.items()}
    # one step so the state is not all zeros
    out = reference.run(contract.STEP, {"x_prev": np.full(batch, 16, np.int32), **state})
    state = {"state_" + k[len("new_state_"):]: v for k, v in out.items()
             if k.startswith("new_state_")}
    prompt = {"prompt": rng.integers(0, 16, (batch, 6)).astype(np.int32),
              "prompt_length": np.array([3, 0][:batch], np.int32)}
    feeds = {
        contract.INIT_STATE: init,
        contract.PREFILL: {"x": rng.integers(0, 16, (batch, 5)).astype(np.int32), **state},
        contract.STEP: {"x_prev": np.array([3, 7][:batch], np.int32), **state},
        contract.SAMPLE_STEP: {"x_prev": np.array([3, 7][:batch], np.int32), **state,
                               "noise": rng.random((batch, 1), dtype=np.float32),
                               **controls(batch)},
        contract.SAMPLE_CHUNK: {"x_prev": np.array([3, 7][:batch], np.int32), **state,
                                "noise": rng.random((batch, 7, 1), dtype=np.float32),
                                "prompt": prompt["prompt"][:, :2],
                                "prompt_length": np.array([2, 0][:batch], np.int32),
                                **controls(batch)},
        contract.LOG_PROB: {"x": rng.integers(0, 16, (batch, 9)).astype(np.int32),
                            "lengths": np.array([9, 4][:batch], np.int32)},
        contract.GENERATE: {"noise": rng.random((batch, 6, 1), dtype=np.float32),
                            **prompt, **controls(batch)},
        contract.GENERATE_SEEDED: {"seed": np.array([1, 2][:batch], np.int32),
                                   "num_steps": np.full(batch, 6, np.int32),
                                   **prompt, **controls(batch)},
    }
    feeds["serving_default"] = feeds[contract.GENERATE_SEEDED]
    return feeds


def assert_outputs_equal(actual, expected, atol=1e-6):
    assert sorted(actual) == sorted(expected)
    for key in expected:
        a, e = np.asarray(actual[key]), np.asarray(expected[key])
        assert a.shape == e.shape, (key, a.shape, e.shape)
        if e.dtype.kind == "f":
            np.testing.assert_allclose(a.astype(e.dtype), e, atol=atol, err_msg=key)
        else:
            np.testing.assert_array_equal(a, e, err_msg=key)
