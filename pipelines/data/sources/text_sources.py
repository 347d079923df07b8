"""Text corpora: Debian's `fortunes` (one record per fortune cookie) and the Python standard
library's own source (one record per module file). Records carry UTF-8 bytes; the input
pipeline maps bytes to ids 0..255 and appends the stop id 256."""

import glob
import os
import sysconfig

from pipelines.data.sources.source import Source, require_path

FORTUNES = "/usr/share/games/fortunes"


class Fortunes(Source):
    """Options: `files` (fortune database names, default all), `root`."""

    name = "fortunes"
    modality = "tokens"

    def check(self):
        require_path(os.path.join(self._option("root", FORTUNES), "fortunes"), "fortunes",
                     "the fortunes text corpus")

    def items(self):
        root = self._option("root", FORTUNES)
        names = self._option("files", None) or sorted(
            os.path.basename(p) for p in glob.glob(os.path.join(root, "*"))
            if "." not in os.path.basename(p) and os.path.isfile(p))
        items = []
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                cookies = f.read().split(b"\n%\n")
            items += [(f"{name}/{i:05d}", c.strip()) for i, c in enumerate(cookies) if c.strip()]
        return items

    def load(self, item):
        key, text = item
        return {"key": "fortunes/" + key, "text": text}


class PythonStdlib(Source):
    """The stdlib's .py files (top level of the library directory): real, offline code."""

    name = "python_stdlib"
    modality = "tokens"

    def items(self):
        root = sysconfig.get_paths()["stdlib"]
        return sorted(glob.glob(os.path.join(root, "*.py")))

    def load(self, item):
        with open(item, "rb") as f:
            text = f.read()
        return {"key": "stdlib/" + os.path.basename(item), "text": text}
