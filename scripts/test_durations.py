"""Write tests/durations.json, the seconds each test file took, from a pytest JUnit XML.

    python -m pytest -n auto --dist loadfile --junitxml=junit.xml
    python scripts/test_durations.py junit.xml

tests/conftest.py runs the files in falling order of these seconds, so that pytest-xdist
(`--dist loadfile --no-loadscope-reorder`, as `make test` runs it) starts the longest files
first and the run does not end on one long file while the other workers idle. The figures are
only an ordering hint: a file not listed runs after the listed ones.
"""

import collections
import json
import pathlib
import sys
import xml.etree.ElementTree as ET

OUT = pathlib.Path(__file__).resolve().parents[1] / "tests" / "durations.json"


def file_seconds(junit_xml):
    """{"tests/x/test_y.py": seconds} summed over the file's test cases."""
    seconds = collections.Counter()
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        module = case.get("classname", "")
        parts = module.split(".")
        while parts and not parts[-1].startswith("test_"):  # drop test class names
            parts.pop()
        if parts:
            seconds["/".join(parts) + ".py"] += float(case.get("time", 0))
    return seconds


def main(argv):
    if len(argv) != 1:
        print(__doc__)
        return 2
    seconds = file_seconds(argv[0])
    ordered = {name: round(s, 1) for name, s in seconds.most_common()}
    OUT.write_text(json.dumps(ordered, indent=0) + "\n")
    print(f"wrote {OUT}: {len(ordered)} files, {sum(seconds.values()):.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
