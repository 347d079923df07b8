"""Conditions for SampleGen: per generated row, the log-mel frames of a test-split clip, a
test image's embedding, or a test word (pairs).

Row i takes the first test clip of its speaker (`global_condition[i]`; without speakers the
i-th clip, cycling), cut to `num_steps` samples (padded with silence frames where it is
shorter), through the same input pipeline the Trainer and Evaluator read
(`pipelines.data.make_dataset` with `window` = num_steps rounded up to whole frames).
"""

import numpy as np

from keras_ar import contract


def test_clips(data_params, examples_dir, conditions, gen):
    """{x: [B, window] encoded clip, lengths: [B] valid samples, local_condition:
    [B, frames, num_mels]} for the rows of `conditions` (or `gen["num_samples"]` rows)."""
    from pipelines import config as config_lib
    from pipelines.data import make_dataset

    hop = int(data_params["feature_hop"])
    window = -(-int(gen["num_steps"]) // hop) * hop
    data = config_lib.DataConfig(**{**data_params, "examples_dir": str(examples_dir),
                                    "window": window, "batch_size": 1})
    clips = [{k: np.asarray(v)[0] for k, v in batch.items()}
             for batch in make_dataset(data, "test", repeat=False)]
    if not clips:
        raise ValueError(f"SampleGen: the test split under {examples_dir} is empty; a model "
                         "with local features needs test clips to take them from.")
    ids = conditions.get(contract.GLOBAL_CONDITION)
    rows = [_clip_for(clips, i, None if ids is None else int(ids[i]))
            for i in range(int(gen["num_samples"]) if ids is None else len(ids))]
    return {key: np.stack([row[key] for row in rows])
            for key in (contract.X, contract.LENGTHS, contract.LOCAL_CONDITION)}


def _clip_for(clips, row, speaker):
    if speaker is not None:
        for clip in clips:
            if int(clip.get(contract.GLOBAL_CONDITION, -1)) == speaker:
                return clip
    return clips[row % len(clips)]


def test_embeddings(data_params, examples_dir, embedder_dir, rows):
    """{x: [rows, H, W, C] test images, global_condition: [rows, dim] their embeddings}: row
    i is the first test image of class i % classes (classes in label order)."""
    import tensorflow as tf

    from pipelines import config as config_lib
    from pipelines.components import embedder as embedder_lib
    from pipelines.data import make_dataset

    data = config_lib.DataConfig(**{**data_params, "examples_dir": str(examples_dir),
                                    "use_label": True, "embedder_dir": "", "batch_size": 1})
    firsts = {}
    for batch in make_dataset(data, "test", repeat=False):
        label = int(batch[contract.GLOBAL_CONDITION][0])
        firsts.setdefault(label, batch[contract.X][0].numpy())
    if not firsts:
        raise ValueError(f"SampleGen: the test split under {examples_dir} is empty; a model "
                         "conditioned on embeddings needs test images to embed.")
    labels = sorted(firsts)
    images = np.stack([firsts[labels[i % len(labels)]] for i in range(int(rows))])
    embedder = embedder_lib.load(embedder_dir)
    vectors = embedder(tf.constant(images, tf.float32), training=False)
    return {contract.X: images, contract.GLOBAL_CONDITION: np.asarray(vectors, np.float32)}


def test_words(data_params, examples_dir, rows):
    """{local_condition: [n, source_window] source ids, words, references: [n] strings} of
    the first n = min(rows, test pairs) test-split pairs, in shard order (`pipelines.data.
    make_dataset`, the Evaluator's input pipeline)."""
    from pipelines import config as config_lib
    from pipelines.data import make_dataset, pairs

    data = config_lib.DataConfig(**{**data_params, "examples_dir": str(examples_dir),
                                    "batch_size": int(rows)})
    batch = next(iter(make_dataset(data, "test", repeat=False).take(1)), None)
    if batch is None:
        raise ValueError(f"SampleGen: the test split under {examples_dir} is empty; a "
                         "sequence-to-sequence model needs test sources to decode.")
    source_alphabet, target_alphabet = pairs.alphabets(data.options)
    sources = np.asarray(batch[contract.LOCAL_CONDITION])
    return {contract.LOCAL_CONDITION: sources.astype(np.int32),
            "words": [pairs.decode(row, source_alphabet) for row in sources],
            "references": [pairs.decode(row, target_alphabet)
                           for row in np.asarray(batch[contract.X])]}
