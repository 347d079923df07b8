"""`keras-ar generate`'s condition flags as the Generator's `conditions`.

`--global-condition` (one id or value per row), `--local-condition` (frames from a .npy or a
.wav) and, for sequence-to-sequence models, the source: `--source TEXT` (mapped through the
manifest's source vocabulary, `serving.source_input`) or `--source-ids 1,2,3`, each flag one
row. Every row's value is repeated for its `--repeat` samples.
"""

import pathlib

import numpy as np

from keras_ar import contract


def source_rows(args):
    """The number of rows the source flags give (0 without them)."""
    return len(args.source or []) + len(args.source_ids or [])


def check_source_flags(args):
    """--source and --source-ids give rows in flag order only within one kind: one kind."""
    if args.source and args.source_ids:
        raise ValueError("--source and --source-ids both give the source rows; pass one kind "
                         "(repeat it for several rows).")


def conditions(args, spec, plan):
    """--global-condition, --local-condition and the source as `conditions`: one value (or
    frame sequence, or source row) per row before --repeat, each repeated for that row's
    samples (`plan`: generate_cli's batch and base rows)."""
    out = {}
    if args.global_condition:
        values = np.array([float(v) for v in args.global_condition.split(",")])
        out[contract.GLOBAL_CONDITION] = repeated("--global-condition", values, plan)
    if args.local_condition:
        frames = local_frames(args.local_condition, spec, plan.base)
        out[contract.LOCAL_CONDITION] = repeated("--local-condition", frames, plan)
    ids = source_ids(args, spec)
    if ids is not None:
        out[contract.LOCAL_CONDITION] = repeated("--source", ids, plan)
    return out


def source_ids(args, spec):
    """The source flags as padded ids [rows, max_source_length] (None without them);
    ValueError when the model takes a source and none is given, or takes none."""
    rows = source_rows(args)
    if spec.source is None:
        if rows:
            raise ValueError(f"--source/--source-ids give a source; this "
                             f"{spec.family or 'model'} takes none.")
        return None
    if not rows:
        raise ValueError(f"This {spec.source.family} generates from a source: pass --source "
                         "TEXT or --source-ids 1,2,3 (once per row).")
    if args.local_condition:
        raise ValueError("--local-condition and --source both give this model's "
                         "local_condition (the source); pass --source.")
    if args.source:
        return spec.source.pad([spec.source.encode_text(text) for text in args.source])
    return spec.source.pad([_id_list(text) for text in args.source_ids])


def default_steps(spec, ids, prompt_length):
    """--num-steps left out with a source: the longest row's target by the length rule."""
    source = spec.source
    if source.unfolding is not None:
        sizes = source.lengths(ids)
        return int(contract.unfolded_length(*source.unfolding, sizes).max()) - prompt_length
    if source.max_target_length is None:
        raise ValueError("--num-steps is required: the manifest does not give the model's "
                         "target length.")
    return source.max_target_length - prompt_length


def _id_list(text):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--source-ids {text!r}: comma-separated integer ids are "
                         "expected (e.g. 4,7,1).") from None


def repeated(flag, values, plan):
    """Per-row values [base, ...] -> [batch, ...] (each row's value --repeat times)."""
    if plan.batch == plan.base:
        return values
    if len(values) != plan.base:
        raise ValueError(f"{flag} has {len(values)} rows; with --repeat one per row is "
                         f"expected ({plan.base}: --batch-size, or the --prompt-images).")
    return np.repeat(values, plan.batch // plan.base, axis=0)


def local_frames(path, spec, batch):
    """`[batch, frames, D]` float32 from a .npy file or a WAV (see --local-condition)."""
    from serving import audio_features

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--local-condition {str(path)!r} does not exist.")
    if path.suffix == ".wav":
        description = spec.decoding.get("local_features")
        if not description:
            raise ValueError(f"--local-condition {path}: this model's manifest names no "
                             "local features (decoding.local_features), so a WAV cannot be "
                             "turned into its frames; pass the frames as a .npy file.")
        frames = audio_features.from_wav(path, description)
    elif path.suffix == ".npy":
        frames = np.load(path, allow_pickle=False)
    else:
        raise ValueError(f"--local-condition {path}: expected a .npy or .wav file.")
    frames = np.asarray(frames, np.float32)
    if frames.ndim == 2:
        frames = np.repeat(frames[None], batch, axis=0)
    if frames.ndim != 3:
        raise ValueError(f"--local-condition {path}: frames of shape {frames.shape}; expected "
                         "[frames, D] or [batch, frames, D].")
    return frames
