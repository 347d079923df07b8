"""Loading our own saved models by path: the `from_preset` of keras-hub, for local presets.

A preset is a `.keras` file written by `model.save` (or by the pipeline's Trainer), or a
directory that holds one as `model.keras` (a Trainer output, a `keras-ar export --out`
directory, which keeps the checkpoint beside its `export/` targets). Loading imports every
keras_ar model class first, so the registered classes resolve, and returns the compiled model
with its optimizer state (it resumes `fit`). Exported artifacts alone (SavedModel, TFLite,
ONNX) hold no Keras model: `serving.Generator.from_preset` drives those.
"""

import pathlib

from keras_ar import contract

CHECKPOINT_NAME = "model.keras"


def checkpoint_path(path):
    """The `.keras` file a preset path names (FileNotFoundError / ValueError saying why)."""
    path = pathlib.Path(path)
    if path.is_dir():
        # the directory itself, or an export's `<out>/export` / `<out>/export/<target>`
        candidates = [path / CHECKPOINT_NAME]
        if path.name == "export":
            candidates.append(path.parent / CHECKPOINT_NAME)
        if path.parent.name == "export":
            candidates.append(path.parent.parent / CHECKPOINT_NAME)
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        artifact = contract.artifact_kind(path) is not None
        raise FileNotFoundError(
            f"{str(path)!r} holds no {CHECKPOINT_NAME}"
            + (" (it is an exported artifact: load it with "
               "serving.Generator.from_preset)" if artifact else "")
            + "; pass a .keras file or a directory holding model.keras.")
    if not path.exists():
        raise FileNotFoundError(f"Preset {str(path)!r} does not exist; pass the .keras file "
                                "written by training (model.save('model.keras')) or its "
                                "directory.")
    if path.suffix != ".keras":
        raise ValueError(f"Preset {str(path)!r} must be a Keras v3 '.keras' file or a "
                         f"directory holding {CHECKPOINT_NAME}; received a "
                         f"'{path.suffix or 'suffix-less'}' file.")
    return path


def load(path, expected=None, compile=True):
    """The keras_ar model saved at `path`; `expected` (a class) checks what was loaded."""
    import keras

    # importing the package registers every model class
    from keras_ar.models.autoregressive_model import AutoregressiveModel

    file = checkpoint_path(path)
    model = keras.saving.load_model(str(file), compile=compile)
    expected = expected or AutoregressiveModel
    if not isinstance(model, expected):
        raise ValueError(f"{str(file)!r} holds a {type(model).__name__}, not a keras_ar "
                         f"{expected.__name__}.")
    return model
