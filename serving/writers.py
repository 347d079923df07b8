"""Output writers without TensorFlow: PNG image grids (zlib + struct), 16-bit WAV (wave),
text. Values are the generated ids; `decode_audio` maps them to [-1, 1]."""

import io
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
    with open(path, "wb") as out:
        out.write(wav_bytes(audio, sample_rate))


def image_grid(images, columns=None, pad=1):
    """[N, H, W(, C)] uint8 -> one [rows*(H+pad)-pad, cols*(W+pad)-pad, C] image."""
    images = np.asarray(images, np.uint8)
    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = -(-n // columns)
    grid = np.zeros((rows * (h + pad) - pad, columns * (w + pad) - pad, c), np.uint8)
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
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                  + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


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
    (ids past the vocabulary: `<unk>`), else the ids."""
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
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")
