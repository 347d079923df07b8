"""The source of a sequence-to-sequence model on the host, without TensorFlow.

ByteNet and EncoderDecoderTransformer take the source as `local_condition`: int32
`[B, max_source_length]` ids, each row's tokens then the pad id `source_vocab_size`
(`keras_ar.contract.SOURCE_LAYOUT`); their exported signatures take exactly
max_source_length positions. `SourceSpec` pads shorter or ragged rows, checks them as the
model does (`keras_ar.contract.source_errors`), applies the target length rule and turns
text into ids:

* target positions (prompt + generated) are at most the model's `max_length`
  (EncoderDecoderTransformer's argument; ByteNet's floor(a * max_source_length) + b);
* ByteNet unfolds each row to U = floor(a |s| + 1e-4) + b target positions (|s| = the row's
  tokens): a row ends after U - P generated values (P = prompt length), and a request for
  more steps than the longest row's U - P is refused.

Text maps through the manifest's `decoding.source_vocabulary` (tokens, id = index; read
character by character when every token is one character, else split on whitespace) or
`decoding.source_text: "bytes"` (UTF-8 bytes are the ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_ar import contract


class SourceSpec:
    """A model's source: `max_length` positions, `vocab_size` ids (also the pad id; None when
    unknown), `max_target_length` target positions (None: unknown), ByteNet's `unfolding`
    (a, b) or None, the manifest's `vocabulary` / `text` for `encode_text`."""

    def __init__(self, max_length: int, vocab_size: int | None = None,
                 max_target_length: int | None = None,
                 unfolding: tuple[float, int] | None = None,
                 vocabulary: Sequence[str] | None = None, text: str | None = None,
                 family: str | None = None) -> None:
        self.max_length = int(max_length)
        self.vocab_size = None if vocab_size is None else int(vocab_size)
        self.max_target_length = None if max_target_length is None else int(max_target_length)
        self.unfolding = unfolding
        self.vocabulary = list(vocabulary) if vocabulary else None
        self.text = text
        self.family = family or "model"

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any] | None) -> SourceSpec | None:
        """From a manifest whose model config has `source_vocab_size` (else None)."""
        model = (manifest or {}).get("model") or {}
        config = model.get("config") or {}
        if "source_vocab_size" not in config or "max_source_length" not in config:
            return None
        unfolding = ((float(config["a"]), int(config["b"]))
                     if "a" in config and "b" in config else None)
        target = config.get("max_length")
        if target is None and unfolding is not None:
            target = contract.unfolded_length(*unfolding, int(config["max_source_length"]))
        decoding = manifest.get("decoding") or {}
        return cls(config["max_source_length"], config["source_vocab_size"], target, unfolding,
                   decoding.get("source_vocabulary"), decoding.get("source_text"),
                   model.get("family"))

    @classmethod
    def from_signature(cls, inputs: dict[str, Any]) -> SourceSpec | None:
        """From `init_state`'s inputs ({name: (shape, dtype)}): an integer
        `local_condition` [B, S] is a source of S positions (its vocabulary unknown)."""
        shape, dtype = inputs.get(contract.LOCAL_CONDITION, (None, None))
        if shape is None or len(shape) != 2 or shape[1] is None:
            return None
        if np.dtype(dtype).kind not in "iu":
            return None
        return cls(shape[1])

    # ----------------------------------------------------------------- ids
    def pad(self, source: Any) -> np.ndarray:
        """Rows of ids (an int array [B, S <= max_length], or a list of rows of any lengths)
        -> int32 [B, max_length], each row's ids then the pad id; ValueError naming the
        values when they break the layout."""
        rows = _rows(source)
        longest = max((len(row) for row in rows), default=0)
        if not rows or longest == 0:
            raise ValueError(f"`{contract.LOCAL_CONDITION}` is empty ({_shown(source)}); "
                             f"one row of 1 to {self.max_length} source ids per generated "
                             "sequence is expected.")
        if longest > self.max_length:
            row = next(i for i, r in enumerate(rows) if len(r) == longest)
            raise ValueError(f"`{contract.LOCAL_CONDITION}` row {row} has {longest} source "
                             f"ids; this {self.family} takes at most max_source_length="
                             f"{self.max_length}. Shorten the source.")
        if self.vocab_size is None and any(len(row) != self.max_length for row in rows):
            raise ValueError(f"`{contract.LOCAL_CONDITION}`: the pad id is unknown without "
                             f"the manifest, so every row must hold exactly "
                             f"{self.max_length} ids (padded); pass the manifest.")
        pad = -1 if self.vocab_size is None else self.vocab_size
        out = np.full((len(rows), self.max_length), pad, np.int64)
        for i, row in enumerate(rows):
            out[i, :len(row)] = row
        errors = contract.source_errors(out, self.vocab_size, self.max_length)
        if errors:
            raise ValueError(" ".join(errors))
        return out.astype(np.int32)

    def lengths(self, ids: np.ndarray) -> np.ndarray:
        """Each row's number of tokens (non-pad ids)."""
        return (np.asarray(ids) != self.vocab_size).sum(axis=1)

    def step_limits(self, ids: np.ndarray, prompt_length: int, num_steps: int) -> np.ndarray:
        """The values each row may generate ([B] ints <= num_steps) by the target length
        rule (see the module docstring); ValueError naming the request when it cannot fit."""
        total = int(prompt_length) + int(num_steps)
        if self.max_target_length is not None and total > self.max_target_length:
            raise ValueError(
                f"num_steps={num_steps} with a prompt of {prompt_length} needs {total} target "
                f"positions; this {self.family} holds at most max_length="
                f"{self.max_target_length}. Ask for at most "
                f"{self.max_target_length - int(prompt_length)} steps.")
        batch = np.asarray(ids).shape[0]
        if self.unfolding is None or self.vocab_size is None:
            return np.full(batch, int(num_steps), np.int32)
        sizes = self.lengths(ids)
        unfolded = contract.unfolded_length(*self.unfolding, sizes) - int(prompt_length)
        if int(num_steps) > int(unfolded.max()) or int(unfolded.min()) < 1:
            row = int(np.argmax(unfolded)) if int(num_steps) > int(unfolded.max()) else int(
                np.argmin(unfolded))
            a, b = self.unfolding
            raise ValueError(
                f"num_steps={num_steps} with a prompt of {prompt_length}: the target length "
                f"rule floor({a:g} |s|) + {b} gives row {row} (|s| = {int(sizes[row])} source "
                f"tokens) {int(unfolded[row]) + int(prompt_length)} target positions, so "
                f"{max(int(unfolded[row]), 0)} steps after the prompt; this batch allows 1 to "
                f"{max(int(unfolded.min()), 0)} steps for every row to generate, at most "
                f"{int(unfolded.max())} for its longest source. Ask for fewer steps, a "
                f"shorter prompt or give longer sources.")
        return np.minimum(unfolded, int(num_steps)).astype(np.int32)

    # ----------------------------------------------------------------- text
    def encode_text(self, text: str) -> list[int]:
        """Source text -> ids through the manifest's source vocabulary or bytes."""
        if self.text == "bytes":
            return list(text.encode("utf-8"))
        if not self.vocabulary:
            raise ValueError(f"This {self.family}'s manifest records no source vocabulary "
                             "(decoding.source_vocabulary or source_text), so text cannot be "
                             "mapped to ids; pass ids (--source-ids 1,2,3).")
        index = {token: i for i, token in enumerate(self.vocabulary)}
        single = all(len(token) == 1 for token in self.vocabulary)
        tokens = list(text) if single else text.split()
        unknown = [token for token in tokens if token not in index]
        if unknown:
            shown = "".join(self.vocabulary[:40]) if single else " ".join(self.vocabulary[:20])
            raise ValueError(f"Source text {text!r} holds {unknown[0]!r}, which is not in the "
                             f"source vocabulary ({len(self.vocabulary)} tokens: {shown!r}"
                             f"{' ...' if len(self.vocabulary) > 40 else ''}).")
        return [index[token] for token in tokens]


def _rows(source):
    """A list of int64 id rows from an array [B, S] or a sequence of sequences."""
    if isinstance(source, np.ndarray) and source.dtype != object:
        array = source
    else:
        try:
            array = np.asarray(source)
        except ValueError:  # ragged rows
            array = None
        if array is None or array.dtype == object:
            rows = [np.asarray(row) for row in source]
            if any(row.ndim != 1 for row in rows):
                raise ValueError(f"`{contract.LOCAL_CONDITION}`: each source row must be a "
                                 f"list of ids; received {_shown(source)}.")
            return [_ids(row) for row in rows]
    if array.size == 0:
        return []
    if array.ndim != 2:
        raise ValueError(f"`{contract.LOCAL_CONDITION}` has shape {list(array.shape)}; "
                         f"expected {contract.SOURCE_LAYOUT}, or a list of id rows.")
    return [_ids(row) for row in array]


def _ids(row):
    if row.size and (row.dtype.kind not in "iuf" or not np.all(np.isfinite(row))
                     or not np.all(row == np.round(row))):
        raise ValueError(f"`{contract.LOCAL_CONDITION}` holds {row.tolist()[:8]}; integer "
                         "source ids are expected.")
    return row.astype(np.int64)


def _shown(value):
    text = repr(value if not isinstance(value, np.ndarray) else value.tolist())
    return text if len(text) < 80 else text[:77] + "..."
