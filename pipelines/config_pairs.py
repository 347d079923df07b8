"""Config checks of the `pairs` modality (sequence to sequence: a word -> its pronunciation).

Run by `pipelines.config_checks.check` at config load, before any component: the model is a
seq2seq family and the data a pairs source; the model's vocabularies are the data's
alphabets (`source_vocab_size` = source characters, the pad id after them;
`target_vocab_size` = target characters + the stop id); sources are at least one character
long and at most `max_source_length` (= `data.source_window`); the target window and the
generated length fit the model's target positions. The per-pair length rule (the longest
reference) is checked at ingest, where the references exist (`pipelines.data.pairs`).
"""

from pipelines.config import ConfigError


def check(config, where):
    """Raise ConfigError (one line: file, dotted key, value, what is expected)."""
    from pipelines.data import pairs

    def fail(key, value, expected):
        raise ConfigError(f"{where}: `{key}` = {value!r} is invalid; expected {expected}.")

    data, model = config.data, config.model
    if config.evaluation.max_per < 0:
        fail("evaluation.max_per", config.evaluation.max_per, "a number >= 0 (0: no PER gate)")
    if config.evaluation.max_per and data.modality != "pairs":
        fail("evaluation.max_per", config.evaluation.max_per,
             f"0 for data.modality {data.modality!r} (the phoneme error rate is of pairs)")
    seq2seq = model.family in pairs.SEQ2SEQ_FAMILIES
    if (data.modality == "pairs") != seq2seq:
        fail("model.family" if data.modality == "pairs" else "data.modality",
             model.family if data.modality == "pairs" else data.modality,
             f"a family in {list(pairs.SEQ2SEQ_FAMILIES)} with data.modality 'pairs' (and "
             "'pairs' data only with those families)")
    if data.modality != "pairs":
        return
    _check_source(config, fail)
    _check_vocabularies(config, fail)
    _check_lengths(config, fail)


def _source(config):
    from pipelines.data import sources

    return sources.get(config.data.source, **config.data.options)


def _check_source(config, fail):
    source = _source(config)
    if source.modality != "pairs":
        fail("data.source", config.data.source,
             f"a source of pairs (it gives {source.modality!r} records)")
    low, high = getattr(source, "min_length", 1), getattr(source, "max_length", None)
    if low < 1:
        fail("data.options.min_length", low, "an integer >= 1 (an empty source has nothing "
             "to read: every word needs a letter)")
    if high is not None and high < low:
        fail("data.options.max_length", high, f"at least data.options.min_length = {low}")


def _check_vocabularies(config, fail):
    from pipelines.data import pairs

    source_alphabet, target_alphabet = pairs.alphabets(config.data.options)
    for name, alphabet in (("source_alphabet", source_alphabet),
                           ("target_alphabet", target_alphabet)):
        try:
            pairs.check_alphabet(alphabet, name)
        except ValueError as err:
            fail(f"data.options.{name}", alphabet, str(err))
    params = config.model.params
    want = {"source_vocab_size": (len(source_alphabet), "the source characters; the pad id "
                                  "is the next id"),
            "target_vocab_size": (len(target_alphabet) + 1, "the target characters + the "
                                  "stop id")}
    for key, (size, why) in want.items():
        if params.get(key) != size:
            fail(f"model.params.{key}", params.get(key), f"{size} ({why})")


def _check_lengths(config, fail):
    from pipelines.data import pairs

    data, params = config.data, config.model.params
    longest = int(params.get("max_source_length") or 0)
    if data.source_window != longest:
        fail("data.source_window", data.source_window,
             f"model.params.max_source_length = {longest} (the exported signatures take "
             "sources of exactly that width)")
    high = getattr(_source(config), "max_length", None)
    if high is not None and high > longest:
        fail("data.options.max_length", high,
             f"at most model.params.max_source_length = {longest}: a longer source does not "
             "fit the model (raise max_source_length and data.source_window, or lower it)")
    rule = pairs.target_rule(config.model.family, params)
    for key, value in (("data.window", data.window),
                       ("generation.num_steps", config.generation.num_steps)):
        if value > rule["max_length"]:
            fail(key, value, f"at most the model's {rule['max_length']} target positions "
                 "(ByteNet: floor(a max_source_length) + b; the Transformer: max_length)")
    if data.window < 2:
        fail("data.window", data.window, "at least 2 (one character and the stop id)")
