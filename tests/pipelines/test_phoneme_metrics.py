"""Edit distance and phoneme error rate on hand-computed cases; the PER gate."""

import pytest

from pipelines import config as config_lib
from pipelines.components import evaluator, seq2seq_eval
from pipelines.components.phoneme_metrics import edit_distance, phoneme_error_rate


@pytest.mark.parametrize("hypothesis, reference, distance", [
    ("", "", 0),
    ("abc", "abc", 0),
    ("", "abc", 3),               # three insertions
    ("abc", "", 3),               # three deletions
    ("kitten", "sitting", 3),     # k->s, e->i, +g
    ("flaw", "lawn", 2),          # -f, +n
    ("abc", "cba", 2),            # a->c, c->a
    ("ab", "ba", 2),              # no transposition edit: two substitutions
    ("həlˈoʊ", "hɛlˈoʊ", 1),      # one IPA vowel substituted
    ("bˈʊk", "bʊk", 1),           # the stress mark is a character of its own
])
def test_edit_distance_hand_cases(hypothesis, reference, distance):
    assert edit_distance(hypothesis, reference) == distance
    assert edit_distance(reference, hypothesis) == distance  # symmetric with unit costs


def test_edit_distance_counts_code_points_not_bytes():
    # "ɪ" is two UTF-8 bytes but one character: one substitution, not two
    assert edit_distance("kɪt", "kit") == 1
    assert edit_distance("æ", "a") == 1
    # a combining mark (U+0329, syllabic) is its own code point
    assert edit_distance("bˈæʔn\u0329", "bˈæʔn") == 1


def test_phoneme_error_rate_sums_over_words():
    # d = 1 + 0 + 3 = 4 edits over |r| = 3 + 3 + 3 = 9 reference characters
    hypotheses = ["kæts", "dɔg", ""]
    references = ["kæt", "dɔg", "ɛɡz"]
    assert edit_distance("kæts", "kæt") == 1
    assert phoneme_error_rate(hypotheses, references) == pytest.approx(4 / 9)
    # the corpus rate, not the mean of per-word rates: 1 edit over 1 + 9 characters is
    # 1/10, where the per-word rates 1 and 0 average 1/2
    assert phoneme_error_rate(["x", "abcdefghi"], ["y", "abcdefghi"]) == pytest.approx(0.1)


def test_phoneme_error_rate_can_exceed_one_and_checks_its_inputs():
    assert phoneme_error_rate(["abcd"], ["a"]) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="one hypothesis per reference"):
        phoneme_error_rate(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="no character"):
        phoneme_error_rate(["a"], [""])


def _evaluation(**kw):
    return config_lib.EvaluationConfig(**{"max_bits_per_sample": 8.0, **kw})


def test_per_gate_blocks_above_the_threshold_only():
    assert seq2seq_eval.per_gate(0.30, 0.25) == [
        "phoneme error rate 0.3000 > evaluation.max_per 0.25"]
    assert seq2seq_eval.per_gate(0.25, 0.25) == []
    assert seq2seq_eval.per_gate(0.95, 0.0) == []  # 0: no PER gate
    # the bits gate alone passes this candidate: the PER reason is what blocks it
    assert evaluator.gate(2.0, _evaluation(max_per=0.25), unigram=None) == []
