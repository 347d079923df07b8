import subprocess
import sys

import numpy as np
import pytest

from pipelines.data import japanese_vowels


def _installed():
    try:
        japanese_vowels.data_dir()
        return True
    except japanese_vowels.JapaneseVowelsUnavailable:
        return False


@pytest.mark.skipif(not _installed(), reason="sktime (which ships the data) is not installed")
def test_loads_the_official_split_without_importing_sktime():
    code = ("import sys; from pipelines.data import japanese_vowels as jv; "
            "d = [jv.load(s) for s in ('train', 'test')]; "
            "print([x['x'].shape[0] for x in d], min(x['lengths'].min() for x in d), "
            "max(x['lengths'].max() for x in d), 'sktime' in sys.modules, "
            "'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["[270,", "370]", "7", "29", "False", "False"]
    train = japanese_vowels.load("train")
    assert train["x"].shape == (270, 29, 12) and train["x"].dtype == np.float32
    np.testing.assert_array_equal(np.bincount(train["global_condition"]), [30] * 9)
    padding = np.arange(29)[None, :] >= train["lengths"][:, None]
    assert np.all(train["x"][padding] == 0)
    assert np.all(np.any(train["x"][~padding] != 0, axis=-1))


def test_missing_files_say_what_to_install(tmp_path):
    with pytest.raises(japanese_vowels.JapaneseVowelsUnavailable, match="sktime"):
        japanese_vowels.load("train", directory=str(tmp_path))
    with pytest.raises(ValueError, match="split"):
        japanese_vowels.load("validation", directory=str(tmp_path))


def test_parser_rejects_ragged_dimensions(tmp_path):
    path = tmp_path / "JapaneseVowels_TRAIN.ts"
    path.write_text("@data\n" + ":".join(["1,2"] * 11 + ["1"]) + ":3\n")
    with pytest.raises(ValueError, match="equal length"):
        japanese_vowels.load("train", directory=str(tmp_path))
