"""Embedder executor: another Keras model in the pipeline whose embedding conditions the
generative model (a vector `global_condition`), as the Conditional PixelCNN conditions
portraits on a face-embedding network's output (van den Oord et al. 2016, arXiv
1606.05328, sec. 3.3).

`embedding.model: label_classifier` trains a small convolutional classifier of the train
split's images against their labels (`embedding.steps` Adam steps):

    e(x) = tanh(W GAP(relu(conv(relu(conv(x / (levels - 1)))))))   `[B, embedding.dim]`
    p(label | x) = softmax(V e(x))

and keeps the embedding part, `embedder.keras` (input: the image's integer levels as
float32 `[B, H, W, C]`). The input pipeline then gives every image e(x) as its
`global_condition` (`pipelines.data.dataset`), so the generative model learns
p(x | e(x)); generating from a test image's embedding draws images like it. The test
split's accuracy is recorded in `embedder.json`. With `embedding.model: ""` the component
writes `embedder.json` {"enabled": false} and nothing else.
"""

import pathlib

from pipelines import config as config_lib
from pipelines.components.base import write_json

FILE = "embedder.keras"


def execute(inputs, outputs, params, context):
    out = outputs["embedder"].path
    out.mkdir(parents=True, exist_ok=True)
    embedding = config_lib.EmbeddingConfig(**params["embedding"])
    if not embedding.model:
        write_json(out / "embedder.json", {"enabled": False})
        return
    import keras

    from pipelines.data import make_dataset

    data = config_lib.DataConfig(**{**params["data"], "examples_dir": inputs["examples"].uri,
                                    "use_label": True})
    keras.utils.set_random_seed(data.seed)
    from pipelines.components.trainer import source_metadata

    classes = int(source_metadata(inputs["examples"].path).get("num_classes") or 0)
    if classes < 2:
        raise ValueError(f"Embedder: the source {data.source!r} declares {classes} classes "
                         "(ingest.json num_classes); label_classifier needs labelled images "
                         "of at least 2 classes.")
    embedder, classifier = _models(params["image_shape"], params["levels"], embedding.dim,
                                   classes)
    classifier.compile(keras.optimizers.Adam(embedding.learning_rate),
                       "sparse_categorical_crossentropy", metrics=["accuracy"])
    train = make_dataset(data, "train").map(_pairs)
    history = classifier.fit(train, steps_per_epoch=embedding.steps, epochs=1, verbose=0)
    loss, accuracy = classifier.evaluate(make_dataset(data, "test", repeat=False).map(_pairs),
                                         verbose=0)
    tmp = out / f".{FILE}.tmp.keras"
    embedder.save(str(tmp))
    tmp.rename(out / FILE)
    summary = {"enabled": True, "dim": embedding.dim, "steps": embedding.steps,
               "train_loss": float(history.history["loss"][-1]),
               "test_loss": float(loss), "test_accuracy": float(accuracy)}
    write_json(out / "embedder.json", summary)
    outputs["embedder"].properties.update(test_accuracy=float(accuracy))
    context.log(f"Embedder: {embedding.steps} steps, test accuracy {accuracy:.3f} "
                f"({classes} classes) -> {out / FILE}")


def _pairs(batch):
    import tensorflow as tf

    from keras_ar import contract

    return tf.cast(batch[contract.X], tf.float32), batch[contract.GLOBAL_CONDITION]


def _models(image_shape, levels, dim, classes):
    """(embedder: levels -> e(x), classifier: levels -> class probabilities)."""
    import keras

    layers = keras.layers
    image = keras.Input(tuple(int(d) for d in image_shape), name="image")
    h = layers.Rescaling(1.0 / max(int(levels) - 1, 1))(image)
    h = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.GlobalAveragePooling2D()(h)
    embedding = layers.Dense(dim, activation="tanh", name="embedding")(h)
    embedder = keras.Model(image, embedding, name="embedder")
    probs = layers.Dense(classes, activation="softmax", name="classes")(embedding)
    return embedder, keras.Model(image, probs, name="classifier")


def embedder_dir(inputs):
    """The Embedder artifact's directory when it holds an embedder, else ''."""
    artifact = inputs.get("embedder")
    if artifact is None or not (pathlib.Path(artifact.uri) / FILE).is_file():
        return ""
    return str(artifact.uri)


def load(directory):
    """The embedder saved in an Embedder artifact `directory` (inference only, uncompiled)."""
    import keras

    return keras.saving.load_model(str(pathlib.Path(directory) / FILE), compile=False)


def data_config(params, inputs):
    """The component's `DataConfig`: its data parameters, the validated Examples and the
    Embedder (if any)."""
    return config_lib.DataConfig(**{**params["data"], "examples_dir": inputs["examples"].uri,
                                    "embedder_dir": embedder_dir(inputs)})
