"""`make_dataset(config, split, input_context=None)`: TFRecord shards -> batched model inputs.

Elements are dicts in the models' `inputs` layout (datasets carry inputs only; each model does
its own causal shift and the loss is -log_prob):

    audio:     x int32 [B, window] mu-law ids (data.audio_encoding: linear: linear PCM
               levels, 65536 = 16 bit), lengths int32 [B] (valid samples; the rest is the
               encoded silence), global_condition int32 [B] speaker (if data.use_speaker),
               local_condition float32 [B, window / feature_hop, num_mels] log-mel frames
               of the crop (if data.local_features; `pipelines.data.features`)
    tokens:    x int32 [B, window] byte ids, stop id 256 after the text and as padding,
               lengths int32 [B] (bytes + the stop id); with `data.vocabulary` (N words):
               word ids 0..N-1, OOV id N, stop id N + 1 (see `pipelines.data.vocabulary`)
    images:    x int32 [B, H, W, C] pixel values, global_condition int32 [B] label (if
               data.use_label) or float32 [B, dim] the Embedder's e(x) (data.embedder_dir)
    sequences: x float32 [B, T_max, dim] zero-padded, lengths int32 [B], global_condition
               label (if data.use_label)
    pairs:     local_condition int32 [B, data.source_window] source character ids, then the
               pad id; x int32 [B, window] target character ids, then the stop id (also the
               padding); lengths int32 [B] (characters + the stop id); `pipelines.data.pairs`
               (no crop: ingest checked that every pair fits)

Order of operations: shard (per `tf.distribute.InputContext`: whole files when there are at
least as many files as input pipelines, else records) -> parse -> decode (audio: tensorflow-io
decode + resample to `data.sample_rate` + mono + mu-law or linear levels, all in the graph)
-> cache -> train: repeat, then shuffle (seeded; every iterator yields the same stream) -> crop a
window (train:
seeded random offset; eval/test: the first window) -> batch (per-replica size) ->
prefetch(AUTOTUNE).
"""

import tensorflow as tf

from keras_ar import contract
from keras_ar.ops import linear_encode, mu_law_encode
from pipelines.data import features, records

AUTOTUNE = tf.data.AUTOTUNE
STOP_ID = 256


def make_dataset(config, split, input_context=None, repeat=None):
    """`config`: a `DataConfig` whose `examples_dir` points at ingested shards; `split`: one
    of train/eval/test. `repeat` defaults to True for train. Returns a `tf.data.Dataset`."""
    training = split == "train"
    repeat = training if repeat is None else repeat
    files = records.shard_files(config.examples_dir, split)
    ds = _sharded_records(files, input_context)
    parse = _PARSERS.get(config.modality)
    if config.modality == "tokens" and config.vocabulary:
        parse = _vocabulary_parser(config)
    if config.modality == "pairs":
        parse = _pairs_parser(config)
    ds = ds.map(lambda data: parse(config, data), num_parallel_calls=AUTOTUNE,
                deterministic=True)
    ds = ds.cache()
    if repeat:
        ds = ds.repeat()
    if training:
        # Repeated: one fixed stream per seed (reshuffle_each_iteration=False), so every
        # iterator yields the same batches. Keras' fit under a strategy pulls one batch from
        # a first iterator (symbolic build) and trains on a second; with reshuffling the
        # second would see another permutation than a single-device run. Not repeated:
        # each pass is a new (seeded) permutation.
        ds = ds.shuffle(config.shuffle_buffer, seed=config.seed,
                        reshuffle_each_iteration=not repeat)
    batch = (input_context.get_per_replica_batch_size(config.batch_size)
             if input_context is not None else config.batch_size)
    if config.modality in ("audio", "tokens"):
        ds = ds.enumerate().map(
            lambda i, ex: _crop(config, ex, i, training), num_parallel_calls=AUTOTUNE,
            deterministic=True)
        ds = ds.batch(batch, drop_remainder=repeat)
    elif config.modality == "sequences":
        ds = ds.padded_batch(batch, drop_remainder=repeat)
    else:
        ds = ds.batch(batch, drop_remainder=repeat)
    if config.embedder_dir:
        ds = ds.map(_embedding_condition(config.embedder_dir), num_parallel_calls=AUTOTUNE,
                    deterministic=True)
    return ds.prefetch(AUTOTUNE)


def _embedding_condition(embedder_dir):
    """batch -> batch + `global_condition` = e(x) `[B, dim]`, the Embedder's vector
    (`pipelines.components.embedder`)."""
    from pipelines.components import embedder as embedder_lib

    embedder = embedder_lib.load(embedder_dir)
    embedder.trainable = False

    def add(batch):
        out = dict(batch)
        out[contract.GLOBAL_CONDITION] = embedder(tf.cast(batch[contract.X], tf.float32),
                                                  training=False)
        return out

    return add


def _sharded_records(files, input_context):
    if input_context is None or input_context.num_input_pipelines == 1:
        return tf.data.TFRecordDataset(files)
    n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(files) >= n:
        return tf.data.TFRecordDataset(files[i::n])
    return tf.data.TFRecordDataset(files).shard(n, i)


# ----------------------------------------------------------------------------- audio
def decode_audio(data, fmt, sample_rate, target_rate):
    """Encoded WAV/OGG/FLAC bytes -> mono float32 [N] in [-1, 1] at `target_rate` (graph)."""
    import tensorflow_io as tfio

    def wav():
        return tf.cast(tfio.audio.decode_wav(data, dtype=tf.int16), tf.float32) / 32768.0

    def ogg():
        return tf.cast(tfio.audio.decode_vorbis(data), tf.float32)

    def flac():
        return tf.cast(tfio.audio.decode_flac(data, dtype=tf.int16), tf.float32) / 32768.0

    audio = tf.case([(tf.equal(fmt, "ogg"), ogg), (tf.equal(fmt, "flac"), flac)],
                    default=wav)  # (N, C)
    audio.set_shape([None, None])
    rate = tf.cast(sample_rate, tf.int64)
    audio = tf.cond(tf.equal(rate, target_rate), lambda: audio,
                    lambda: tfio.audio.resample(audio, rate_in=rate, rate_out=target_rate))
    return tf.reduce_mean(audio, axis=-1)


def encode_audio(config, audio):
    """float audio in [-1, 1] -> int32 levels by `data.audio_encoding` (mu_law | linear)."""
    encode = linear_encode if config.audio_encoding == "linear" else mu_law_encode
    return encode(audio, config.quantization_channels)


def _parse_audio(config, data):
    ex = tf.io.parse_single_example(data, records.feature_spec("audio"))
    audio = decode_audio(ex["audio"], ex["format"], ex["sample_rate"], config.sample_rate)
    out = {contract.X: encode_audio(config, audio)}
    if config.local_features:  # (frames, num_mels), frame t for samples [t hop, (t+1) hop)
        out[contract.LOCAL_CONDITION] = features.log_mel(
            audio, config.sample_rate, config.feature_hop, config.num_mels)
    if config.use_speaker:
        out[contract.GLOBAL_CONDITION] = tf.cast(ex["speaker"], tf.int32)
    return out


def _parse_tokens(config, data):
    ex = tf.io.parse_single_example(data, records.feature_spec("tokens"))
    ids = tf.cast(tf.io.decode_raw(ex["text"], tf.uint8), tf.int32)
    return {contract.X: tf.concat([ids, [STOP_ID]], axis=0)}


def _vocabulary_parser(config):
    from pipelines.data import vocabulary

    tokens = vocabulary.load_vocabulary(config.vocabulary)
    table = vocabulary.lookup_table(tokens)
    stop = vocabulary.stop_id(tokens)

    def parse(config, data):
        ex = tf.io.parse_single_example(data, records.feature_spec("tokens"))
        ids = vocabulary.tokenize(ex["text"], table, config.lowercase)
        return {contract.X: tf.concat([ids, [stop]], axis=0)}

    return parse


def _pairs_parser(config):
    """record -> {local_condition, x, lengths} padded to data.source_window / data.window."""
    from pipelines.data import pairs

    source_alphabet, target_alphabet = pairs.alphabets(config.options)
    source_table = pairs.lookup_table(source_alphabet)
    target_table = pairs.lookup_table(target_alphabet)
    pad, stop = len(source_alphabet), len(target_alphabet)

    def ids(text, table, width, fill, end=()):
        chars = tf.strings.unicode_split(text, "UTF-8")
        values = tf.concat([table.lookup(chars), tf.constant(end, tf.int32)], axis=0)
        values = values[:width]
        values = tf.concat([values, tf.fill([width - tf.shape(values)[0]], fill)], axis=0)
        values.set_shape([width])
        return values

    def parse(config, data):
        ex = tf.io.parse_single_example(data, records.feature_spec("pairs"))
        target = ids(ex["target"], target_table, config.window, stop, [stop])
        length = tf.strings.length(ex["target"], unit="UTF8_CHAR") + 1
        return {contract.LOCAL_CONDITION: ids(ex["source"], source_table,
                                              config.source_window, pad),
                contract.X: target, contract.LENGTHS: tf.minimum(length, config.window)}

    return parse


def _parse_images(config, data):
    ex = tf.io.parse_single_example(data, records.feature_spec("images"))
    out = {contract.X: tf.cast(tf.io.decode_png(ex["image"]), tf.int32)}
    if config.use_label:
        out[contract.GLOBAL_CONDITION] = tf.cast(ex["label"], tf.int32)
    return out


def _parse_sequences(config, data):
    ex = tf.io.parse_single_example(data, records.feature_spec("sequences"))
    values = tf.sparse.to_dense(ex["values"])
    frames = tf.reshape(values, [-1, tf.cast(ex["dim"], tf.int32)])  # (T, dim)
    out = {contract.X: frames, contract.LENGTHS: tf.shape(frames)[0]}
    if config.use_label:
        out[contract.GLOBAL_CONDITION] = tf.cast(ex["label"], tf.int32)
    return out


_PARSERS = {"audio": _parse_audio, "tokens": _parse_tokens, "images": _parse_images,
            "sequences": _parse_sequences}


def _crop(config, example, index, training):
    """A `window`-long crop (random offset when training) padded with the modality's pad id;
    `lengths` counts the valid positions."""
    x = example[contract.X]
    window = config.window
    length = tf.shape(x)[0]
    hop = config.feature_hop if contract.LOCAL_CONDITION in example else 1
    if training:  # a whole number of frames in, so the crop starts on a frame
        seed = tf.stack([tf.cast(config.seed, tf.int64), index])
        span = tf.maximum(length - window, 0) // hop + 1
        start = hop * tf.random.stateless_uniform([], seed, 0, span, dtype=tf.int32)
    else:
        start = 0
    piece = x[start:start + window]
    valid = tf.shape(piece)[0]
    pad_id = (encode_audio(config, 0.0) if config.modality == "audio"
              else _token_stop_id(config))
    piece = tf.concat([piece, tf.fill([window - valid], pad_id)], axis=0)
    piece.set_shape([window])
    out = dict(example)
    out[contract.X] = piece
    out[contract.LENGTHS] = valid
    if hop > 1:
        out[contract.LOCAL_CONDITION] = _crop_frames(example[contract.LOCAL_CONDITION],
                                                     start // hop, window // hop)
    return out


def _crop_frames(frames, first, count):
    """frames[first:first + count], padded with silence frames: `[count, num_mels]`."""
    piece = frames[first:first + count]
    pad = tf.fill([count - tf.shape(piece)[0], tf.shape(frames)[1]],
                  tf.constant(features.silence_value(), frames.dtype))
    piece = tf.concat([piece, pad], axis=0)
    piece.set_shape([count, frames.shape[1]])
    return piece


def _token_stop_id(config):
    if not config.vocabulary:
        return STOP_ID
    from pipelines.data import vocabulary

    return vocabulary.stop_id(vocabulary.load_vocabulary(config.vocabulary))
