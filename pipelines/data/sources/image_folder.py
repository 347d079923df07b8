"""The `image_folder` source: your own PNG/JPEG images from a directory.

Layout with `label_from: subdirectory` (default): `<path>/<class>/**/*.png|jpg|jpeg`; the sorted
class directory names become labels 0..K-1 (`metadata()["classes"]`). With `label_from: none`
every image under `<path>` (recursive) gets label 0. Images are converted to grey (`channels: 1`,
default) or RGB (`channels: 3`) and stored as PNG; all must share one size (the first image's,
or `image_size: [height, width]`). `levels` (default 256) stores v * levels // 256 like
`fashion_mnist`'s option."""

import os

import numpy as np

from pipelines.data.sources.image_sources import _levels, _png
from pipelines.data.sources.source import FolderSource

EXTENSIONS = (".png", ".jpg", ".jpeg")


class ImageFolder(FolderSource):
    """Options: `path` (directory), `label_from` (subdirectory | none), `channels` (1 | 3),
    `image_size` ([height, width]; default: the first image's), `levels` (2..256)."""

    name = "image_folder"
    modality = "images"

    group_option = "label_from"
    path_help = "a directory of PNG/JPEG images"
    extensions = EXTENSIONS
    group_word = "class"

    def _channels(self):
        channels = self._option("channels", 1)
        if channels not in (1, 3) or isinstance(channels, bool):
            raise ValueError(f"image_folder: option `channels` must be 1 (grey) or 3 (RGB); "
                             f"received {channels!r}.")
        return channels

    def classes(self):
        return self._groups()

    def check(self):
        self._check_directory()
        self._channels()
        _levels(self._option("levels", None), "image_folder")
        size = self._option("image_size", None)
        if size is not None and (len(size) != 2 or any(int(s) < 1 for s in size)):
            raise ValueError(f"image_folder: option `image_size` must be [height, width]; "
                             f"received {size!r}.")
        self._check_found()

    def _expected_size(self):
        """(height, width): the configured `image_size`, else the first image's."""
        if not hasattr(self, "_size"):
            size = self._option("image_size", None)
            if size is None:
                first = self.items()[0][1]
                with _open(first) as image:
                    size = image.size[::-1]
            self._size = (int(size[0]), int(size[1]))
        return self._size

    def load(self, item):
        label, path = item
        height, width = self._expected_size()
        with _open(path) as image:
            if image.size != (width, height):
                raise ValueError(
                    f"image_folder: {path} is {image.size[1]}x{image.size[0]} (height x width) "
                    f"but the images must all be {height}x{width} (set `image_size` or resize "
                    f"the files).")
            try:
                pixels = np.asarray(image.convert("L" if self._channels() == 1 else "RGB"))
            except (OSError, ValueError) as err:
                raise ValueError(f"image_folder: cannot decode image {path}: {err}") from None
        levels = _levels(self._option("levels", None), "image_folder")
        pixels = pixels.astype(np.int32) * levels // 256
        key = "image_folder/" + os.path.relpath(path, self.path).replace(os.sep, "/")
        return {"key": key, "image": _png(pixels), "label": label}

    def metadata(self):
        classes = self.classes()
        height, width = self._expected_size() if self.items() else (0, 0)
        return {"num_classes": max(len(classes), 1), "classes": classes,
                "levels": _levels(self._option("levels", None), "image_folder"),
                "image_shape": [height, width, self._channels()]}


def _open(path):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"image_folder: cannot read image {path}: {err}") from None
