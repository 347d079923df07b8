"""`keras-ar generate --source WORD --out F.txt` on a grapheme-to-phoneme export: the g2p
pipeline's model (built from the pairs data config, so it carries the letter and IPA lists)
exported by the pipeline's export step; each word becomes one line of IPA characters, the
model's greedy decoding up to its stop id, on the SavedModel and on TFLite.

The model is untrained; its output layer is sharpened (kernel x 10) and the stop id's bias
raised so that greedy decoding stops at different positions per word (one word at once)."""

import json

import numpy as np
import pytest

from pipelines import config as config_lib
from pipelines.data import pairs

pytestmark = pytest.mark.slow  # a pipeline run and an export per module

WORDS = ["hello", "world", "cat", "phoneme"]
TARGETS = ("savedmodel", "tflite")
STOP = len(pairs.TARGET_ALPHABET)  # 49
PARAMS = {"source_vocab_size": 26, "target_vocab_size": 50, "max_source_length": 12,
          "a": 2.0, "b": 16, "encoder_dilations": [1, 2], "decoder_dilations": [1, 2],
          "channels": 16}


def _config():
    return config_lib.from_dict({
        "name": "tiny_g2p_generate",
        "data": {"source": "wamerican_ipa", "modality": "pairs",
                 "options": {"max_length": 12}, "window": 24, "source_window": 12},
        "validation": {"min_length": 2, "max_length": 24},
        "model": {"family": "byte_net", "params": PARAMS},
        "export": {"targets": list(TARGETS), "verify_parity": False},
        "generation": {"num_steps": 24, "temperature": 0.0},
    }, "tiny_g2p_generate")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, export dir): the pipeline's model and export step on an untrained ByteNet."""
    import keras

    from pipelines.components import exporter, training

    config = _config()
    keras.utils.set_random_seed(0)
    model = training.build_model(config.model, config.data, {})
    kernel, bias = model.output_params.get_weights()
    bias = bias.copy()
    bias[STOP] += 0.1  # with kernel x 10: words stop after 0 to 2 characters
    model.output_params.set_weights([kernel * 10.0, bias])
    out = tmp_path_factory.mktemp("g2p_generate") / "export"
    exporter._export_all(model, out, list(TARGETS), config.export, None)
    return model, out


def _greedy_lines(model, words, num_steps):
    from pipelines.components.seq2seq_eval import greedy_decode

    sources = np.full((len(words), PARAMS["max_source_length"]), PARAMS["source_vocab_size"],
                      np.int32)
    for row, word in enumerate(words):
        sources[row, :len(word)] = pairs.encode(word, pairs.SOURCE_ALPHABET)
    return [pairs.decode(ids, pairs.TARGET_ALPHABET)
            for ids in greedy_decode(model, sources, num_steps, STOP)]


def _cli(*args):
    from pipelines import cli

    return cli.main(["generate", *map(str, args)])


def test_the_manifest_records_the_letters_the_ipa_and_the_stop(exported):
    _, out = exported
    decoding = json.loads((out / "generation_spec.json").read_text())["decoding"]
    assert decoding["source_vocabulary"] == list(pairs.SOURCE_ALPHABET)
    assert decoding["vocabulary"] == list(pairs.TARGET_ALPHABET)
    assert decoding["stop_token"] == decoding["target_stop_id"] == STOP


@pytest.mark.parametrize("target", TARGETS)
def test_generate_writes_one_ipa_line_per_word(exported, tmp_path, target):
    model, out = exported
    sources = [x for word in WORDS for x in ("--source", word)]
    path = tmp_path / "ipa.txt"
    assert _cli("--model", out / target, *sources, "--temperature", 0, "--out", path) == 0
    # --num-steps left out: the longest word's floor(2 x 7) + 16 = 30 target positions
    expected = _greedy_lines(model, WORDS, 30)
    assert path.read_text(encoding="utf-8").split("\n") == expected + [""]
    assert [len(line) for line in expected] == [1, 1, 0, 2]  # stops at 0..2 characters


def test_a_letter_outside_the_list_is_refused(exported, tmp_path, capsys):
    _, out = exported
    path = tmp_path / "ipa.txt"
    assert _cli("--model", out / "savedmodel", "--source", "hello", "--source", "naïve",
                "--temperature", 0, "--out", path) == 2
    error = capsys.readouterr().err
    assert "'naïve' holds 'ï'" in error and "not in the source vocabulary" in error, error
    assert not path.exists()
