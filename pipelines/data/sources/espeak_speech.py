"""A multi-speaker speech corpus synthesised at ingest with Debian's `espeak-ng`.

Speakers are espeak-ng voices (language + variant, e.g. `en-us+f3`); the speaker id (index in
`voices`) is the global condition. Sentences are the public-domain Harvard sentences below
(IEEE 1969 "Recommended practice for speech quality measurements"), or `sentences` from the
options. Each record is a 16-bit mono WAV at espeak's native 22050 Hz; the input pipeline
resamples to the model rate in the graph.
"""

import os
import shutil
import subprocess
import tempfile

from pipelines.data.sources.source import Source, SourceUnavailable

DEFAULT_VOICES = ("en-us+m3", "en-us+f3", "en-gb+m1", "en-gb+f2")

HARVARD_SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "Large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Read verse out loud for pleasure.",
)


class EspeakSpeech(Source):
    """Options: `voices` (list of espeak-ng voices), `sentences` (list), `speed` (wpm)."""

    name = "espeak"
    modality = "audio"

    @property
    def voices(self):
        return list(self._option("voices", DEFAULT_VOICES))

    def check(self):
        if shutil.which("espeak-ng") is None:
            raise SourceUnavailable(
                "espeak-ng is not installed, so the speech corpus cannot be synthesised. "
                "Install the Debian package `espeak-ng` (listed in requirements/debian.txt; "
                "`bash scripts/install_system_packages.sh`).")

    def items(self):
        sentences = list(self._option("sentences", HARVARD_SENTENCES))
        return [(speaker, voice, i, sentence)
                for speaker, voice in enumerate(self.voices)
                for i, sentence in enumerate(sentences)]

    def load(self, item):
        speaker, voice, index, sentence = item
        speed = str(int(self._option("speed", 160)))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "out.wav")
            # -w writes a complete RIFF header (--stdout streams one with a bogus length).
            subprocess.run(["espeak-ng", "-v", voice, "-s", speed, "-w", path, sentence],
                           check=True, capture_output=True)
            with open(path, "rb") as f:
                audio = f.read()
        return {"key": f"espeak/{voice}/{index:04d}", "audio": audio, "format": "wav",
                "sample_rate": 22050, "speaker": speaker}

    def metadata(self):
        return {"num_speakers": len(self.voices), "speakers": self.voices}
