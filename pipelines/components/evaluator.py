"""Evaluator executor: NLL and bits per position on the test split, candidate vs baseline.

The candidate is the Trainer's `model.keras` (EMA weights). The baseline is the latest model
pushed to `push.serving_base_path` that was not built from this candidate, scored through its
exported `log_prob` signature. Both score the same test windows with
`log_prob(x, lengths, conditions)`: only the first lengths[b] positions of window b count
(padding after a short clip or text is not scored), so the figure is per real position:

    bits_per_position = -sum_b log p(x_b[:n_b] | c_b) / (sum_b n_b * ln 2)

(a position of a multi-dimensional value counts each dimension; a baseline exported
without a `lengths` input is scored on whole windows).

For images a window is one image and a position one sub-pixel, so bits_per_position is the
usual bits/dim, -log2 p(x) / (H W C); `evaluation.json` also records it as `bits_per_dim`
and `nll_nats_per_window` is nats per image.

Blessed iff bits_per_position <= evaluation.max_bits_per_sample, when a baseline exists
bits_per_position <= baseline + evaluation.max_regression, and, with
`evaluation.beat_unigram`, bits_per_position < the marginal baseline's: for discrete values
(ids, levels, tokens) the train split's value frequencies (add-one smoothed) or uniform
noise, whichever scores the same test windows better; for real values the train split's
per-dimension Gaussian (with a constant stop rate where the model samples a stop). A model
of noise or of the marginal alone does not beat it.

Pairs (a word -> its pronunciation) also get the test NLL per target character and the
phoneme error rate of greedy decoding (`seq2seq_eval`); with `evaluation.max_per` > 0 a PER
above it blocks the blessing.
Writes `evaluation.json` and `BLESSED` or `NOT_BLESSED`.
"""

import math

import numpy as np

from pipelines import config as config_lib
from pipelines.components import embedder as embedder_lib
from pipelines.components import repository
from pipelines.components.base import fingerprint, write_json

BLESSED, NOT_BLESSED = "BLESSED", "NOT_BLESSED"


def execute(inputs, outputs, params, context):
    from keras_ar import contract
    from pipelines.components.trainer import load_model
    from pipelines.data import make_dataset

    data = embedder_lib.data_config(params, inputs)
    evaluation = config_lib.EvaluationConfig(**params["evaluation"])
    push = config_lib.PushConfig(**params["push"])
    model = load_model(inputs["model"].uri)
    model_fp = fingerprint(inputs["model"].path / "model.keras")
    batches = list(make_dataset(data, "test", repeat=False).take(evaluation.max_batches))
    if not batches:
        raise ValueError(f"Evaluator: the test split under {data.examples_dir} is empty.")
    feeds = [{k: v for k, v in b.items()
              if k != contract.LENGTHS or getattr(model, "scores_lengths", False)}
             for b in batches]
    positions = sum(_valid_positions(f) for f in feeds)
    candidate = _bits(lambda f: model.log_prob(f), feeds, positions)
    version, path = (repository.baseline(push.serving_base_path, model_fp)
                     if push.serving_base_path else (None, None))
    base = None
    if path is not None:
        base = _bits(_saved_model_log_prob(path), feeds, positions)
    unigram = _unigram_bits(model, make_dataset(data, "train", repeat=False).take(
        evaluation.max_batches), feeds)
    reasons = gate(candidate, evaluation, base, version, unigram)
    seq2seq = {}
    if data.modality == "pairs":
        from pipelines.components import seq2seq_eval

        seq2seq = seq2seq_eval.pair_metrics(model, feeds, data.options, data.window,
                                            candidate * positions * math.log(2), positions)
        reasons += seq2seq_eval.per_gate(seq2seq["phoneme_error_rate"], evaluation.max_per)
    blessed = not reasons
    windows = sum(len(f[contract.X]) for f in feeds)
    result = {"blessed": blessed, "reasons": reasons, "bits_per_position": candidate,
              "nll_nats_per_window": candidate * positions * math.log(2) / windows,
              "positions_per_window": positions / windows, "windows": windows,
              "baseline_version": version, "baseline_bits_per_position": base,
              "unigram_bits_per_position": unigram,
              "model_fingerprint": model_fp, **seq2seq}
    unit = "bits/position"
    if data.modality == "images":
        result["bits_per_dim"] = candidate
        unit = "bits/dim"
    out = outputs["evaluation"].path
    write_json(out / "evaluation.json", result)
    (out / (BLESSED if blessed else NOT_BLESSED)).write_text("\n".join(reasons) + "\n")
    outputs["evaluation"].properties.update(blessed=int(blessed), bits_per_position=candidate)
    if seq2seq:
        outputs["evaluation"].properties.update(
            phoneme_error_rate=seq2seq["phoneme_error_rate"])
        context.log(f"Evaluator: {seq2seq['nll_nats_per_char']:.4f} nats/character, phoneme "
                    f"error rate {seq2seq['phoneme_error_rate']:.4f} (greedy, "
                    f"{seq2seq['words']} test words)")
    context.log(f"Evaluator: {candidate:.4f} {unit} on the test split (baseline: "
                f"{'none' if base is None else f'v{version} {base:.4f}'}) -> "
                f"{'BLESSED' if blessed else 'NOT BLESSED: ' + '; '.join(reasons)}")


def gate(candidate, evaluation, base=None, version=None, unigram=None):
    """The reasons not to bless a candidate scoring `candidate` bits/position ([] = bless)."""
    reasons = []
    if evaluation.beat_unigram and unigram is not None and candidate >= unigram:
        reasons.append(f"{candidate:.4f} bits/position does not beat the unigram baseline "
                       f"({unigram:.4f}: the train split's value frequencies, or for real "
                       "values its per-dimension Gaussian)")
    if candidate > evaluation.max_bits_per_sample:
        reasons.append(f"{candidate:.4f} bits/position > evaluation.max_bits_per_sample "
                       f"{evaluation.max_bits_per_sample}")
    if base is not None and candidate > base + evaluation.max_regression:
        reasons.append(f"{candidate:.4f} bits/position is worse than the pushed version "
                       f"{version} ({base:.4f}) by more than evaluation.max_regression "
                       f"{evaluation.max_regression}")
    return reasons


def _unigram_bits(model, train_batches, feeds):
    """Bits/position of the test windows under the better of two models of the marginal
    alone: the train split's value frequencies (add-one smoothed) and uniform noise
    (log2 levels, the bound when few train values are seen); real-valued data: the train
    split's per-dimension Gaussian (`_gaussian_bits`)."""
    levels = (getattr(model, "num_classes", None) or getattr(model, "vocab_size", None)
              or getattr(model, "num_levels", None)
              or getattr(model, "target_vocab_size", None))
    if not model.x_dtype.is_integer:
        return _gaussian_bits(model, list(train_batches), feeds)
    if not levels:
        return None
    counts = np.ones(int(levels))
    for batch in train_batches:
        ids = _valid_values(batch)
        np.add.at(counts, ids[(ids >= 0) & (ids < levels)], 1)
    log_p = np.log2(counts / counts.sum())
    test = np.concatenate([_valid_values(f) for f in feeds])
    cross_entropy = float(-np.mean(log_p[np.clip(test, 0, int(levels) - 1)]))
    return min(cross_entropy, math.log2(int(levels)))


def _gaussian_bits(model, train_batches, feeds):
    """Real-valued frames: bits per scalar of the test frames under the train split's
    marginal alone, an independent Gaussian per dimension (and, for models that sample a
    stop, a constant per-frame stop probability: sequences / frames), no time dependence."""
    frames = [_valid_frames(b) for b in train_batches]
    train = np.concatenate([f for rows in frames for f in rows])  # (N, d)
    mean, var = train.mean(0), np.maximum(train.var(0), 1e-6)
    stop = sum(len(rows) for rows in frames) / len(train)
    nats, scalars = 0.0, 0
    for feed in feeds:
        for row in _valid_frames(feed):
            nats += float(np.sum(0.5 * np.log(2 * np.pi * var) + (row - mean) ** 2 / (2 * var)))
            if getattr(model, "samples_stop", False):
                nats -= (len(row) - 1) * math.log1p(-stop) + math.log(stop)
            scalars += row.size
    return nats / scalars / math.log(2)


def _valid_frames(batch):
    """[frames (n_b, d)] per row of a real-valued batch, up to its lengths."""
    from keras_ar import contract

    x = np.asarray(batch[contract.X], np.float64)
    x = x.reshape(x.shape[0], x.shape[1], -1)
    lengths = np.asarray(batch.get(contract.LENGTHS, np.full(len(x), x.shape[1])))
    return [row[:int(n)] for row, n in zip(x, lengths)]


def _valid_values(batch):
    """The values of `batch[x]` at scored positions (the first `lengths[b]` of each row)."""
    from keras_ar import contract

    x = np.asarray(batch[contract.X])
    if contract.LENGTHS not in batch:
        return x.ravel()
    lengths = np.asarray(batch[contract.LENGTHS])
    return np.concatenate([row[:int(n)].ravel() for row, n in zip(x, lengths)])


def _valid_positions(feed):
    """Scored scalars in a feed: sum of lengths x the value's size, or every element."""
    return int(_valid_values(feed).size)


def _bits(log_prob, feeds, positions):
    total = 0.0
    for feed in feeds:
        total += -float(np.sum(np.asarray(log_prob(feed), np.float64)))
    return total / positions / math.log(2)


def _saved_model_log_prob(path):
    """log_prob of the SavedModel at `path`, run as the server runs it (serving's
    `SignatureSession`)."""
    from keras_ar import contract
    from serving.signature_session import SignatureSession

    session = SignatureSession(path)
    accepted = set(session.specs[contract.LOG_PROB]["inputs"])

    def run(feed):  # an older export may lack `lengths`: it scores whole windows
        args = {k: np.asarray(v) for k, v in feed.items() if k in accepted}
        return session.run(contract.LOG_PROB, args, [contract.LOG_PROB_OUTPUT])[
            contract.LOG_PROB_OUTPUT]

    return run


def is_blessed(evaluation_dir):
    import pathlib

    return (pathlib.Path(evaluation_dir) / BLESSED).is_file()
