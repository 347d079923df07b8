"""The host-side state of one generation: model state, previous values, output buffer,
noise, controls and per-row progress. It can be saved to an `.npz` file and resumed, and
a resumed run produces exactly what the uninterrupted run would have."""

import dataclasses
import json
import os
import pathlib

import numpy as np

from keras_ar import contract

_FORMAT = "keras_ar.generation_run.v1"


@dataclasses.dataclass
class GenerationRun:
    """`state` {key: array}, `x_prev` [B, *event], `x` [B, T, *event] (pad after the end),
    `noise` [B, T, *noise], `limits` [B] (values each row may emit), `done` [B], `lengths`
    [B] (values emitted before a stop token or the limit), `t` (next step)."""

    state: dict
    x_prev: np.ndarray
    x: np.ndarray
    noise: np.ndarray
    controls: dict
    conditions: dict
    limits: np.ndarray
    done: np.ndarray
    lengths: np.ndarray
    t: int = 0
    stop_token: int = None
    pad_value: int = 0

    @property
    def batch_size(self):
        return int(self.x.shape[0])

    @property
    def num_steps(self):
        return int(self.x.shape[1])

    @property
    def finished(self):
        return self.t >= self.num_steps or bool(np.all(self.done))

    def record(self, x_t, stop=None):
        """Write step `t`'s values, update stops and lengths; return the written values.
        `stop` [B] (models that sample stop flags): the row ends *after* x_t, which is kept."""
        x_t = np.array(x_t, dtype=self.x.dtype)
        flat = x_t.reshape(self.batch_size, -1)
        hit_stop = (np.zeros(self.batch_size, bool) if self.stop_token is None
                    else np.any(flat == self.stop_token, axis=1))
        ended = self.done | hit_stop | (self.t >= self.limits)
        write = np.where(_expand(ended, x_t), self.pad_value, x_t)
        self.x[:, self.t] = write
        self.lengths = self.lengths + (~ended).astype(np.int32)
        self.done = ended | (self.t + 1 >= self.limits)
        if stop is not None:
            self.done |= np.asarray(stop).reshape(self.batch_size).astype(bool)
        self.x_prev = x_t
        self.t += 1
        return write

    def record_chunk(self, x, stop=None, lengths=None):
        """Write the values of steps [t, t + k) at once (`x` [B, k, *event], from one
        `sample_chunk`), exactly as k `record` calls would; return the written values.
        `stop`/`lengths` [B] (models that sample stop flags): the row ends after its
        first `lengths` values when `stop` is set."""
        x = np.array(x, dtype=self.x.dtype)
        batch, k = x.shape[:2]
        flat = x.reshape(batch, k, -1)
        positions = self.t + np.arange(k)[None, :]  # (1, k)
        hit_stop = (np.zeros((batch, k), bool) if self.stop_token is None
                    else np.any(flat == self.stop_token, axis=2))
        flagged = np.zeros((batch, k), bool)  # sampled flag: the row ends after position j
        if stop is not None:
            last = np.asarray(lengths).reshape(batch) - 1
            flagged = (np.asarray(stop).reshape(batch, 1).astype(bool)
                       & (np.arange(k)[None, :] == last[:, None]))
        earlier_flag = np.cumsum(flagged, axis=1) - flagged > 0  # a flag before j
        ended = (self.done[:, None] | (np.cumsum(hit_stop, axis=1) > 0) | earlier_flag
                 | (positions >= self.limits[:, None]))
        write = np.where(ended.reshape(ended.shape + (1,) * (x.ndim - 2)), self.pad_value, x)
        self.x[:, self.t:self.t + k] = write
        self.lengths = self.lengths + np.sum(~ended, axis=1).astype(np.int32)
        self.done = ended[:, -1] | (self.t + k >= self.limits) | np.any(flagged, axis=1)
        self.x_prev = x[:, -1]
        self.t += k
        return write

    def save(self, path):
        """Write the run to `path` (.npz, appended when missing, as numpy does; plain arrays
        and a JSON header, no pickles), atomically: a temporary file renamed over `path`, so
        a crash mid-write leaves the previous save whole."""
        arrays = {f"state/{k}": v for k, v in self.state.items()}
        arrays.update({f"controls/{k}": v for k, v in self.controls.items()})
        arrays.update({f"conditions/{k}": v for k, v in self.conditions.items()})
        header = {"format": _FORMAT, "t": self.t, "stop_token": self.stop_token,
                  "pad_value": self.pad_value}
        path = pathlib.Path(path)
        path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as file:
                np.savez(file, header=np.array(json.dumps(header)), x_prev=self.x_prev,
                         x=self.x, noise=self.noise, limits=self.limits, done=self.done,
                         lengths=self.lengths, **arrays)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            if header.get("format") != _FORMAT:
                raise ValueError(f"{path} is not a saved generation run (format "
                                 f"{header.get('format')!r}, expected {_FORMAT!r}).")

            def group(prefix):
                return {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}

            run = cls(state=group("state/"), x_prev=data["x_prev"], x=data["x"],
                      noise=data["noise"], controls=group("controls/"),
                      conditions=group("conditions/"), limits=data["limits"],
                      done=data["done"], lengths=data["lengths"], t=int(header["t"]),
                      stop_token=header["stop_token"], pad_value=header["pad_value"])
        if contract.INDEX_KEY not in run.state:
            raise ValueError(f"{path}: the saved state has no `{contract.INDEX_KEY}`.")
        return run


def _expand(mask, like):
    return mask.reshape((-1,) + (1,) * (np.ndim(like) - 1))
