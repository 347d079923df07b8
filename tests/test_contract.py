import subprocess
import sys

from keras_ar import contract


def test_contract_imports_without_tensorflow():
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"  # any TF import now raises ImportError
        "import keras_ar\n"
        "from keras_ar import contract\n"
        "assert contract.STEP == 'step'\n"
        "assert 'keras' not in sys.modules\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_state_names_round_trip_and_differ():
    assert contract.state_input_name("buffer_0") == "state_buffer_0"
    assert contract.state_output_name("buffer_0") == "new_state_buffer_0"
    assert contract.state_key_from_name("new_state_k_1") == "k_1"
    assert contract.state_key_from_name("state_index") == "index"
    assert contract.state_key_from_name("params") is None
    assert set(contract.ENDPOINTS) == {
        "generate", "log_prob", "init_state", "prefill", "step", "sample_step", "sample_chunk"}


def test_bad_state_key_is_rejected():
    import pytest

    with pytest.raises(ValueError, match="identifiers"):
        contract.state_input_name("a/b")
