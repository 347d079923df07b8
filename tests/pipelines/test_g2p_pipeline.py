"""Grapheme to phoneme end to end, tiny: words + espeak-ng IPA -> ByteNet or the
encoder-decoder Transformer -> evaluation (NLL per character, greedy PER) -> export -> push ->
greedy decodings of test words, the same on every target exported: all three for the
Transformer; SavedModel and TFLite (the in-graph and the host loop) for ByteNet, whose ONNX
export is tests/export's (test_export_token_families)."""

import json
import math
import os

import pytest

from pipelines import cli, runner
from pipelines import config as config_lib
from pipelines.components import repository
from pipelines.components.phoneme_metrics import phoneme_error_rate
from pipelines.data import records
from pipelines.data.sources.word_pronunciations import transcribe

ALL_TARGETS = ("savedmodel", "tflite", "onnx")
TARGETS = {"byte_net": ALL_TARGETS[:2], "encoder_decoder_transformer": ALL_TARGETS}
MODELS = {
    "byte_net": {"source_vocab_size": 26, "target_vocab_size": 50, "max_source_length": 12,
                 "a": 2.0, "b": 16, "encoder_dilations": [1, 2], "decoder_dilations": [1, 2],
                 "channels": 16},
    "encoder_decoder_transformer": {
        "source_vocab_size": 26, "target_vocab_size": 50, "max_source_length": 12,
        "encoder_layers": 1, "num_layers": 1, "num_heads": 2, "hidden_dim": 16,
        "max_length": 24},
}


def _tiny_g2p_config(tmp, family):
    return config_lib.from_dict({
        "name": f"tiny_g2p_{family}",
        "data": {"source": "wamerican_ipa", "modality": "pairs",
                 "options": {"max_words": 60, "max_length": 12},
                 "num_shards": 1, "eval_percent": 20, "test_percent": 20, "window": 24,
                 "source_window": 12, "batch_size": 8},
        "validation": {"min_length": 2, "max_length": 24, "max_bad_fraction": 0.0},
        "model": {"family": family, "params": MODELS[family]},
        "training": {"steps": 2, "steps_per_epoch": 1, "validation_batches": 1},
        # 2 training steps test the plumbing, not learning: no unigram gate here
        "evaluation": {"max_batches": 1, "max_bits_per_sample": 10.0, "beat_unigram": False},
        "export": {"targets": list(TARGETS[family]), "verify_parity": False},
        "push": {"serving_base_path": os.path.join(str(tmp), "serving")},
        "generation": {"num_samples": 4, "num_steps": 24, "temperature": 0.0, "seed": 0},
    }, f"tiny_g2p_{family}")


def _test_words(examples):
    import tensorflow as tf

    words = {}
    for split in records.SPLITS:
        for raw in tf.data.TFRecordDataset(records.shard_files(str(examples), split)):
            record = records.deserialize(raw.numpy())
            words.setdefault(split, []).append(
                (record["source"].decode(), record["target"].decode()))
    return words


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(MODELS))
def test_g2p_pipeline_decodes_test_words_alike_on_every_target(tmp_path, family):
    config = _tiny_g2p_config(tmp_path, family)
    report = runner.run(config, tmp_path / "root", logger=lambda m: None)
    states = {name: state for name, state, _ in report}
    assert set(states.values()) == {"COMPLETE"}, states
    assert repository.versions(config.push.serving_base_path) == [1]
    outputs = dict((n, o) for n, _, o in report)
    # the ingest: no word in two splits; each target is espeak-ng's reading of its word
    words = _test_words(outputs["ExampleGen"]["examples"].path)
    seen = [w for split in words.values() for w, _ in split]
    assert len(seen) == len(set(seen)) == 60
    test = words["test"]
    assert [ipa for _, ipa in test] == transcribe([w for w, _ in test])
    # the training curves: the loss over the train split's mean positions per pair
    training = json.loads((outputs["Trainer"]["model"].path / "training.json").read_text())
    mean_positions = sum(len(ipa) + 1 for _, ipa in words["train"]) / len(words["train"])
    assert training["bits_per_position"] == pytest.approx(
        [loss / mean_positions / math.log(2) for loss in training["losses"]], abs=1e-4)
    # the evaluation: NLL per character and the PER of greedy decoding
    evaluation = json.loads((outputs["Evaluator"]["evaluation"].path
                             / "evaluation.json").read_text())
    assert evaluation["nll_nats_per_char"] > 0
    assert evaluation["words"] == min(8, len(test))
    examples = evaluation["examples"]
    assert [e["word"] for e in examples] == [w for w, _ in test][:len(examples)]
    assert [e["reference"] for e in examples] == [ipa for _, ipa in test][:len(examples)]
    if evaluation["words"] == len(examples):  # every decoded word is listed: recompute PER
        assert evaluation["phoneme_error_rate"] == pytest.approx(phoneme_error_rate(
            [e["decoded"] for e in examples], [e["reference"] for e in examples]))
    # the samples: one line per test word on each target, the same on every target
    targets = TARGETS[family]
    samples = outputs["SampleGen"]["samples"].path
    summary = json.loads((samples / "samples.json").read_text())
    assert sorted(summary["targets"]) == sorted(targets), summary
    assert sorted(p.name for p in samples.iterdir()) == sorted(
        [f"{t}.txt" for t in targets] + ["samples.json"])
    texts = {t: (samples / f"{t}.txt").read_text(encoding="utf-8") for t in targets}
    for target in targets:
        assert texts[target] == texts["savedmodel"], (target, texts)
    lines = texts["savedmodel"].splitlines()
    assert len(lines) == min(4, len(test))
    for line, (word, ipa) in zip(lines, test):
        assert line.startswith(f"{word} -> ") and line.endswith(f" (reference: {ipa})"), line
    # `keras-ar generate` on the pushed version: the same words give the same decodings
    pushed = os.path.join(config.push.serving_base_path, "1")
    words = [x for word, _ in test[:len(lines)] for x in ("--source", word)]
    assert cli.main(["generate", "--model", pushed, *words, "--temperature", "0",
                     "--num-steps", "24", "--out", str(tmp_path / "ipa.txt")]) == 0
    decoded = [line.split(" -> ", 1)[1].rsplit(" (reference: ", 1)[0] for line in lines]
    assert (tmp_path / "ipa.txt").read_text(encoding="utf-8").split("\n") == decoded + [""]
