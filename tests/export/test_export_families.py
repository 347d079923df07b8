"""Every model family exports to SavedModel, TFLite and ONNX and passes the parity gate.

Here: the image families and the continuous model; the other families are in
test_export_pixel_cnn_plus_plus.py and test_export_token_families.py, all sharing
`tests/export/family_checks.py`. One tiny instance per family (conditioned where the family
takes conditions), exported once per module
with `export_all` (the gate runs inside it: params within 1e-5 of Keras for every signature a
target holds, identical samples over 64 `sample_step` steps; image models start a new image
every H x W steps; the continuous model's real-valued samples agree within 1e-5). ONNX
converts every signature for PixelCNN and GatedPixelCNN (covering the `tf.cond` in the image
prefill) and, to keep this file short on a 2-core machine, the signatures the gate must cover
for the others: init_state, step, sample_step, sample_chunk, generate.

GatedPixelCNN's ONNX `generate` runs since the export
declares Loop counters scalar (onnxruntime refused the loop with the row-update `If` inside:
`Loop subgraph input 0 has unknown shape`), and its `prefill` converts since the caller's
shapes win over the unknown `_output_shapes` of grappler's specialised `If` branches (tf2onnx
could not convert the shapeless convolution kernels of the parallel prefill).
"""

from tests.export import family_checks

FAMILIES = ("pixel_cnn_vector", "gated_pixel_cnn_class", "continuous_conditioned")

(exported, test_family_passes_parity_gate_on_every_target,
 test_family_signatures_take_the_model_conditions,
 test_exported_log_prob_scores_only_the_first_lengths_positions) = (
    family_checks.family_tests(FAMILIES))


def test_the_export_files_cover_every_family_once():
    from tests.export import test_export_pixel_cnn_plus_plus, test_export_token_families

    files = (FAMILIES, test_export_pixel_cnn_plus_plus.FAMILIES,
             test_export_token_families.FAMILIES)
    covered = [family for families in files for family in families]
    assert sorted(covered) == sorted(family_checks.FAMILIES)
