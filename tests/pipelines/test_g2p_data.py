"""The grapheme-to-phoneme data: Debian's word list read by espeak-ng at ingest (the real
espeak-ng), the pairs records, and the input pipeline's ids."""

import hashlib

import numpy as np
import pytest

from keras_ar import contract
from pipelines.data import make_dataset, pairs, records
from pipelines.data.sources import SourceUnavailable, get
from pipelines.data.sources.word_pronunciations import WORDS, _espeak, transcribe
from tests.pipelines import helpers


def _word_list(tmp_path, words):
    path = tmp_path / "words"
    path.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    return str(path)


def test_keeps_lowercase_ascii_words_within_the_length_range(tmp_path):
    path = _word_list(tmp_path, ["Apple", "apple", "it's", "a", "cat", "dog", "zebra",
                                 "internationalization", "ox", "café", "dog"])
    source = get("wamerican_ipa", path=path, min_length=2, max_length=12)
    assert source.words() == ["apple", "cat", "dog", "ox", "zebra"]


def test_max_words_is_a_fixed_subset_independent_of_the_list_order(tmp_path):
    words = [f"{a}{b}" for a in "abcdefgh" for b in "xyz"]
    one = get("wamerican_ipa", path=_word_list(tmp_path, words), max_words=5).words()
    (tmp_path / "b").mkdir()
    two = get("wamerican_ipa", path=_word_list(tmp_path / "b", words[::-1]),
              max_words=5).words()
    assert one == two and len(one) == 5
    smallest = sorted(words, key=lambda w: hashlib.sha256(w.encode()).hexdigest())[:5]
    assert one == sorted(smallest)


def test_pronunciations_are_espeaks_one_word_at_a_time_readings(tmp_path):
    words = ["cat", "booking", "thought", "zebra", "ox"]
    source = get("wamerican_ipa", path=_word_list(tmp_path, words), batch_words=3)
    items = source.items()
    assert [w for w, _ in items] == sorted(words)
    # batched calls (3 words per call here) give what one call per word gives
    for word, ipa in items:
        assert ipa == " ".join(_espeak(word, "en-us").split()), word
    assert dict(items)["cat"] == "kˈæt"
    record = source.load(items[0])
    assert record == {"key": "g2p/booking", "source": b"booking",
                      "target": dict(items)["booking"].encode()}


def test_a_batch_whose_lines_do_not_match_its_words_is_redone_word_by_word():
    calls = []

    def merging(text, voice):  # the real espeak-ng, with its output lines run together
        calls.append(text)
        out = _espeak(text, voice)
        return out.replace("\n", " ", 1) if text.count("\n") > 1 else out

    words = ["cat", "dog", "ox"]
    assert transcribe(words, batch=3, espeak=merging) == transcribe(words, batch=1)
    assert calls == ["cat\ndog\nox\n", "cat", "dog", "ox"]


def test_spelled_out_words_are_dropped_unless_asked(tmp_path):
    path = _word_list(tmp_path, ["ii", "cat"])
    assert [w for w, _ in get("wamerican_ipa", path=path).items()] == ["cat"]
    kept = dict(get("wamerican_ipa", path=path, drop_multiword=False).items())
    assert " " in kept["ii"]  # roman numeral two, read as two words


def test_characters_outside_the_alphabet_fail_the_ingest_naming_them(tmp_path):
    source = get("wamerican_ipa", path=_word_list(tmp_path, ["cat"]),
                 target_alphabet="kæt")
    with pytest.raises(ValueError) as err:
        source.items()
    message = str(err.value)
    assert "\n" not in message
    assert "'cat'" in message and "['ˈ']" in message and "target_alphabet" in message
    source = get("wamerican_ipa", path=_word_list(tmp_path, ["cat"]), source_alphabet="ca")
    with pytest.raises(ValueError, match=r"\['t'\].*source_alphabet"):
        source.items()


def test_missing_word_list_or_espeak_names_the_debian_package(tmp_path, monkeypatch):
    with pytest.raises(SourceUnavailable, match="`wamerican`"):
        get("wamerican_ipa", path=str(tmp_path / "missing")).check()
    assert __import__("os").path.exists(WORDS), "wamerican (requirements/debian.txt) is missing"
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on the PATH
    with pytest.raises(SourceUnavailable, match="`espeak-ng`"):
        get("wamerican_ipa").check()


def test_the_split_is_a_hash_of_the_word():
    keys = [get("wamerican_ipa").load((w, "x"))["key"] for w in ("cat", "dog")]
    assert keys == ["g2p/cat", "g2p/dog"]
    for key in keys:  # the same word lands in the same split whatever else is ingested
        assert len({records.split_of(key, 10, 10) for _ in range(3)}) == 1


def _pair_record(i):
    words = [("cat", "kˈæt"), ("booking", "bˈʊkɪŋ"), ("ox", "ˈɑːks"), ("thought", "θˈɔːt")]
    word, ipa = words[i % len(words)]
    return {"key": f"g2p/{word}{i}", "source": word.encode(), "target": ipa.encode()}


def test_input_pipeline_gives_padded_source_and_target_ids(tmp_path):
    examples = helpers.write_examples(tmp_path / "ex", "pairs", count=(8, 4, 4),
                                      make=_pair_record, shards=1)
    data = helpers.data_config(examples, source="wamerican_ipa", modality="pairs", window=8,
                               source_window=10, batch_size=4)
    batch = next(iter(make_dataset(data, "test", repeat=False)))
    source, x = batch[contract.LOCAL_CONDITION].numpy(), batch[contract.X].numpy()
    assert source.shape == (4, 10) and x.shape == (4, 8)
    assert source.dtype == np.int32 and x.dtype == np.int32
    stop, pad = len(pairs.TARGET_ALPHABET), len(pairs.SOURCE_ALPHABET)
    rows = [_pair_record(i) for i in range(8, 12)]  # the test split's records, in order
    for row, src, tgt, n in zip(rows, source, x, batch[contract.LENGTHS].numpy()):
        word, ipa = row["source"].decode(), row["target"].decode()
        assert list(src) == pairs.encode(word, pairs.SOURCE_ALPHABET) + [pad] * (10 - len(word))
        want = pairs.encode(ipa, pairs.TARGET_ALPHABET) + [stop]
        assert list(tgt) == want + [stop] * (8 - len(want))
        assert n == len(ipa) + 1  # characters + the stop id
        assert pairs.decode(tgt, pairs.TARGET_ALPHABET) == ipa
