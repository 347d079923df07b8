"""The export gate of PixelCNN++ (the slowest to convert, so a file of its own): see
tests/export/test_export_families.py for what is checked."""

from tests.export import family_checks

FAMILIES = ("pixel_cnn_plus_plus_rgb",)

(exported, test_family_passes_parity_gate_on_every_target,
 test_family_signatures_take_the_model_conditions,
 test_exported_log_prob_scores_only_the_first_lengths_positions) = (
    family_checks.family_tests(FAMILIES))
