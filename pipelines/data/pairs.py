"""Character vocabularies and length rules of the `pairs` modality (sequence to sequence).

A pair is a source string and a target string (a word and its IPA pronunciation). Each side
is a fixed character alphabet (`data.options.source_alphabet`, `target_alphabet`; defaults
below): character k of the alphabet has id k.

    source ids: [0, S_V) with S_V = len(source_alphabet); the pad id is S_V
                (the models' `source_vocab_size` = S_V, `keras_ar.models.source_ids`);
    target ids: [0, T_V) with T_V = len(target_alphabet); the stop id is T_V
                (the models' `target_vocab_size` = T_V + 1).

A target of n characters is n + 1 positions (its ids, then the stop id). The length rule a
pair must fit: n + 1 <= data.window and n + 1 <= the model's max target length; for ByteNet
(dynamic unfolding) also n + 1 <= floor(a |s| + 1e-4) + b, the positions its encoder unfolds
the source to (`keras_ar.models.byte_net.unfolded_length`).
"""

import string

#: Lower-case ASCII letters: the word list's characters.
SOURCE_ALPHABET = string.ascii_lowercase
#: Every character espeak-ng 1.51 writes for the en-us readings of Debian's word list
#: (`espeak-ng -q --ipa -v en-us`), the space first; U+0303 and U+0329 are combining marks.
TARGET_ALPHABET = (" abdefhijklmnoprstuvwz"
                   "\u00e6\u00f0\u014b\u0250\u0251\u0254\u0259\u025a\u025b\u025c\u0261\u026a"
                   "\u026c\u0279\u027e\u0283\u028a\u028c\u0292\u0294\u02c8\u02cc\u02d0"
                   "\u0303\u0329\u03b8\u1d7b")
SEQ2SEQ_FAMILIES = ("byte_net", "encoder_decoder_transformer")


def alphabets(options):
    """(source alphabet, target alphabet) of a source's options (the defaults when unset)."""
    return (str(options.get("source_alphabet", SOURCE_ALPHABET)),
            str(options.get("target_alphabet", TARGET_ALPHABET)))


def check_alphabet(alphabet, name):
    """Raise ValueError unless `alphabet` is a non-empty string of distinct characters."""
    if not isinstance(alphabet, str) or not alphabet:
        raise ValueError(f"`{name}` must be a non-empty string of characters; received "
                         f"{alphabet!r}.")
    repeated = sorted({c for c in alphabet if alphabet.count(c) > 1})
    if repeated:
        raise ValueError(f"`{name}` holds {repeated} more than once; each character needs "
                         "one id: list it once.")


def unknown_characters(text, alphabet):
    """The characters of `text` that `alphabet` lacks, in order of first use."""
    return list(dict.fromkeys(c for c in text if c not in alphabet))


def encode(text, alphabet):
    """A string -> its character ids (ValueError naming a character the alphabet lacks)."""
    missing = unknown_characters(text, alphabet)
    if missing:
        raise ValueError(f"{text!r} holds {missing}, not in the alphabet {alphabet!r}.")
    return [alphabet.index(c) for c in text]


def decode(ids, alphabet):
    """Ids -> the string of the ids before the first id outside [0, len(alphabet)) (the stop
    or pad id)."""
    out = []
    for i in ids:
        i = int(i)
        if not 0 <= i < len(alphabet):
            break
        out.append(alphabet[i])
    return "".join(out)


def lookup_table(alphabet, default=-1):
    """A `tf.lookup.StaticHashTable` character -> id; `default` for other characters (-1:
    the models reject it)."""
    import tensorflow as tf

    init = tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(alphabet), tf.string), tf.range(len(alphabet), dtype=tf.int32))
    return tf.lookup.StaticHashTable(init, default_value=default)


# ----------------------------------------------------------------------------- length rules
def target_rule(family, params):
    """{max_length, a, b} of a seq2seq model config: `a`, `b` only for ByteNet (None
    otherwise); max_length is the model's target positions."""
    import inspect

    import keras_ar.models
    from pipelines.config import MODEL_FAMILIES

    cls = getattr(keras_ar.models, MODEL_FAMILIES[family])
    defaults = {}
    for klass in reversed(cls.__mro__):  # EncoderDecoderTransformer passes max_length on
        if "__init__" in vars(klass):
            defaults.update({name: p.default for name, p in
                             inspect.signature(klass.__init__).parameters.items()
                             if p.default is not inspect.Parameter.empty})
    if family == "byte_net":
        from keras_ar.models.byte_net import unfolded_length

        a, b = float(params.get("a", defaults["a"])), int(params.get("b", defaults["b"]))
        return {"max_length": unfolded_length(a, b, int(params["max_source_length"])),
                "a": a, "b": b}
    return {"max_length": int(params.get("max_length", defaults["max_length"])),
            "a": None, "b": None}


def target_limit(source, rule, window):
    """Most target positions (characters + stop) a pair with `source` may have."""
    limit = min(int(window), int(rule["max_length"]))
    if rule.get("a") is not None:
        from keras_ar.models.byte_net import unfolded_length

        limit = min(limit, unfolded_length(rule["a"], rule["b"], len(source)))
    return limit


def check_lengths(pairs, rule, window):
    """Raise ValueError (one line) at an empty side, or naming the pair whose target
    exceeds its limit the most; `pairs` are (source, target) strings."""
    worst, excess = None, 0
    for source, target in pairs:
        if not source or not target:
            raise ValueError(f"Empty {'source' if not source else 'target'} in the pair "
                             f"({source!r}, {target!r}); every pair needs at least one "
                             "character on each side: leave it out of the data.")
        over = len(target) + 1 - target_limit(source, rule, window)
        if over > excess:
            worst, excess = (source, target), over
    if worst is None:
        return
    source, target = worst
    limit = target_limit(source, rule, window)
    if rule.get("a") is not None:
        fix = (f"ByteNet allows min(data.window {window}, floor(a |s|) + b = "
               f"floor({rule['a']} x {len(source)}) + {rule['b']}, max_length "
               f"{rule['max_length']}); raise model.params.b by {excess} (or a), and "
               "data.window if it is the bound")
    else:
        fix = (f"the model allows min(data.window {window}, model.params.max_length "
               f"{rule['max_length']}); raise both to at least {len(target) + 1}")
    raise ValueError(f"The target of {source!r} ({target!r}) needs {len(target) + 1} "
                     f"positions (characters + stop) but only {limit} fit: {fix}, or lower "
                     "data.options.max_length.")
