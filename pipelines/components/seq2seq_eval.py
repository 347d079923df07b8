"""The Evaluator's figures for pairs (a word -> its pronunciation): NLL and greedy PER.

On the test batches the Evaluator scores (`local_condition` source ids, `x` target ids with
the stop id, `lengths` = characters + 1):

    nll_nats_per_char = -sum_w log p(y_w, stop | s_w) / sum_w (|y_w| + 1)

(per target character, the stop counted as one; the same positions as bits_per_position,
in nats), and greedy decoding: y^_w = argmax decoding (temperature 0) from the model, at most
`data.window` positions, ended at the stop id; its phoneme error rate against the references
(`phoneme_metrics`: Levenshtein distance over Unicode characters, summed over words, over the
summed reference lengths):

    PER = sum_w d(y^_w, y_w) / sum_w |y_w|.
"""

import numpy as np

from pipelines.components import phoneme_metrics
from pipelines.data import pairs


def greedy_decode(model, source_ids, num_steps, stop):
    """int ids [B, S] -> target ids [B, num_steps] by argmax decoding (stop id after the end)."""
    from keras_ar import contract

    out = model.generate(batch_size=len(source_ids), num_steps=int(num_steps), seed=0,
                         conditions={contract.LOCAL_CONDITION: np.asarray(source_ids,
                                                                          np.int32)},
                         temperature=0.0, stop_token=int(stop))
    return np.asarray(out[contract.X])


def decoded_words(model, feeds, options, num_steps):
    """[(word, hypothesis, reference)] for every row of `feeds`, in order."""
    from keras_ar import contract

    source_alphabet, target_alphabet = pairs.alphabets(options)
    rows = []
    for feed in feeds:
        sources = np.asarray(feed[contract.LOCAL_CONDITION])
        hypotheses = greedy_decode(model, sources, num_steps, len(target_alphabet))
        references = np.asarray(feed[contract.X])
        for source, hypothesis, reference in zip(sources, hypotheses, references):
            rows.append((pairs.decode(source, source_alphabet),
                         pairs.decode(hypothesis, target_alphabet),
                         pairs.decode(reference, target_alphabet)))
    return rows


def pair_metrics(model, feeds, options, num_steps, nll_nats, positions):
    """{nll_nats_per_char, phoneme_error_rate, words, examples (the first 10 decodings)}."""
    rows = decoded_words(model, feeds, options, num_steps)
    per = phoneme_metrics.phoneme_error_rate([h for _, h, _ in rows], [r for _, _, r in rows])
    return {"nll_nats_per_char": nll_nats / positions, "phoneme_error_rate": per,
            "words": len(rows),
            "examples": [{"word": w, "decoded": h, "reference": r} for w, h, r in rows[:10]]}


def per_gate(per, max_per):
    """The reason not to bless at phoneme error rate `per` ([] when max_per is 0: off)."""
    if max_per and per > max_per:
        return [f"phoneme error rate {per:.4f} > evaluation.max_per {max_per}"]
    return []
