"""Word vocabularies for the tokens modality: file checks, in-graph ids, OOV, stop padding,
the vocabulary builder, the model size check and SampleGen's text join."""

import numpy as np
import pytest

from pipelines import config as config_lib
from pipelines.components import sample_gen, training
from pipelines.data import make_dataset, vocabulary
from tests.pipelines import helpers

WORDS = ["the", "cat", "sat"]  # ids 0, 1, 2; OOV 3; stop 4


def _vocab(tmp_path, words=WORDS):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(w + "\n" for w in words))
    return str(path)


def _text_record(text):
    return lambda i: {"key": f"text/{i:04d}", "text": text.encode()}


def test_ids_oov_and_stop_padding(tmp_path):
    helpers.write_examples(tmp_path / "ex", "tokens", count=(1, 1, 1), shards=1,
                           make=_text_record("The cat  SAT on the\tmat"))
    config = helpers.data_config(tmp_path / "ex", modality="tokens", window=9, batch_size=1,
                                 vocabulary=_vocab(tmp_path))
    batch = next(iter(make_dataset(config, "eval")))
    # the cat sat on(OOV) the mat(OOV) stop, then stop padding up to the window
    assert batch["x"].numpy().tolist() == [[0, 1, 2, 3, 0, 3, 4, 4, 4]]
    assert batch["lengths"].numpy().tolist() == [7]


def test_keep_case_maps_capitals_to_oov(tmp_path):
    helpers.write_examples(tmp_path / "ex", "tokens", count=(1, 1, 1), shards=1,
                           make=_text_record("The cat"))
    config = helpers.data_config(tmp_path / "ex", modality="tokens", window=4, batch_size=1,
                                 vocabulary=_vocab(tmp_path), lowercase=False)
    batch = next(iter(make_dataset(config, "eval")))
    assert batch["x"].numpy().tolist() == [[3, 1, 4, 4]]


def test_vocabulary_file_errors_name_the_problem(tmp_path):
    with pytest.raises(vocabulary.VocabularyError, match="not found"):
        vocabulary.load_vocabulary(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(vocabulary.VocabularyError, match="empty"):
        vocabulary.load_vocabulary(tmp_path / "empty.txt")
    (tmp_path / "dup.txt").write_text("a\nb\na\n")
    with pytest.raises(vocabulary.VocabularyError, match=r"dup.txt:3: duplicate token 'a' "
                                                         r"\(first on line 1\)"):
        vocabulary.load_vocabulary(tmp_path / "dup.txt")


def test_builder_keeps_the_most_frequent_words(tmp_path):
    texts = ["b a b", "c B a b", "d"]
    helpers.write_examples(tmp_path / "ex", "tokens", count=(3, 1, 1), shards=1,
                           make=lambda i: {"key": f"t/{i}", "text": texts[i % 3].encode()})
    out = tmp_path / "sub" / "vocab.txt"
    assert vocabulary.main(["--examples", str(tmp_path / "ex"), "--size", "2",
                            "--out", str(out)]) == 0
    assert out.read_text() == "b\na\n"
    assert vocabulary.load_vocabulary(out) == ["b", "a"]
    assert [p.name for p in out.parent.iterdir()] == ["vocab.txt"]  # no temp file left


def test_model_vocab_size_must_be_vocabulary_plus_two(tmp_path):
    data = helpers.data_config(tmp_path, modality="tokens", vocabulary=_vocab(tmp_path))
    model = config_lib.ModelConfig(family="causal_transformer",
                                   params={"vocab_size": 257, "num_layers": 1,
                                           "num_heads": 1, "hidden_dim": 8, "max_length": 8})
    with pytest.raises(ValueError, match=r"vocab_size is 257 .* 3 tokens.* 5 ids"):
        training.build_model(model, data, {})


def test_vocabulary_needs_the_tokens_modality():
    with pytest.raises(config_lib.ConfigError, match="data.vocabulary"):
        config_lib.from_dict({"data": {"modality": "audio", "vocabulary": "v.txt"}})


def test_sample_gen_joins_words_up_to_the_stop(tmp_path):
    rows = np.array([[1, 2, 3, 4, 0], [0, 1, 1, 2, 2]], np.int32)
    params = {"modality": "tokens", "vocabulary": _vocab(tmp_path)}
    files = sample_gen._write(rows, "onnx", tmp_path, params, {})
    assert files == ["onnx_0.txt", "onnx_1.txt"]
    assert (tmp_path / "onnx_0.txt").read_text() == "cat sat <unk>"
    assert (tmp_path / "onnx_1.txt").read_text() == "the cat cat sat sat"


def test_editing_the_vocabulary_changes_the_component_parameters(tmp_path):
    from pipelines.components import specs

    path = _vocab(tmp_path)
    config = config_lib.from_dict({"data": {"modality": "tokens", "vocabulary": path}})
    before = [spec.parameters(config) for spec in (specs.TRAINER, specs.EVALUATOR,
                                                    specs.SAMPLE_GEN)]
    _vocab(tmp_path, WORDS + ["mat"])
    after = [spec.parameters(config) for spec in (specs.TRAINER, specs.EVALUATOR,
                                                   specs.SAMPLE_GEN)]
    for old, new in zip(before, after):
        assert old["vocabulary_sha256"] != new["vocabulary_sha256"]
    assert after[2]["vocabulary"] == path
