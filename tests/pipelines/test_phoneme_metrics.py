"""Edit distance and phoneme error rate on hand-computed cases; the PER gate; greedy PER of a
real ByteNet before and after training."""

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


def test_pair_metrics_decode_greedily_and_the_gate_blocks_on_per():
    """A real (untrained) ByteNet: the reported words and references are the feed's, the
    decodings its greedy ones, PER is recomputed from them, and a threshold below it blocks."""
    import keras
    import numpy as np

    from keras_ar.models import ByteNet
    from pipelines.data import pairs

    keras.utils.set_random_seed(0)
    source_alphabet, target_alphabet = "abc", "xyz"
    model = ByteNet(source_vocab_size=3, target_vocab_size=4, max_source_length=4, a=1.0, b=2,
                    encoder_dilations=[1], decoder_dilations=[1, 2], channels=8)
    words, references = ["ab", "cab", "c"], ["xy", "zzx", "y"]
    feed = {"local_condition": np.array([pairs.encode(w, source_alphabet) + [3] * (4 - len(w))
                                         for w in words], np.int32),
            "x": np.array([pairs.encode(r, target_alphabet) + [3] * (6 - len(r))
                           for r in references], np.int32),
            "lengths": np.array([len(r) + 1 for r in references], np.int32)}
    options = {"source_alphabet": source_alphabet, "target_alphabet": target_alphabet}
    metrics = seq2seq_eval.pair_metrics(model, [feed], options, 6, nll_nats=12.0, positions=9)
    assert metrics["words"] == 3 and metrics["nll_nats_per_char"] == pytest.approx(12.0 / 9)
    assert [e["word"] for e in metrics["examples"]] == words
    assert [e["reference"] for e in metrics["examples"]] == references
    greedy = seq2seq_eval.greedy_decode(model, feed["local_condition"], 6, 3)
    decoded = [pairs.decode(row, target_alphabet) for row in greedy]
    assert [e["decoded"] for e in metrics["examples"]] == decoded
    per = metrics["phoneme_error_rate"]
    assert per == pytest.approx(phoneme_error_rate(decoded, references))
    assert per > 0  # untrained: it does not read these words right
    assert seq2seq_eval.per_gate(per, per / 2) and not seq2seq_eval.per_gate(per, per + 1)


@pytest.mark.slow
def test_training_lowers_the_per_of_held_out_words():
    """A tiny ByteNet learns a letter-for-letter transduction (abcd -> wxyz): greedy PER on
    words it was not trained on falls from about 1 (untrained) to below 0.1."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_ar.models import ByteNet
    from pipelines.data import pairs

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    source_alphabet, target_alphabet = "abcd", "wxyz"
    options = {"source_alphabet": source_alphabet, "target_alphabet": target_alphabet}
    words = sorted({"".join(rng.choice(list(source_alphabet), rng.integers(1, 5)))
                    for _ in range(120)})
    train, test = words[::2][:40], words[1::2][:16]

    def feed(batch):
        references = [w.translate(str.maketrans(source_alphabet, target_alphabet))
                      for w in batch]
        return {"local_condition": np.array([pairs.encode(w, source_alphabet)
                                             + [4] * (4 - len(w)) for w in batch], np.int32),
                "x": np.array([pairs.encode(r, target_alphabet) + [4] * (6 - len(r))
                               for r in references], np.int32),
                "lengths": np.array([len(r) + 1 for r in references], np.int32)}

    model = ByteNet(source_vocab_size=4, target_vocab_size=5, max_source_length=4, a=1.0, b=2,
                    encoder_dilations=[1, 2], decoder_dilations=[1, 2], channels=16)

    def per():
        return seq2seq_eval.pair_metrics(model, [feed(test)], options, 6, 1.0, 1)[
            "phoneme_error_rate"]

    untrained = per()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    dataset = tf.data.Dataset.from_tensor_slices(feed(train)).repeat().batch(20)
    model.fit(dataset, steps_per_epoch=150, epochs=1, verbose=0)
    trained = per()
    assert untrained > 0.5 and trained < 0.1, (untrained, trained)
