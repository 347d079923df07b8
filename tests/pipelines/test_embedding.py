"""Vector conditioning from another Keras model of the pipeline: the Embedder trains a
classifier's embedding, the input pipeline conditions every image on e(x), SampleGen draws
rows from test images' embeddings on SavedModel (the in-graph loop) and TFLite (the host chunk
loop), the same rows on both. The parity gate and ONNX are left to the tests about targets
(tests/export; every target end to end: test_linear16_pipeline, test_text_pipeline,
test_g2p_pipeline)."""

import json
import pathlib

import numpy as np
import pytest

from keras_ar import contract
from pipelines import config as config_lib
from pipelines import runner
from pipelines.components import embedder as embedder_lib
from pipelines.data import make_dataset

CONFIG = (pathlib.Path(__file__).parents[2] / "pipelines" / "configs"
          / "fashion_pixelcnn_embedding.yaml")
TINY = {"data.max_examples": 240, "data.batch_size": 8, "embedding.steps": 20,
        "embedding.dim": 4, "model.params.global_condition_dim": 4,
        "model.params.num_layers": 1, "model.params.filters": 4,
        "training.steps": 4, "training.steps_per_epoch": 2,
        "evaluation.max_batches": 2, "evaluation.max_bits_per_sample": 2.0,
        "evaluation.beat_unigram": False,  # 4 training steps: the plumbing, not learning
        "export.parity_steps": 64, "generation.num_samples": 3}


def test_config_ties_the_embedding_to_the_model_and_the_data(tmp_path):
    assert config_lib.load(CONFIG).embedding.model == "label_classifier"
    cases = [({"data.use_label": True}, "data.use_label` = True is invalid"),
             ({"embedding.dim": 8}, r"global_condition_dim` = 16 is invalid; expected 8"),
             ({"embedding.model": "pca"}, "'' or 'label_classifier'"),
             ({"model.params.num_global_classes": 10}, "no num_global_classes")]
    for overrides, message in cases:
        with pytest.raises(config_lib.ConfigError, match=message):
            config_lib.load(CONFIG, overrides=overrides)


@pytest.mark.slow
def test_embedding_conditioned_pipeline_end_to_end_tiny(tmp_path):
    config = config_lib.load(CONFIG, overrides={
        **TINY, "push.serving_base_path": str(tmp_path / "serving"),
        "export.targets": ["savedmodel", "tflite"], "export.verify_parity": False})
    report = {n: o for n, _, o in runner.run(config, tmp_path / "root", logger=lambda m: None)}
    embedder = report["Embedder"]["embedder"]
    summary = json.loads((embedder.path / "embedder.json").read_text())
    assert summary["enabled"] and summary["dim"] == 4 and 0.0 <= summary["test_accuracy"] <= 1
    # The input pipeline conditions each image on the embedder's vector of that image.
    data = embedder_lib.data_config({"data": {
        **config_lib.to_dict(config)["data"], "examples_dir": ""}},
        {"examples": report["DataValidator"]["examples"], "embedder": embedder})
    batch = next(iter(make_dataset(data, "test", repeat=False)))
    import keras

    model = keras.saving.load_model(str(embedder.path / embedder_lib.FILE))
    expected = model(np.asarray(batch[contract.X], np.float32)).numpy()
    np.testing.assert_allclose(batch[contract.GLOBAL_CONDITION], expected, atol=1e-6)
    assert batch[contract.GLOBAL_CONDITION].shape == (8, 4)
    trained = json.loads((report["Trainer"]["model"].path / "model.keras").parent.joinpath(
        "training.json").read_text())
    assert trained["steps"] == 4
    samples = report["SampleGen"]["samples"].path
    listing = json.loads((samples / "samples.json").read_text())
    assert listing["references"][-1] == "reference_grid.png"
    grids = {t: (samples / f"{t}_grid.png").read_bytes() for t in ("savedmodel", "tflite")}
    assert grids["savedmodel"] == grids["tflite"]  # same noise, same rows
    assert sorted(listing["targets"]) == ["savedmodel", "tflite"]
    assert (report["Reporter"]["report"].path / "reference_grid.png").is_file()


def test_embedder_off_writes_a_switch_only(tmp_path):
    from pipelines.components.base import Artifact

    out = Artifact("EmbedderModel", str(tmp_path / "e"))
    embedder_lib.execute({}, {"embedder": out}, {"embedding": {"model": ""}}, None)
    assert json.loads((out.path / "embedder.json").read_text()) == {"enabled": False}
    assert embedder_lib.embedder_dir({"embedder": out}) == ""
