"""The ordering hint for pytest-xdist: tests/durations.json is read from a JUnit XML and
names test files that exist."""

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import test_durations  # noqa: E402


def test_seconds_are_summed_per_file_and_test_classes_dropped(tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text("""<testsuites><testsuite>
<testcase classname="tests.serving.test_a" name="t1" time="1.5"/>
<testcase classname="tests.serving.test_a.TestGroup" name="t2" time="2.0"/>
<testcase classname="tests.test_b" name="t3" time="0.25"/>
</testsuite></testsuites>""")
    assert dict(test_durations.file_seconds(xml)) == {"tests/serving/test_a.py": 3.5,
                                                      "tests/test_b.py": 0.25}


def test_the_table_names_existing_test_files_longest_first():
    table = json.loads((ROOT / "tests" / "durations.json").read_text())
    missing = [name for name in table if not (ROOT / name).exists()]
    assert not missing, f"rerun scripts/test_durations.py: gone from tests/: {missing}"
    assert list(table.values()) == sorted(table.values(), reverse=True)
