"""The export gate of PixelCNN++ (the slowest to convert, so a file of its own): see
tests/export/test_export_families.py for what is checked."""

import pytest

from tests.export import family_checks

FAMILIES = ("pixel_cnn_plus_plus_rgb",)


@pytest.fixture(scope="module", params=FAMILIES)
def exported(request, tmp_path_factory):
    return family_checks.export_family(request.param, tmp_path_factory)


@pytest.mark.slow
def test_family_passes_parity_gate_on_every_target(exported):
    family_checks.check_parity_gate_on_every_target(exported)


@pytest.mark.slow
def test_family_signatures_take_the_model_conditions(exported):
    family_checks.check_signatures_take_the_model_conditions(exported)


@pytest.mark.slow
def test_exported_log_prob_scores_only_the_first_lengths_positions(exported):
    family_checks.check_log_prob_scores_only_the_first_lengths_positions(exported)
