"""Bundled offline data sources, by name (`get("espeak", voices=[...])`)."""

from pipelines.data.sources.audio_folder import AudioFolder
from pipelines.data.sources.espeak_speech import EspeakSpeech
from pipelines.data.sources.image_folder import ImageFolder
from pipelines.data.sources.image_sources import FashionMnist, JapaneseVowels, SklearnDigits
from pipelines.data.sources.klettres_speech import KlettresSpeech
from pipelines.data.sources.source import Source, SourceUnavailable
from pipelines.data.sources.tabular_sequences import TabularSequences
from pipelines.data.sources.text_sources import Fortunes, PythonStdlib
from pipelines.data.sources.word_pronunciations import WordPronunciations

SOURCES = {cls.name: cls for cls in (EspeakSpeech, KlettresSpeech, Fortunes, PythonStdlib,
                                     FashionMnist, SklearnDigits, JapaneseVowels,
                                     TabularSequences, ImageFolder, AudioFolder,
                                     WordPronunciations)}


def get(name, **options):
    if name not in SOURCES:
        raise ValueError(f"Unknown data source {name!r}; choose from {sorted(SOURCES)}.")
    return SOURCES[name](**options)


__all__ = ["Source", "SourceUnavailable", "SOURCES", "get"]
