"""Recorded speech from Debian's `klettres-data`: letters and syllables spoken in ~20 languages
(OGG Vorbis, 44.1 kHz in the Debian build; the rate is read from each header). Speaker id =
language (index in the
sorted list of the languages present), for global conditioning."""

import glob
import os

from pipelines.data.sources.source import Source, require_path

ROOT = "/usr/share/klettres"


class KlettresSpeech(Source):
    """Options: `languages` (list; default all), `root` (default /usr/share/klettres)."""

    name = "klettres"
    modality = "audio"

    @property
    def root(self):
        return self._option("root", ROOT)

    def languages(self):
        wanted = self._option("languages", None)
        found = sorted(d for d in os.listdir(self.root)
                       if os.path.isdir(os.path.join(self.root, d)))
        return [lang for lang in found if wanted is None or lang in wanted]

    def check(self):
        require_path(self.root, "klettres-data", "klettres recorded speech")

    def items(self):
        items = []
        for speaker, lang in enumerate(self.languages()):
            files = sorted(glob.glob(os.path.join(self.root, lang, "**", "*.*"), recursive=True))
            items += [(speaker, path) for path in files
                      if path.rsplit(".", 1)[-1].lower() in ("ogg", "wav", "flac")]
        return items

    def load(self, item):
        speaker, path = item
        with open(path, "rb") as f:
            audio = f.read()
        fmt = path.rsplit(".", 1)[-1].lower()
        return {"key": "klettres/" + os.path.relpath(path, self.root), "audio": audio,
                "format": fmt, "sample_rate": header_rate(audio, fmt), "speaker": speaker}

    def metadata(self):
        langs = self.languages()
        return {"num_speakers": len(langs), "speakers": langs}


def header_rate(data, fmt):
    """The sample rate declared in a WAV/OGG Vorbis/FLAC header; 0 if it cannot be read."""
    if fmt == "wav" and data[:4] == b"RIFF" and len(data) >= 28:
        return int.from_bytes(data[24:28], "little")
    if fmt == "ogg":
        i = data.find(b"\x01vorbis")
        if i >= 0 and len(data) >= i + 16:
            return int.from_bytes(data[i + 12:i + 16], "little")
    if fmt == "flac" and data[:4] == b"fLaC" and len(data) >= 21:
        return int.from_bytes(data[18:21], "big") >> 4
    return 0
