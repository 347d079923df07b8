"""Images given as a prompt to an image model: its top rows are kept, the rest is generated.

    keras-ar generate --model DIR --prompt-images test.npy --prompt-rows 14 --repeat 4 \
        --out completions.png

An image model generates pixels in raster order, so "the top R rows given" is a prompt of
the first R * W positions (`x [B, R * W, C]`); the generation then runs the remaining
(H - R) * W steps. Images come as

* `.npy`: pixel ids as the model sees them, integers in [0, num_levels), shaped
  [N, H, W, C], [N, H, W] (C = 1) or one image [H, W(, C)];
* `.png`: one 8-bit image of H x W pixels (grey for C = 1, RGB for C = 3), mapped to ids as
  the data are quantised at ingest: `id = value * num_levels // 256`.

Pillow (a matplotlib dependency) reads PNGs, imported only when a PNG is given.
"""

import pathlib

import numpy as np


def read_images(path, image_shape, num_levels):
    """The images in `path` as int ids [N, H, W, C]; ValueError names what is wrong."""
    path = pathlib.Path(path)
    shape = tuple(int(d) for d in image_shape)
    if not path.is_file():
        raise FileNotFoundError(f"--prompt-images {str(path)!r} does not exist.")
    if path.suffix == ".npy":
        images = np.load(path, allow_pickle=False)
    elif path.suffix == ".png":
        images = _png_ids(path, shape, num_levels)
    else:
        raise ValueError(f"--prompt-images {path}: the extension {path.suffix or '(none)'!r} "
                         "is not supported; pass a .npy file of pixel ids or a .png image.")
    images = _as_batch(np.asarray(images), shape, path)
    _check_ids(images, num_levels, path)
    return images.astype(np.int64)


def prompt_values(images, rows):
    """Images [N, H, W, C] -> the generator's prompt [N, rows * W, C] (raster order)."""
    images = np.asarray(images)
    height = images.shape[1]
    if isinstance(rows, bool) or int(rows) != rows or not 0 < rows < height:
        raise ValueError(f"--prompt-rows {rows!r}: the number of given rows must be an "
                         f"integer in [1, {height - 1}] (the images have {height} rows).")
    top = images[:, : int(rows)]
    return top.reshape(len(images), -1, images.shape[-1])


def _as_batch(images, shape, path):
    """[H, W], [H, W, C], [N, H, W] or [N, H, W, C] -> [N, H, W, C] matching `shape`."""
    height, width, channels = shape
    if images.shape == (height, width) or images.shape == (height, width, channels):
        images = images[None]
    if images.ndim == 3 and channels == 1 and images.shape[1:] == (height, width):
        images = images[..., None]
    if images.ndim != 4 or images.shape[1:] != shape or not len(images):
        raise ValueError(f"--prompt-images {path}: an array of shape {list(images.shape)}; "
                         f"this model's images are {list(shape)} (H, W, C), so [N, {height}, "
                         f"{width}, {channels}], [N, {height}, {width}] (one channel) or one "
                         f"image [{height}, {width}(, {channels})] is expected.")
    return images


def _check_ids(images, num_levels, path):
    if images.dtype.kind not in "iub" and not (
            np.isfinite(images).all() and np.all(images == np.round(images))):
        raise ValueError(f"--prompt-images {path}: the values ({images.dtype}) are not all "
                         f"integers; pixel ids in [0, {num_levels}) are expected.")
    low, high = images.min(), images.max()
    if low < 0 or high >= num_levels:
        raise ValueError(f"--prompt-images {path}: values range over [{low}, {high}]; this "
                         f"model takes pixel ids in [0, {num_levels - 1}] ({num_levels} "
                         f"levels). Quantise 8-bit pixels v as v * {num_levels} // 256, or "
                         f"pass a PNG.")


def _png_ids(path, shape, num_levels):
    from PIL import Image

    height, width, channels = shape
    modes = {1: "L", 3: "RGB"}
    if channels not in modes:
        raise ValueError(f"--prompt-images {path}: a PNG prompt needs a 1- or 3-channel "
                         f"model; this one has {channels} channels. Pass a .npy file.")
    with Image.open(path) as image:
        if image.size != (width, height):
            raise ValueError(f"--prompt-images {path}: the PNG is {image.size[0]} x "
                             f"{image.size[1]} pixels (W x H); this model's images are "
                             f"{width} x {height}.")
        pixels = np.asarray(image.convert(modes[channels]), np.int64)
    return pixels.reshape(height, width, channels) * num_levels // 256
