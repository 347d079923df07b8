"""The tree is lint-clean under the project's ruff configuration (ruff.toml)."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise",
                             str(ROOT)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, (
        "ruff found problems (fix them, or run `ruff check --fix .`):\n"
        + result.stdout + result.stderr)
