"""The `audio_folder` source: your own recordings (.wav, .flac, .ogg) from a directory.

Files are found recursively under `path`. With `speaker_from: subdirectory` (default) the
top-level subdirectory of each file is its speaker (sorted names -> ids 0..K-1,
`metadata()["speakers"]`); with `speaker_from: none` every file is speaker 0. Records hold the
encoded file bytes, the format and the sample rate read from the header; the dataset decodes
and resamples in the graph."""

import io
import os
import wave

from pipelines.data.sources.klettres_speech import header_rate
from pipelines.data.sources.source import FolderSource

FORMATS = ("wav", "flac", "ogg")


class AudioFolder(FolderSource):
    """Options: `path` (directory, searched recursively), `speaker_from` (subdirectory | none)."""

    name = "audio_folder"
    modality = "audio"

    group_option = "speaker_from"
    path_help = "a directory of .wav/.flac/.ogg files"
    extensions = tuple("." + f for f in FORMATS)
    group_word = "speaker"

    def speakers(self):
        return self._groups()

    def check(self):
        self._check_directory()
        self._check_found(", recursively")

    def load(self, item):
        speaker, path = item
        try:
            with open(path, "rb") as f:
                audio = f.read()
        except OSError as err:
            raise ValueError(f"audio_folder: cannot read {path}: {err}") from None
        if not audio:
            raise ValueError(f"audio_folder: {path} is empty (0 bytes).")
        fmt = os.path.splitext(path)[1][1:].lower()
        rate = _wav_rate(audio) if fmt == "wav" else header_rate(audio, fmt)
        if rate <= 0:
            raise ValueError(f"audio_folder: cannot read the sample rate from the header of "
                             f"{path}; expected a valid {fmt.upper()} file.")
        key = "audio_folder/" + os.path.relpath(path, self.path).replace(os.sep, "/")
        return {"key": key, "audio": audio, "format": fmt, "sample_rate": rate,
                "speaker": speaker}

    def metadata(self):
        speakers = self.speakers()
        return {"num_speakers": max(len(speakers), 1), "speakers": speakers}


def _wav_rate(data):
    """The rate of a WAV file via the stdlib `wave` (any chunk order); the fixed-offset header
    read for formats `wave` refuses (e.g. float PCM); 0 if neither works."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getnframes() > 0:
                return w.getframerate()
            return 0
    except (wave.Error, EOFError):
        return header_rate(data, "wav")
