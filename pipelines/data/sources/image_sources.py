"""Image corpora: Fashion-MNIST from Debian's `dataset-fashion-mnist` (28x28 grey, 10 classes)
and scikit-learn's bundled handwritten digits (`load_digits`, 8x8, 17 levels 0..16). Records
hold PNG bytes (values as stored: 0..255 or 0..16) and the class label."""

import gzip
import io
import os

import numpy as np

from pipelines.data.sources.source import Source, SourceUnavailable, require_path

FASHION = "/usr/share/datasets/fashion-mnist"


def _png(array):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _levels(option, source):
    levels = 256 if option is None else option
    if isinstance(levels, bool) or not isinstance(levels, int) or not 2 <= levels <= 256:
        raise ValueError(f"{source}: option `levels` must be an integer in [2, 256]; received "
                         f"{option!r}.")
    return levels


#: Fashion-MNIST's label names, ids 0..9 (Xiao et al. 2017).
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]

class FashionMnist(Source):
    """Options: `subset` (train | t10k, default t10k: 10k images), `root`, `levels` (default
    256; fewer stores v * levels // 256, e.g. 2 binarises at 128)."""

    name = "fashion_mnist"
    modality = "images"

    def _paths(self):
        root = self._option("root", FASHION)
        subset = self._option("subset", "t10k")
        return (os.path.join(root, f"{subset}-images-idx3-ubyte.gz"),
                os.path.join(root, f"{subset}-labels-idx1-ubyte.gz"))

    def check(self):
        for path in self._paths():
            require_path(path, "dataset-fashion-mnist", "Fashion-MNIST")
        self._num_levels()

    def items(self):
        images, labels = self._paths()
        with gzip.open(labels) as f:
            count = len(np.frombuffer(f.read(), np.uint8, offset=8))
        return list(range(count))

    def _arrays(self):
        if not hasattr(self, "_cache"):
            images, labels = self._paths()
            with gzip.open(images) as f:
                pixels = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
            with gzip.open(labels) as f:
                classes = np.frombuffer(f.read(), np.uint8, offset=8)
            self._cache = (pixels, classes)
        return self._cache

    def load(self, item):
        pixels, classes = self._arrays()
        image = pixels[item].astype(np.int32) * self._num_levels() // 256
        return {"key": f"fashion_mnist/{item:05d}", "image": _png(image),
                "label": int(classes[item])}

    def _num_levels(self):
        return _levels(self._option("levels", None), "fashion_mnist")

    def metadata(self):
        return {"num_classes": 10, "levels": self._num_levels(), "classes": FASHION_CLASSES}


class SklearnDigits(Source):
    name = "sklearn_digits"
    modality = "images"

    def check(self):
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise SourceUnavailable(
                "scikit-learn is not installed, so its bundled digits (load_digits) are not "
                "available. `pip install scikit-learn` into .venv, or use the "
                "`fashion_mnist` source.") from None

    def items(self):
        from sklearn.datasets import load_digits

        return list(range(len(load_digits().target)))

    def load(self, item):
        from sklearn.datasets import load_digits

        digits = load_digits()
        return {"key": f"digits/{item:04d}", "image": _png(digits.images[item]),
                "label": int(digits.target[item])}

    def metadata(self):
        return {"num_classes": 10, "levels": 17, "classes": [str(d) for d in range(10)]}


class JapaneseVowels(Source):
    """12-dim LPC frames, lengths 7..29, 9 speakers: the official train then test utterances,
    read by `pipelines.data.japanese_vowels` from the files the `sktime` wheel ships."""

    name = "japanese_vowels"
    modality = "sequences"

    def check(self):
        from pipelines.data import japanese_vowels

        try:
            japanese_vowels.data_dir()
        except japanese_vowels.JapaneseVowelsUnavailable as err:
            raise SourceUnavailable(str(err)) from None

    def items(self):
        return list(range(len(self._data()[1])))

    def _data(self):
        if not hasattr(self, "_cache"):
            from pipelines.data import japanese_vowels

            splits = [japanese_vowels.load(split) for split in japanese_vowels.SPLITS]
            frames = [x[:n] for d in splits for x, n in zip(d["x"], d["lengths"])]
            self._cache = (frames, np.concatenate([d["global_condition"] for d in splits]))
        return self._cache

    def load(self, item):
        frames, labels = self._data()
        return {"key": f"japanese_vowels/{item:04d}",
                "values": frames[item].astype(np.float32).ravel().tolist(),
                "dim": frames[item].shape[1], "label": int(labels[item])}

    def metadata(self):
        return {"num_classes": 9, "dim": 12}
