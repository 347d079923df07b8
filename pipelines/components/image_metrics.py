"""Whether class-conditional image samples look like their class, measured without a trained
network: a nearest-centroid classifier of the train split.

    centroid_c   = mean of the train images of class c (levels scaled to [0, 1])
    class(image) = argmin_c || image - centroid_c ||^2

`class_agreement` is the fraction of generated images whose nearest centroid is the class
they were generated for. The same classifier's accuracy on the test images is the reference
(what real images of the class score), 1 / classes the chance level: a model that ignores
its class condition scores about chance, one that draws recognisable garments approaches
the test images' figure.

    python -m pipelines.components.image_metrics --examples DIR --levels 2 SAMPLES_DIR
"""

import argparse
import glob
import io
import pathlib

import numpy as np


def read_split(examples_dir, split):
    """(images float [N, H, W, C] as stored levels, labels int [N]) of one split."""
    import tensorflow as tf

    from pipelines.data import records

    images, labels = [], []
    for file in sorted(glob.glob(f"{examples_dir}/{split}/*.tfrecord*")):
        for data in tf.data.TFRecordDataset(file):
            record = records.deserialize(data.numpy())
            images.append(_png(record["image"]))
            labels.append(int(record.get("label", 0)))
    return np.stack(images), np.asarray(labels)


def _png(data):
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(data)), np.float32)
    return image[..., None] if image.ndim == 2 else image


def read_png(path):
    """A PNG file -> float32 [H, W, C] (0..255 as written)."""
    return _png(pathlib.Path(path).read_bytes())


def centroids(images, labels, levels):
    """{class: centroid [H * W * C] in [0, 1]}."""
    flat = images.reshape(len(images), -1) / max(levels - 1, 1)
    return {int(c): flat[labels == c].mean(axis=0) for c in np.unique(labels)}


def classify(images, means, levels):
    """Nearest-centroid class of each image (levels scaled by `levels - 1`)."""
    flat = np.asarray(images, np.float32).reshape(len(images), -1) / max(levels - 1, 1)
    classes = sorted(means)
    table = np.stack([means[c] for c in classes])  # (K, D)
    distances = ((flat[:, None, :] - table[None]) ** 2).sum(axis=-1)  # (N, K)
    return np.asarray(classes)[distances.argmin(axis=1)]


def class_agreement(images, wanted, means, levels):
    """Fraction of `images` classified as the class each was generated for."""
    return float(np.mean(classify(images, means, levels) == np.asarray(wanted)))


def sample_classes(files, class_names):
    """Generated PNG names `<target>_<row>_<class name>.png` -> class ids (None when a name
    carries no class)."""
    from serving.writers import file_label

    index = {file_label(name): i for i, name in enumerate(class_names)}
    out = []
    for name in files:
        stem = pathlib.Path(name).stem.split("_", 2)
        out.append(index.get(stem[2]) if len(stem) == 3 else None)
    return out


def _class_names(examples_dir, means):
    from pipelines.components.trainer import source_metadata

    metadata = source_metadata(examples_dir)
    return [str(c) for c in (metadata.get("class_names") or metadata.get("classes")
                             or sorted(means))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", required=True, help="an Examples artifact directory")
    parser.add_argument("--levels", type=int, default=256)
    parser.add_argument("--classes", default="", help="class names, comma-separated, in id "
                        "order (default: the source's, from the examples' ingest.json)")
    parser.add_argument("samples", help="a SampleGen samples directory")
    args = parser.parse_args(argv)
    images, labels = read_split(args.examples, "train")
    means = centroids(images, labels, args.levels)
    test_images, test_labels = read_split(args.examples, "test")
    print(f"test images: {class_agreement(test_images, test_labels, means, args.levels):.3f}"
          f" (chance {1 / len(means):.3f})")
    names = args.classes.split(",") if args.classes else _class_names(args.examples, means)
    files = sorted(p.name for p in pathlib.Path(args.samples).glob("*_*_*.png"))
    for target in sorted({f.split("_")[0] for f in files} - {"reference"}):
        mine = [f for f in files if f.startswith(target + "_")]
        wanted = sample_classes(mine, names)
        kept = [(f, c) for f, c in zip(mine, wanted) if c is not None]
        if not kept:
            print(f"{target}: no sample names a class")
            continue
        generated = np.stack([read_png(pathlib.Path(args.samples) / f) for f, _ in kept])
        # samples are written as 0..255 PNGs: back to stored levels
        generated = np.round(generated / 255.0 * (args.levels - 1))
        agreement = class_agreement(generated, [c for _, c in kept], means, args.levels)
        print(f"{target}: {agreement:.3f} of {len(kept)} samples")


if __name__ == "__main__":
    main()
