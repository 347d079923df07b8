"""Bad sequence-to-sequence input at the config boundary: one-line errors at config load
(sources too long or empty, vocabularies, windows) and at ingest (characters outside the
alphabets, a target length rule that cannot fit the longest reference)."""

import pytest

from pipelines import config as config_lib
from pipelines.components import specs
from pipelines.data import pairs

BYTENET = "pipelines/configs/g2p_bytenet.yaml"
TRANSFORMER = "pipelines/configs/g2p_transformer.yaml"


def _error(path, **overrides):
    with pytest.raises(config_lib.ConfigError) as err:
        config_lib.load(path, overrides)
    message = str(err.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("path", [BYTENET, TRANSFORMER])
def test_the_shipped_configs_load(path):
    config = config_lib.load(path)
    assert config.data.modality == "pairs"
    assert config.generation.temperature == 0.0  # greedy decoding
    assert config.data.source_window == config.model.params["max_source_length"]


@pytest.mark.parametrize("path", [BYTENET, TRANSFORMER])
def test_a_source_longer_than_the_model_takes_is_refused(path):
    message = _error(path, **{"data.options.max_length": 13})
    assert "data.options.max_length" in message and "13" in message
    assert "max_source_length = 12" in message


def test_empty_sources_are_refused():
    message = _error(BYTENET, **{"data.options.min_length": 0})
    assert "data.options.min_length" in message and "empty source" in message
    message = _error(BYTENET, **{"data.options.min_length": 5, "data.options.max_length": 3})
    assert "data.options.max_length" in message and "min_length = 5" in message


def test_vocabulary_sizes_must_be_the_alphabets():
    message = _error(BYTENET, **{"model.params.target_vocab_size": 49})
    assert "target_vocab_size" in message and "50 (the target characters + the stop id)" \
        in message
    message = _error(TRANSFORMER, **{"data.options.source_alphabet": "abcabc"})
    assert "source_alphabet" in message and "more than once" in message
    message = _error(TRANSFORMER, **{"data.options.source_alphabet": "abc"})
    assert "source_vocab_size" in message and "3 (the source characters" in message


def test_windows_must_fit_the_model_and_sources_fill_its_width():
    # ByteNet's target positions: floor(2.0 x 12) + 16 = 40
    message = _error(BYTENET, **{"data.window": 41})
    assert "data.window" in message and "40 target positions" in message
    message = _error(TRANSFORMER, **{"generation.num_steps": 25})
    assert "generation.num_steps" in message and "24 target positions" in message
    message = _error(BYTENET, **{"data.source_window": 10})
    assert "data.source_window" in message and "max_source_length = 12" in message


def test_pairs_need_a_seq2seq_family_and_the_per_gate_needs_pairs():
    message = _error(BYTENET, **{"model.family": "causal_transformer",
                                 "model.params": {"vocab_size": 50}})
    assert "model.family" in message and "byte_net" in message
    message = _error("pipelines/configs/text_transformer.yaml", **{"evaluation.max_per": 0.5})
    assert "evaluation.max_per" in message
    message = _error(BYTENET, **{"evaluation.max_per": -0.1})
    assert "evaluation.max_per" in message


def test_the_length_rule_is_checked_at_ingest_against_the_longest_reference():
    config = config_lib.load(BYTENET, {"model.params.a": 1.0, "model.params.b": 12})
    limits = specs.EXAMPLE_GEN.parameters(config)["pairs_limits"]
    assert limits == {"rule": {"max_length": 24, "a": 1.0, "b": 12}, "window": 24}
    limits["rule"]["b"] = 2  # a short rule: floor(|s|) + 2 positions
    fits = [("cat", "kˈæt")]  # 5 positions <= floor(1.0 x 3) + 2
    pairs.check_lengths(fits, limits["rule"], limits["window"])
    # "ox" -> 'ˈɑːks' needs 6 positions; floor(1.0 x 2) + 2 = 4 fit; "thought" fits
    with pytest.raises(ValueError) as err:
        pairs.check_lengths(fits + [("ox", "ˈɑːks"), ("thought", "θˈɔːt")],
                            limits["rule"], limits["window"])
    message = str(err.value)
    assert "\n" not in message
    assert "'ox'" in message and "needs 6 positions" in message and "only 4 fit" in message
    assert "raise model.params.b by 2" in message
    transformer = config_lib.load(TRANSFORMER)
    rule = specs.EXAMPLE_GEN.parameters(transformer)["pairs_limits"]["rule"]
    assert rule == {"max_length": 24, "a": None, "b": None}
    with pytest.raises(ValueError, match="needs 25 positions .* only 24 fit"):
        pairs.check_lengths([("ab", "x" * 24)], rule, 30)
    with pytest.raises(ValueError, match="Empty source"):
        pairs.check_lengths([("", "x")], rule, 30)
