"""Output writers without TensorFlow: PNG image grids (zlib + struct), 16-bit WAV (wave),
text. Values are the generated ids; `decode_audio` maps them to [-1, 1]. Files are written
atomically (a temporary file in the same folder, then renamed)."""

import io
import os
import struct
import wave
import zlib

import numpy as np


def file_label(name):
    """A speaker/class name as a file-name part: letters, digits and '+.-', others '-'."""
    return "".join(c if c.isalnum() or c in "+.-" else "-" for c in str(name))


def decode_audio(ids, num_classes, mu_law=True):
    """Class ids [.., T] -> float audio in [-1, 1] (mu-law expansion when `mu_law`)."""
    y = 2.0 * np.asarray(ids, np.float64) / (num_classes - 1) - 1.0
    if mu_law:
        mu = num_classes - 1
        y = np.sign(y) * ((1.0 + mu) ** np.abs(y) - 1.0) / mu
    return np.clip(y, -1.0, 1.0)


def read_wav(data, where="WAV data"):
    """The bytes of a 16-bit PCM WAV file -> (mono float audio [T] in [-1, 1), sample rate);
    channels are averaged."""
    with wave.open(io.BytesIO(data), "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        pcm = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{where}: {8 * width}-bit samples; expected 16-bit PCM WAV.")
    return np.frombuffer(pcm, "<i2").reshape(-1, channels).mean(axis=1) / 32768.0, rate


def wav_bytes(audio, sample_rate=16000):
    """Float audio [T] in [-1, 1] -> the bytes of a mono 16-bit PCM WAV file."""
    pcm = np.round(np.clip(np.asarray(audio, np.float64), -1, 1) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def write_wav(path, audio, sample_rate=16000):
    """Float audio [T] in [-1, 1] -> mono 16-bit PCM WAV file at `path`."""
    write_bytes(path, wav_bytes(audio, sample_rate))


def write_bytes(path, data):
    """`data` to `path` atomically: a reader sees the old file or the whole new one."""
    path = os.fspath(path)
    temporary = f"{path}.tmp{os.getpid()}"
    try:
        with open(temporary, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def image_grid(images, columns=None, pad=1, fill=0):
    """[N, H, W(, C)] uint8 -> one [rows*(H+pad)-pad, cols*(W+pad)-pad, C] image (gaps and
    empty cells hold `fill`)."""
    images = np.asarray(images, np.uint8)
    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = -(-n // columns)
    grid = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad, c), fill, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[r * (h + pad):r * (h + pad) + h, col * (w + pad):col * (w + pad) + w] = image
    return grid


def write_png(path, image):
    """uint8 [H, W] or [H, W, 1|3|4] -> PNG (8-bit gray, RGB or RGBA)."""
    image = np.asarray(image, np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    h, w, c = image.shape
    color = {1: 0, 3: 2, 4: 6}.get(c)
    if color is None:
        raise ValueError(f"PNG needs 1, 3 or 4 channels; received {c}.")
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    write_bytes(path, b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def scale_image(image, factor):
    """uint8 [H, W(, C)] -> [H * factor, W * factor(, C)], each pixel a factor x factor block."""
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise ValueError(f"The PNG scale must be a positive integer; received {factor!r}.")
    return np.repeat(np.repeat(np.asarray(image), int(factor), axis=0), int(factor), axis=1)


def inpainting_grid(originals, given_rows, completions, pad=2, mask_value=128, fill=255):
    """One grid row per original image: the original, the same image with rows from
    `given_rows` on set to `mask_value` (grey: the part to generate), then its completions;
    `pad` pixels of `fill` between cells.

    originals uint8 [N, H, W, C]; completions uint8 [N * K, H, W, C] (image i's K
    completions are rows i * K .. i * K + K - 1)."""
    originals = np.asarray(originals, np.uint8)
    completions = np.asarray(completions, np.uint8)
    n = len(originals)
    if n == 0 or len(completions) % n:
        raise ValueError(f"{len(completions)} completions for {n} original images; expected "
                         f"the same number (at least one) for each image.")
    masked = originals.copy()
    masked[:, int(given_rows):] = mask_value
    per_image = completions.reshape((n, -1) + completions.shape[1:])
    cells = np.concatenate([originals[:, None], masked[:, None], per_image], axis=1)
    return image_grid(cells.reshape((-1,) + cells.shape[2:]), columns=cells.shape[1], pad=pad,
                      fill=fill)


def ids_to_images(x, image_shape, num_classes=256):
    """Generated ids [N, H*W(, C)] -> uint8 images [N, H, W, C] scaled to 0..255."""
    x = np.asarray(x)
    images = x.reshape((x.shape[0],) + tuple(image_shape))
    if num_classes != 256:
        images = np.round(images * (255.0 / (num_classes - 1)))
    return np.clip(images, 0, 255).astype(np.uint8)


def write_text(path, x, lengths=None, vocabulary=None, separator=" ", text=None):
    """One line per row up to each row's length: decoded text when the ids are UTF-8 bytes
    (`text="bytes"`: ids 0..255; undecodable bytes become U+FFFD) or vocabulary entries
    (ids past the vocabulary: `<unk>`; joined without `separator` when every entry is one
    character, as `serving.source_input` reads such a vocabulary), else the ids."""
    if vocabulary and all(len(token) == 1 for token in vocabulary):
        separator = ""
    lines = []
    for row, values in enumerate(np.asarray(x)):
        values = values[: int(lengths[row])] if lengths is not None else values
        ids = [int(v) for v in values.reshape(-1)]
        if text == "bytes":
            raw = bytes(i for i in ids if 0 <= i < 256)
            lines.append(raw.decode("utf-8", errors="replace").replace("\n", " "))
            continue
        tokens = [(vocabulary[i] if 0 <= i < len(vocabulary) else "<unk>") if vocabulary
                  else str(i) for i in ids]
        lines.append(separator.join(tokens))
    write_bytes(path, ("\n".join(lines) + "\n").encode())
