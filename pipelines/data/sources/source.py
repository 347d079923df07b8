"""The source adapter protocol: bundled, offline data behind a small class.

A source lists light `items` (file paths, (voice, sentence) pairs, ...) and `load`s one item
into a record dict; ExampleGen parallelises `load` in a Beam pipeline. Sources never download:
`check()` raises `SourceUnavailable` naming what to install when the data are missing.

Record dicts per modality (see `pipelines.data.records`):
    audio:     key, audio (encoded file bytes), format (wav|ogg|flac), sample_rate, speaker
    tokens:    key, text (bytes)
    images:    key, image (PNG bytes), label
    sequences: key, values (flat float list), dim, label
    pairs:     key, source (bytes), target (bytes): a string and its transduction
"""


import os


class SourceUnavailable(RuntimeError):
    """The bundled data are not installed; the message says what to install."""


class Source:
    """Base class: subclasses set `name`, `modality`, and implement `check`, `items`, `load`."""

    name = ""
    modality = ""

    def __init__(self, **options):
        self.options = dict(options)

    def check(self):
        """Raise `SourceUnavailable` with install instructions if the data are missing."""

    def items(self):
        """A list of picklable items, one per record, in a stable order."""
        raise NotImplementedError

    def load(self, item):
        """item -> record dict (bytes/ints/floats only: it crosses Beam workers)."""
        raise NotImplementedError

    def metadata(self):
        """JSON-able facts a model needs (e.g. `num_speakers`, `speakers`)."""
        return {}

    def _option(self, name, default):
        return self.options.get(name, default)


class FolderSource(Source):
    """A source over a user's directory (`path`), one class or speaker per subdirectory when
    the option `group_option` is 'subdirectory' (the default), none when it is 'none'.
    `items()` lists (group id, file) for the files ending in one of `extensions`, found
    recursively in sorted order."""

    group_option = ""
    path_help = ""
    extensions = ()  # lower-case, with the dot
    group_word = ""  # "class", "speaker": for messages

    @property
    def path(self):
        path = self._option("path", None)
        if not path:
            raise ValueError(f"{self.name}: option `path` ({self.path_help}) is required.")
        return str(path)

    def _group_mode(self):
        mode = self._option(self.group_option, "subdirectory")
        if mode not in ("subdirectory", "none"):
            raise ValueError(f"{self.name}: option `{self.group_option}` must be "
                             f"'subdirectory' or 'none'; received {mode!r}.")
        return mode

    def _groups(self):
        """Sorted subdirectory names (ids 0..K-1), or [] when grouping is 'none'."""
        if self._group_mode() == "none":
            return []
        return sorted(d for d in os.listdir(self.path)
                      if os.path.isdir(os.path.join(self.path, d)))

    def _check_directory(self):
        if not os.path.isdir(self.path):
            raise FileNotFoundError(f"{self.name}: `path` {self.path!r} is not a directory.")

    def _files_under(self, folder):
        found = []
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            found += [os.path.join(root, f) for f in sorted(files)
                      if os.path.splitext(f)[1].lower() in self.extensions]
        return found

    def items(self):
        if self._group_mode() == "none":
            return [(0, path) for path in self._files_under(self.path)]
        return [(group, path) for group, name in enumerate(self._groups())
                for path in self._files_under(os.path.join(self.path, name))]

    def _check_found(self, recursively=""):
        if not self.items():
            where = (f"its {self.group_word} subdirectories"
                     if self._group_mode() == "subdirectory" else "it")
            kinds = "/".join(self.extensions)
            raise ValueError(f"{self.name}: no {kinds} files under {self.path!r} "
                             f"(looked in {where}{recursively}).")


def require_path(path, package, what):
    import os

    if not os.path.exists(path):
        raise SourceUnavailable(
            f"{what} not found at {path}. Install the Debian package `{package}` (listed in "
            f"requirements/debian.txt; `bash scripts/install_system_packages.sh` or "
            f"`apt-get install {package}`). keras-ar never downloads data.")
