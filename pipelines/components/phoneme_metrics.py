"""Edit distance and the phoneme error rate (PER) of decoded pronunciations.

The edit distance d(h, r) of two strings is the Levenshtein distance over Unicode code
points: the fewest single-character insertions, deletions and substitutions that turn h into
r, by the recurrence

    D[i][0] = i,  D[0][j] = j,
    D[i][j] = min(D[i-1][j] + 1, D[i][j-1] + 1, D[i-1][j-1] + [h_i != r_j]),

d(h, r) = D[|h|][|r|]. Over a set of words with hypotheses h_w and references r_w,

    PER = sum_w d(h_w, r_w) / sum_w |r_w|

(the usual corpus-level rate: long words weigh more; it exceeds 1 when the hypotheses insert
more than the references hold). Each IPA symbol is one code point here, so a stress mark
(U+02C8) or a length mark (U+02D0) counts as a character of its own.
"""


def edit_distance(hypothesis, reference):
    """Levenshtein distance between two strings (or sequences), unit costs."""
    hypothesis, reference = list(hypothesis), list(reference)
    previous = list(range(len(reference) + 1))
    for i, h in enumerate(hypothesis, 1):
        current = [i]
        for j, r in enumerate(reference, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (h != r)))
        previous = current
    return previous[-1]


def phoneme_error_rate(hypotheses, references):
    """sum of edit distances / sum of reference lengths over paired strings.

    Raises ValueError when the lists differ in length or the references hold no character
    (the rate is undefined)."""
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"phoneme_error_rate needs one hypothesis per reference; received "
                         f"{len(hypotheses)} hypotheses and {len(references)} references.")
    total = sum(len(r) for r in references)
    if total == 0:
        raise ValueError("phoneme_error_rate: the references hold no character (received "
                         f"{len(references)} empty references); the rate is undefined.")
    errors = sum(edit_distance(h, r) for h, r in zip(hypotheses, references))
    return errors / total
