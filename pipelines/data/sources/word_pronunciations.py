"""Words and their IPA pronunciations: Debian's word list read by espeak-ng at ingest.

The words are the lines of `/usr/share/dict/american-english` (Debian package `wamerican`)
made only of lower-case a-z, with `min_length` <= letters <= `max_length`; `max_words` > 0
keeps that many, the words with the smallest SHA-256 hashes (a fixed subset that does not
depend on the list's order), then sorted. Each word's target is the IPA espeak-ng writes
for it (`espeak-ng -q --ipa -v <voice>`, whitespace collapsed), stress and length marks
included. Words go to espeak-ng `batch_words` at a time, one per line on stdin; a batch
whose output is not one line per word is redone one word per call. With `drop_multiword`
(default), words espeak reads as several words are left out (roman numerals: "ii" ->
"ɹˌoʊmən tˈuː"). A word or pronunciation with a character outside the alphabets
(`pipelines.data.pairs`) fails the ingest, naming both.

Records (modality `pairs`): key `g2p/<word>` (the split is a stable hash of the key, so of
the word: no word is in two splits), source (the word, UTF-8), target (its IPA, UTF-8).
"""

import hashlib
import os
import re
import shutil
import subprocess

from pipelines.data import pairs
from pipelines.data.sources.source import Source, SourceUnavailable, require_path

WORDS = "/usr/share/dict/american-english"
_WORD = re.compile(r"[a-z]+")


class WordPronunciations(Source):
    """Options: `path`, `min_length`, `max_length`, `max_words`, `voice`, `batch_words`,
    `drop_multiword`, `source_alphabet`, `target_alphabet`."""

    name = "wamerican_ipa"
    modality = "pairs"

    @property
    def min_length(self):
        """Fewest letters a kept word has (option `min_length`, default 2)."""
        return int(self._option("min_length", 2))

    @property
    def max_length(self):
        """Most letters a kept word has (option `max_length`, default 12)."""
        return int(self._option("max_length", 12))

    def check(self):
        require_path(self._option("path", WORDS), "wamerican", "The word list")
        if shutil.which("espeak-ng") is None:
            raise SourceUnavailable(
                "espeak-ng is not installed, so the words' pronunciations cannot be made. "
                "Install the Debian package `espeak-ng` (listed in requirements/debian.txt; "
                "`bash scripts/install_system_packages.sh`).")

    def words(self):
        """The selected words, sorted (no transcription)."""
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError(f"{self.name}: options min_length {self.min_length} and "
                             f"max_length {self.max_length} must satisfy 1 <= min_length <= "
                             "max_length (a source needs at least one letter).")
        with open(self._option("path", WORDS), encoding="utf-8", errors="replace") as f:
            found = {line.strip() for line in f}
        words = [w for w in found if _WORD.fullmatch(w)
                 and self.min_length <= len(w) <= self.max_length]
        limit = int(self._option("max_words", 0))
        if limit > 0:
            words = sorted(words, key=lambda w: hashlib.sha256(w.encode()).hexdigest())[:limit]
        return sorted(words)

    def items(self):
        """(word, ipa) per kept word, checked against the alphabets."""
        words = self.words()
        readings = transcribe(words, str(self._option("voice", "en-us")),
                              int(self._option("batch_words", 500)))
        kept = [(w, ipa) for w, ipa in zip(words, readings)
                if not (self._option("drop_multiword", True) and " " in ipa)]
        source_alphabet, target_alphabet = pairs.alphabets(self.options)
        for word, ipa in kept:
            for text, alphabet, side in ((word, source_alphabet, "source_alphabet"),
                                         (ipa, target_alphabet, "target_alphabet")):
                missing = pairs.unknown_characters(text, alphabet)
                if missing:
                    raise ValueError(
                        f"{self.name}: {word!r} -> {ipa!r} holds {missing}, not in "
                        f"data.options.{side}; add them to it (and raise the model's "
                        "vocabulary size to match) or leave the word out.")
        return kept

    def load(self, item):
        """(word, ipa) -> the pairs record, keyed by the word."""
        word, ipa = item
        return {"key": f"g2p/{word}", "source": word.encode(), "target": ipa.encode()}

    def metadata(self):
        """The alphabets the ids index (ingest.json records them)."""
        source_alphabet, target_alphabet = pairs.alphabets(self.options)
        return {"source_alphabet": source_alphabet, "target_alphabet": target_alphabet}


def transcribe(words, voice="en-us", batch=500, espeak=None):
    """The IPA of each word, by espeak-ng on `batch` words per call (one word per line),
    one word per call for a batch whose output lines do not match its words. `espeak(text,
    voice) -> output` runs espeak-ng (default: the `espeak-ng` command)."""
    espeak = espeak or _espeak
    out = []
    for start in range(0, len(words), max(int(batch), 1)):
        chunk = words[start:start + max(int(batch), 1)]
        lines = espeak("\n".join(chunk) + "\n", voice).splitlines()
        if len(lines) != len(chunk) or not all(line.strip() for line in lines):
            lines = [espeak(word, voice) for word in chunk]
        out += [" ".join(line.split()) for line in lines]
    empty = [w for w, ipa in zip(words, out) if not ipa]
    if empty:
        raise ValueError(f"espeak-ng gave no pronunciation for {empty[:5]} (voice {voice!r}); "
                         "check `espeak-ng -q --ipa -v VOICE WORD` by hand.")
    return out


def _espeak(text, voice):
    env = dict(os.environ, LC_ALL="C.UTF-8")
    result = subprocess.run(["espeak-ng", "-q", "--ipa", "-b", "1", "-v", voice],
                            input=text.encode(), capture_output=True, check=True, env=env)
    return result.stdout.decode("utf-8", errors="replace")
