"""Word vocabularies for the `tokens` modality (`data.vocabulary: PATH`).

A vocabulary file is UTF-8 text, one token per line; a token's id is its line number (0-based).
After the N tokens come one out-of-vocabulary id (N) and the stop id (N + 1), so a model on
that data needs `vocab_size: N + 2`. Text is tokenised in the graph: optionally lower-cased,
split on whitespace, looked up in a `tf.lookup.StaticHashTable` (unknown words -> the OOV id).

Build one from the ingested training split (the most frequent N words, ties by first use):

    python -m pipelines.data.vocabulary --examples DIR --size N --out FILE [--keep-case]
"""

import argparse
import collections
import os
import pathlib
import sys
import tempfile

OOV_TOKEN = "<unk>"


class VocabularyError(ValueError):
    """A vocabulary file that cannot be used; the message names the file and the line."""


def load_vocabulary(path):
    """The tokens of `path` in id order; errors on a missing/empty file or duplicates."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise VocabularyError(f"Vocabulary file not found: {path} (cwd {os.getcwd()}). Build "
                              "one with `python -m pipelines.data.vocabulary --examples DIR "
                              "--size N --out FILE`.")
    tokens, seen = [], {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        token = line.strip()
        if not token or any(c.isspace() for c in token):
            raise VocabularyError(f"{path}:{number}: expected one token without whitespace "
                                  f"per line; received {line!r}.")
        if token in seen:
            raise VocabularyError(f"{path}:{number}: duplicate token {token!r} (first on "
                                  f"line {seen[token]}).")
        seen[token] = number
        tokens.append(token)
    if not tokens:
        raise VocabularyError(f"Vocabulary file {path} is empty; expected one token per line.")
    return tokens


def oov_id(tokens):
    return len(tokens)


def stop_id(tokens):
    return len(tokens) + 1


def check_vocab_size(vocabulary_path, model_params):
    """A model on vocabulary data needs `vocab_size` = tokens + 2 (OOV and stop ids)."""
    if not vocabulary_path:
        return
    tokens = load_vocabulary(vocabulary_path)
    want = len(tokens) + 2
    got = model_params.get("vocab_size")
    if got != want:
        raise ValueError(f"model.params.vocab_size is {got!r} but data.vocabulary "
                         f"{vocabulary_path} has {len(tokens)} tokens, so the data use "
                         f"{want} ids ({len(tokens)} tokens + OOV + stop); set vocab_size: "
                         f"{want}.")


def lookup_table(tokens):
    """A `tf.lookup.StaticHashTable` token -> id with the OOV id as default."""
    import tensorflow as tf

    init = tf.lookup.KeyValueTensorInitializer(
        tf.constant(tokens, tf.string), tf.range(len(tokens), dtype=tf.int32))
    return tf.lookup.StaticHashTable(init, default_value=oov_id(tokens))


def tokenize(text, table, lowercase=True):
    """Scalar string tensor -> int32 [n] word ids (graph ops only)."""
    import tensorflow as tf

    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    return table.lookup(tf.strings.split(text))


def detokenize(ids, tokens):
    """Ids -> the tokens before the first stop id, joined with spaces (OOV -> `<unk>`)."""
    words = []
    for i in ids:
        i = int(i)
        if i >= stop_id(tokens) or i < 0:
            break
        words.append(tokens[i] if i < len(tokens) else OOV_TOKEN)
    return " ".join(words)


def count_words(examples_dir, lowercase=True):
    """Word counts over the `train` split's text records (first use breaks ties)."""
    import tensorflow as tf

    from pipelines.data import records

    counts = collections.Counter()
    files = records.shard_files(examples_dir, "train")
    for raw in tf.data.TFRecordDataset(files).as_numpy_iterator():
        ex = tf.io.parse_single_example(raw, records.feature_spec("tokens"))
        text = ex["text"].numpy().decode("utf-8", errors="replace")
        counts.update((text.lower() if lowercase else text).split())
    return counts


def build_vocabulary(examples_dir, size, out, lowercase=True):
    """Write the `size` most frequent training words to `out` atomically; returns them."""
    if size < 1:
        raise ValueError(f"Vocabulary size must be >= 1; received {size}.")
    counts = count_words(examples_dir, lowercase)
    if not counts:
        raise ValueError(f"No words in the train split of {examples_dir}; expected ingested "
                         "text records (data.modality: tokens).")
    tokens = [word for word, _ in counts.most_common(size)]
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t in tokens))
        os.replace(tmp, out)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return tokens


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", required=True, help="ingested Examples directory")
    parser.add_argument("--size", type=int, required=True, help="number of words to keep")
    parser.add_argument("--out", required=True, help="vocabulary file to write")
    parser.add_argument("--keep-case", action="store_true", help="do not lower-case")
    args = parser.parse_args(argv)
    tokens = build_vocabulary(args.examples, args.size, args.out, not args.keep_case)
    print(f"Wrote {len(tokens)} tokens to {args.out}; set model.params.vocab_size: "
          f"{len(tokens) + 2}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
